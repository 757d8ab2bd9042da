"""Figures of a study or sweep: the gain of real features over each control,
and learning curves. Used by `python -m mmjax.report`.

Every figure is a `matplotlib.figure.Figure` built without pyplot, so drawing
touches no global state (no current figure, no backend switch): `savefig`
picks the Agg renderer for PNG and the PDF back end for PDF by itself. Sizes
are whole multiples of a quarter inch, so a figure of `w` x `h` inches is
exactly `w * DPI` x `h * DPI` pixels in PNG and `w * 72` x `h * 72` points in
PDF (no `bbox_inches='tight'`, which would change the size with the labels);
the constrained layout keeps labels inside it.

Colours are fixed per control (`CONTROL_COLOURS`), in the figures and in the
report page alike, so that a control reads the same everywhere. They are
chosen apart from matplotlib's defaults, which lets a test find the markers
in a screenshot by colour.
"""

from __future__ import annotations

import dataclasses
import math
import textwrap
from typing import Any, Sequence

from matplotlib import figure as mpl_figure
from matplotlib import lines as mpl_lines
from matplotlib import ticker as mpl_ticker

DPI = 100
ZERO_COLOUR = '#495057'
CONTROL_COLOURS = {
    'real': '#212529',
    'shuffle': '#e8590c',
    'noise': '#1c7ed6',
    'none': '#5c940d',
}
# The `only_<modality>` controls, in the order they first appear.
MODALITY_COLOURS = ('#ae3ec9', '#f59f00', '#0ca678', '#c2255c')
OTHER_COLOUR = '#868e96'
CONTROL_MARKERS = {'shuffle': 'o', 'noise': 's', 'none': 'D'}
MODALITY_MARKERS = ('^', 'v', '<', '>')
# Lines of learning curves whose label is no control (a sweep's grid points).
CYCLE = ('#1864ab', '#c92a2a', '#2b8a3e', '#862e9c', '#e67700', '#0b7285',
         '#5f3dc4', '#a61e4d', '#364fc7', '#087f5b')
SEED_STYLES = ('-', '--', ':', '-.')
MARKER_SIZE = 9
CURVES_SIZE = (9.0, 4.5)  # inches


def control_styles(controls: Sequence[str]) -> dict[str, tuple[str, str]]:
  """(colour, marker) of each control.

  `shuffle_<m>` and `noise_<m>` (one modality shuffled or replaced) take
  their kind's colour and a marker of their own; each `only_<m>` a colour
  and marker of its own, in the order given.
  """
  out, only, per_kind = {}, 0, {}
  for c in controls:
    kind, _, modality = c.partition('_')
    if c in CONTROL_COLOURS:
      out[c] = (CONTROL_COLOURS[c], CONTROL_MARKERS.get(c, 'o'))
    elif kind in ('shuffle', 'noise') and modality:
      k = per_kind[kind] = per_kind.get(kind, -1) + 1
      out[c] = (CONTROL_COLOURS[kind],
                MODALITY_MARKERS[k % len(MODALITY_MARKERS)])
    elif kind == 'only':
      out[c] = (MODALITY_COLOURS[only % len(MODALITY_COLOURS)],
                MODALITY_MARKERS[only % len(MODALITY_MARKERS)])
      only += 1
    else:
      out[c] = (OTHER_COLOUR, 'P')
  return out


def _finite(x: Any) -> bool:
  return x is not None and math.isfinite(x)


def save(fig: mpl_figure.Figure, stem: str) -> list[str]:
  """Writes `<stem>.png` and `<stem>.pdf`; returns their paths."""
  paths = [stem + '.png', stem + '.pdf']
  fig.savefig(paths[0], dpi=DPI, metadata={'Software': None})
  fig.savefig(paths[1], metadata={'CreationDate': None})
  return paths


# ---------------------------------------------------------------------------
# Gain of real over each control.


@dataclasses.dataclass(frozen=True)
class Gain:
  """One marker: real minus a control, for one row of one panel.

  Attributes:
    panel: the panel's title (a user or item group).
    row: the row's label (model and representation).
    control: the control compared with.
    gap: real minus control (test Recall@20, mean over seeds).
    low, high: its interval (None when unknown).
    significant: the (Holm-adjusted) test rejects equality.
  """
  panel: str
  row: str
  control: str
  gap: float
  low: float | None
  high: float | None
  significant: bool


def gain_size(num_panels: int, num_rows: int,
              num_controls: int) -> tuple[float, float]:
  """(width, height) in inches of a gain figure (quarter-inch steps)."""
  band = 0.25 * max(2, math.ceil(0.75 * num_controls + 0.5))
  return (2.5 + 3.5 * max(1, num_panels),
          2.0 + band * max(1, num_rows))


def gain_figure(gains: Sequence[Gain], stem: str, *, title: str,
                xlabel: str = 'Test Recall@20: real minus control',
                alpha: float = 0.05,
                control_names: dict[str, str] | None = None) -> list[str]:
  """Dot-and-whisker chart of `gains`, one panel per `Gain.panel`.

  Rows are the distinct `Gain.row`s (top to bottom in first-seen order);
  within a row each control has its own marker, colour and height. A filled
  marker is a significant gap, a hollow one is not; whiskers are the
  intervals; the vertical line is zero (no gain).

  Args:
    gains: the markers.
    stem: path without extension; `<stem>.png` and `<stem>.pdf` are written.
    title: the figure's title.
    xlabel: the x axis' label.
    alpha: the significance level, stated in the legend.
    control_names: the legend's name of each control (default: as given).

  Returns:
    The paths written.
  """
  panels = list(dict.fromkeys(g.panel for g in gains)) or ['']
  rows = list(dict.fromkeys(g.row for g in gains)) or ['']
  controls = list(dict.fromkeys(g.control for g in gains))
  styles = control_styles(controls)
  width, height = gain_size(len(panels), len(rows), len(controls))
  fig = mpl_figure.Figure(figsize=(width, height), dpi=DPI,
                          layout='constrained')
  axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
  # Controls spread over 70% of a row's band, first control on top.
  step = 0.7 / max(1, len(controls))
  offset = {c: (i - (len(controls) - 1) / 2) * step
            for i, c in enumerate(controls)}
  for ax, panel in zip(axes, panels):
    ax.axvline(0.0, color=ZERO_COLOUR, linewidth=1.0, zorder=1)
    for g in gains:
      if g.panel != panel or not _finite(g.gap):
        continue
      colour, marker = styles[g.control]
      y = rows.index(g.row) + offset[g.control]
      if _finite(g.low) and _finite(g.high):
        ax.plot([g.low, g.high], [y, y], color=colour, linewidth=1.6,
                solid_capstyle='butt', zorder=2)
      ax.plot([g.gap], [y], linestyle='none', marker=marker,
              markersize=MARKER_SIZE, color=colour, markeredgecolor=colour,
              markerfacecolor=colour if g.significant else 'white',
              markeredgewidth=1.4, zorder=3)
    ax.set_title(panel)
    ax.set_xlabel(xlabel)
    ax.grid(axis='x', color='#dee2e6', linewidth=0.8, zorder=0)
    ax.set_axisbelow(True)
  axes[0].set_yticks(range(len(rows)), rows)
  axes[0].set_ylim(len(rows) - 0.5, -0.5)
  handles = [mpl_lines.Line2D([], [], linestyle='none', marker=styles[c][1],
                              markersize=MARKER_SIZE - 1, color=styles[c][0],
                              label=f'vs {(control_names or {}).get(c, c)}')
             for c in controls]
  handles += [
      mpl_lines.Line2D([], [], linestyle='none', marker='o', markersize=7,
                       color=ZERO_COLOUR, label=f'significant (Holm p < '
                       f'{alpha:g})'),
      mpl_lines.Line2D([], [], linestyle='none', marker='o', markersize=7,
                       color=ZERO_COLOUR, markerfacecolor='white',
                       label='not significant'),
  ]
  fig.legend(handles=handles, loc='outside lower center',
             ncols=min(len(handles), 6), frameon=False)
  fig.suptitle(textwrap.fill(title, 90))
  return save(fig, stem)


# ---------------------------------------------------------------------------
# Learning curves.


@dataclasses.dataclass(frozen=True)
class Curve:
  """One run's validation metric per evaluation.

  Attributes:
    label: what the line stands for (a control, a grid point); runs that
      share a label share a colour and differ by line style (their seed).
    seed: the run's seed.
    epochs: the evaluated epochs.
    values: the metric at each.
    best_epoch: the selected (best validation) epoch, marked with a star.
    colour: a fixed colour, or None for the next one of `CYCLE`.
  """
  label: str
  seed: Any
  epochs: tuple[int, ...]
  values: tuple[float, ...]
  best_epoch: int | None = None
  colour: str | None = None


def curves_figure(curves: Sequence[Curve], stem: str, *, title: str,
                  metric: str) -> list[str]:
  """Validation `metric` per epoch, one line per curve, best epochs starred.

  Args:
    curves: the runs.
    stem: path without extension; `<stem>.png` and `<stem>.pdf` are written.
    title: the figure's title.
    metric: the y axis' metric name (e.g. 'val/recall@20').

  Returns:
    The paths written.
  """
  fig = mpl_figure.Figure(figsize=CURVES_SIZE, dpi=DPI, layout='constrained')
  ax = fig.subplots()
  labels = list(dict.fromkeys(c.label for c in curves))
  colours, k = {}, 0
  for c in curves:
    if c.label not in colours:
      if c.colour is None:
        colours[c.label] = CYCLE[k % len(CYCLE)]
        k += 1
      else:
        colours[c.label] = c.colour
  seeds = list(dict.fromkeys(c.seed for c in curves))
  for c in curves:
    colour = colours[c.label]
    style = SEED_STYLES[seeds.index(c.seed) % len(SEED_STYLES)]
    ax.plot(c.epochs, c.values, color=colour, linestyle=style,
            linewidth=1.4, marker='.' if len(c.epochs) < 30 else None,
            markersize=4)
    if c.best_epoch is not None and c.best_epoch in c.epochs:
      value = c.values[c.epochs.index(c.best_epoch)]
      ax.plot([c.best_epoch], [value], linestyle='none', marker='*',
              markersize=13, color=colour, markeredgecolor='black',
              markeredgewidth=0.8, zorder=4)
  ax.set_xlabel('epoch')
  ax.xaxis.set_major_locator(mpl_ticker.MaxNLocator(integer=True))
  ax.set_ylabel(metric)
  ax.grid(color='#dee2e6', linewidth=0.8)
  ax.set_axisbelow(True)
  shown = labels[:20]
  handles = [mpl_lines.Line2D([], [], color=colours[label], linewidth=2,
                              label=label) for label in shown]
  if len(labels) > len(shown):
    handles.append(mpl_lines.Line2D([], [], color='white',
                                    label=f'(+{len(labels) - len(shown)} '
                                    'more)'))
  if len(seeds) > 1:
    handles += [mpl_lines.Line2D(
        [], [], color=ZERO_COLOUR, label=f'seed {s}',
        linestyle=SEED_STYLES[i % len(SEED_STYLES)])
                for i, s in enumerate(seeds[:len(SEED_STYLES)])]
  handles.append(mpl_lines.Line2D([], [], linestyle='none', marker='*',
                                  markersize=11, color='white',
                                  markeredgecolor='black',
                                  label='best epoch'))
  fig.legend(handles=handles, loc='outside right upper', frameon=False,
             fontsize='small')
  fig.suptitle(textwrap.fill(title, 70))
  return save(fig, stem)
