r"""Reports: the tables, figures and a self-contained page of a study or sweep.

  python -m mmjax.report studies/s      # a study (python -m mmjax.study)
  python -m mmjax.report sweeps/lgcn    # a sweep (python -m mmjax.sweep)

The directory's kind is told by its spec: `study.json` makes it a study,
`sweep.json` a sweep. Everything goes to `<dir>/report/`:

Study. Per dataset and group (all users, warm users, cold users, cold items)
of `table.csv`, the leverage table `leverage_<dataset>_<group>.{csv,md,tex}`:
a row per (model, representation), and per control present (real, shuffled,
noise, none, each modality alone) test Recall@20, NDCG@20 and HR@20 as mean
± sample std over seeds, then the Holm-adjusted p-value of real vs each
shuffled control (shuffle, shuffle_<m>). A control whose Recall@20 differs
from real's (Holm-adjusted paired t-test over users, p < --alpha) carries a
dagger; its p-value is bold then. Per dataset, `gain_<dataset>.{png,pdf}`:
real minus each control (test Recall@20) with its bootstrap 95% interval, a
panel per group. Per (model, representation), `curves_*.{png,pdf}`:
validation select metric per epoch of the final runs (one colour per
control, one line style per seed, the best epoch starred).

Sweep. The selection summary (per model, representation and control: the
grid point selected on validation, test at that point as mean ± std over
seeds, the at-budget flag; computed by `mmjax.sweep.select`, as summary.md),
results.csv, the failed runs with the end of their log, and per (model,
representation) the learning curves (one colour per grid point).

Both. `index.html`: one file with no external resources (figures as base64
PNG data URIs, CSS inline) holding the above, what was run (the sweep and run
commands, the configs as collapsible JSON) and the code and package versions
recorded in each run's runinfo.json. A missing or malformed input stops the
report with a one-line error naming it (exit status 2).
"""

from __future__ import annotations

import argparse
import base64
import collections
import csv
import dataclasses
import html
import io
import json
import math
import os
import re
import shlex
import sys
from typing import Any, Iterable, Sequence

from mmjax import plots
from mmjax import sweep as sweep_lib

REPORT = 'report'
INDEX = 'index.html'
STUDY = 'study.json'
STUDY_CSV = 'study.csv'
TABLE = 'table.csv'
SWEEP = sweep_lib.SPEC
RESULTS_CSV = 'results.csv'
RUNINFO = 'runinfo.json'
METRICS_JSONL = 'metrics.jsonl'

TABLE_COLUMNS = (
    'dataset', 'model', 'representation', 'control', 'group', 'n_seeds',
    'recall@20_mean', 'recall@20_std', 'ndcg@20_mean', 'ndcg@20_std',
    'hit@20_mean', 'hit@20_std', 'gap', 'p_t', 'p_t_holm', 'p_w_holm',
    'effect_d', 'ci_low', 'ci_high', 'p_seeds', 'at_budget')
METRICS = (('recall@20', 'R@20'), ('ndcg@20', 'NDCG@20'), ('hit@20', 'HR@20'))
CONTROL_ORDER = ('real', 'shuffle', 'noise', 'none')
CONTROL_NAMES = {'real': 'real', 'shuffle': 'shuffled', 'noise': 'noise',
                 'none': 'none (ID only)'}
GROUP_NAMES = {'all': 'all users', 'warm_users': 'warm users',
               'cold_users': 'cold users', 'cold_items': 'cold items'}
P_COLUMN = 'p_t_holm'  # The p-value shown and tested against alpha.
DEFAULT_ALPHA = 0.05
DAGGER = '†'
EMPTY = '–'
# The page's table header colour. Like the figures' control colours
# (mmjax/plots.py), it is apart from anything else on the page, so that
# tests/report_test.py finds the table in a screenshot by it.
HEADER_COLOUR = '#3b1f5c'
USAGE = 2


class ReportError(ValueError):
  """An input the report cannot use; the message is one line saying why."""


# ---------------------------------------------------------------------------
# Reading inputs.


def read_json(path: str, what: str = '') -> Any:
  """The JSON in `path`.

  Raises:
    ReportError: it is missing or not JSON.
  """
  try:
    with open(path, encoding='utf-8') as f:
      return json.load(f)
  except OSError:
    raise ReportError(f'{path}: missing{" (" + what + ")" if what else ""}'
                      ) from None
  except ValueError as e:
    raise ReportError(f'{path}: not JSON ({e})') from None


def _maybe_json(path: str) -> Any:
  try:
    return read_json(path)
  except ReportError:
    return None


def read_csv(path: str, required: Sequence[str] = (),
             what: str = '') -> list[dict[str, str]]:
  """The rows of the CSV file `path` as dicts of text.

  Raises:
    ReportError: the file is missing or lacks one of `required` columns.
  """
  try:
    with open(path, encoding='utf-8', newline='') as f:
      reader = csv.DictReader(f)
      rows = list(reader)
      head = reader.fieldnames or []
  except OSError:
    raise ReportError(f'{path}: missing{" (" + what + ")" if what else ""}'
                      ) from None
  missing = [c for c in required if c not in head]
  if missing:
    raise ReportError(f'{path}: no column {", ".join(missing)} (has '
                      f'{", ".join(head) or "none"})')
  return rows


def number(text: Any) -> float | None:
  """A CSV cell as a float; None when empty or not a number ('nan' is NaN)."""
  if text is None:
    return None
  if isinstance(text, (int, float)) and not isinstance(text, bool):
    return float(text)
  try:
    return float(str(text).strip())
  except ValueError:
    return None


def truthy(text: Any) -> bool:
  return str(text).strip().lower() in ('true', '1', 'yes')


def read_metrics(path: str) -> list[dict[str, Any]]:
  """The lines of a metrics.jsonl (unparsable lines, e.g. a line cut by a
  kill, are left out); [] when the file is missing."""
  out = []
  try:
    with open(path, encoding='utf-8') as f:
      for line in f:
        try:
          value = json.loads(line)
        except ValueError:
          continue
        if isinstance(value, dict):
          out.append(value)
  except OSError:
    return []
  return out


def detect(directory: str) -> str:
  """'study' or 'sweep'.

  Raises:
    ReportError: `directory` is neither.
  """
  if not os.path.isdir(directory):
    raise ReportError(f'{directory}: no such directory')
  if os.path.exists(os.path.join(directory, STUDY)):
    return 'study'
  if os.path.exists(os.path.join(directory, SWEEP)):
    return 'sweep'
  raise ReportError(f'{directory}: neither {STUDY} (python -m mmjax.study) '
                    f'nor {SWEEP} (python -m mmjax.sweep); not a study or '
                    'sweep directory')


def sweep_dirs(directory: str) -> list[str]:
  """Every sweep directory (holding sweep.json) at or under `directory`."""
  out = []
  for root, dirs, files in os.walk(directory):
    dirs[:] = sorted(d for d in dirs if d not in (REPORT, sweep_lib.RUNS))
    if SWEEP in files:
      out.append(root)
  return out


# ---------------------------------------------------------------------------
# Leverage tables.


def sanitize(text: str) -> str:
  """`text` as a file-name part."""
  return re.sub(r'[^A-Za-z0-9._=+-]+', '_', str(text)).strip('_')[:80] or '_'


def readable(representation: str) -> str:
  """'textual=a;visual=b' as 'textual=a; visual=b', which can wrap."""
  return representation.replace(';', '; ')


def order_controls(controls: Iterable[str]) -> list[str]:
  """real, shuffle, shuffle_<m>, noise, noise_<m>, none, only_<m>, then any
  others; within a kind, modalities as first seen."""
  seen = list(dict.fromkeys(controls))
  rank = {k: i for i, k in enumerate((*CONTROL_ORDER, 'only'))}

  def key(control: str) -> tuple[int, bool, int]:
    kind = control.partition('_')[0]
    return rank.get(kind, len(rank)), kind != control, seen.index(control)

  return sorted(seen, key=key)


def control_name(control: str) -> str:
  """'shuffled', 'shuffled visual', 'only textual', ... for headers."""
  if control in CONTROL_NAMES:
    return CONTROL_NAMES[control]
  kind, _, modality = control.partition('_')
  if kind == 'only':
    return f'only {modality}'
  if kind in ('shuffle', 'noise') and modality:
    return f'{CONTROL_NAMES[kind]} {modality}'
  return control


def group_name(group: str) -> str:
  return GROUP_NAMES.get(group, group.replace('_', ' '))


@dataclasses.dataclass(frozen=True)
class LeverageTable:
  """One dataset and group of a study's table.csv.

  Attributes:
    dataset: the dataset.
    group: the user or item group (all, warm_users, cold_users, cold_items).
    controls: the controls present, in column order.
    rows: the (model, representation) pairs, in first-seen order.
    cells: (model, representation, control) -> its table.csv row (text).
  """
  dataset: str
  group: str
  controls: tuple[str, ...]
  rows: tuple[tuple[str, str], ...]
  cells: dict[tuple[str, str, str], dict[str, str]]

  @property
  def stem(self) -> str:
    return f'leverage_{sanitize(self.dataset)}_{sanitize(self.group)}'

  @property
  def title(self) -> str:
    return f'{self.dataset}, {group_name(self.group)}'

  def cell(self, row: tuple[str, str], control: str) -> dict[str, str]:
    return self.cells.get((*row, control), {})

  def significant(self, row: tuple[str, str], control: str,
                  alpha: float) -> bool:
    """Real differs from `control` on this row (Holm p < alpha)."""
    if control == 'real':
      return False
    p = number(self.cell(row, control).get(P_COLUMN))
    return p is not None and math.isfinite(p) and p < alpha

  @property
  def p_controls(self) -> tuple[str, ...]:
    """The shuffled controls (shuffle, shuffle_<m>): a p column each."""
    return tuple(c for c in self.controls
                 if c.partition('_')[0] == 'shuffle')


def leverage_tables(rows: Sequence[dict[str, str]],
                    path: str = TABLE) -> list[LeverageTable]:
  """The rows of a table.csv as one LeverageTable per (dataset, group).

  Raises:
    ReportError: two rows for one (dataset, group, model, representation,
      control), naming the second one's line.
  """
  tables: dict[tuple[str, str], dict[str, Any]] = {}
  for line, r in enumerate(rows, start=2):
    key = (r['dataset'], r['group'])
    t = tables.setdefault(key, {'controls': [], 'rows': [], 'cells': {}})
    cell = (r['model'], r['representation'], r['control'])
    if cell in t['cells']:
      raise ReportError(f'{path}:{line}: a second row for {", ".join(cell)}'
                        f' in {key[0]}, {key[1]}')
    t['cells'][cell] = r
    t['controls'].append(r['control'])
    t['rows'].append(cell[:2])
  return [LeverageTable(
      dataset=d, group=g, controls=tuple(order_controls(t['controls'])),
      rows=tuple(dict.fromkeys(t['rows'])), cells=t['cells'])
          for (d, g), t in tables.items()]


def _value(x: float | None) -> str:
  if x is None or not math.isfinite(x):
    return EMPTY
  return f'{x:.4f}'


def format_p(p: float | None) -> str:
  """A p-value: 3 significant digits, scientific below 0.001."""
  if p is None or not math.isfinite(p):
    return EMPTY
  if p < 1e-3:
    return f'{p:.1e}'
  return f'{p:.3g}'


def _parts(table: LeverageTable, row: tuple[str, str], control: str,
           metric: str, alpha: float) -> tuple[str, str, str]:
  """(mean, std, marks) of one cell; std '' for one seed or none."""
  c = table.cell(row, control)
  mean = _value(number(c.get(f'{metric}_mean')))
  std = number(c.get(f'{metric}_std'))
  n = number(c.get('n_seeds'))
  std_text = ('' if mean == EMPTY or std is None or not math.isfinite(std)
              or (n is not None and n < 2) else _value(std))
  marks = ''
  if metric == METRICS[0][0] and c:
    if table.significant(row, control, alpha):
      marks += DAGGER
    if truthy(c.get('at_budget')):
      marks += '*'
  return mean, std_text, marks


def _p(table: LeverageTable, row: tuple[str, str], control: str,
       alpha: float) -> tuple[str, bool]:
  """(the Holm p-value of real vs `control` as text, significant)."""
  text = format_p(number(table.cell(row, control).get(P_COLUMN)))
  return text, table.significant(row, control, alpha)


def table_note(alpha: float) -> str:
  return (f'Test metrics at the validation-selected epoch, mean ± sample std '
          f'over seeds. {DAGGER}: real differs from this control '
          f'(Holm-adjusted paired t-test over users, p < {alpha:g}); the p '
          f'columns are real vs each shuffled control ({P_COLUMN}), bold '
          f'when p < {alpha:g}. *: a seed\'s best epoch was at the end of its '
          'budget.')


def table_csv(table: LeverageTable) -> str:
  """The table as CSV: per control each metric's mean and std and the
  control's Holm p-value against real, copied from table.csv unchanged."""
  head = ['dataset', 'group', 'model', 'representation']
  for c in table.controls:
    head.append(f'{c}/n_seeds')
    for m, _ in METRICS:
      head += [f'{c}/{m}_mean', f'{c}/{m}_std']
    if c != 'real':
      head.append(f'{c}/{P_COLUMN}')
  buf = io.StringIO()
  writer = csv.writer(buf, lineterminator='\n')
  writer.writerow(head)
  for row in table.rows:
    out = [table.dataset, table.group, *row]
    for c in table.controls:
      cell = table.cell(row, c)
      out.append(cell.get('n_seeds', ''))
      for m, _ in METRICS:
        out += [cell.get(f'{m}_mean', ''), cell.get(f'{m}_std', '')]
      if c != 'real':
        out.append(cell.get(P_COLUMN, ''))
    writer.writerow(out)
  return buf.getvalue()


def _md(text: str) -> str:
  return str(text).replace('|', r'\|')


def table_markdown(table: LeverageTable, alpha: float) -> str:
  head = ['model', 'representation']
  for c in table.controls:
    head += [f'{control_name(c)} {short}' for _, short in METRICS]
  head += [f'p real vs {control_name(c)} (Holm)'
           for c in table.p_controls]
  lines = [f'## Leverage: {table.title}', '',
           '| ' + ' | '.join(head) + ' |',
           '|---|---|' + '---:|' * (len(head) - 2)]
  for row in table.rows:
    cells = [_md(row[0]), _md(row[1])]
    for c in table.controls:
      for m, _ in METRICS:
        mean, std, marks = _parts(table, row, c, m, alpha)
        cells.append(mean + (f' ± {std}' if std else '') +
                     marks.replace('*', r'\*'))
    for c in table.p_controls:
      p, sig = _p(table, row, c, alpha)
      cells.append(f'**{p}**' if sig else p)
    lines.append('| ' + ' | '.join(cells) + ' |')
  lines += ['', table_note(alpha)]
  return '\n'.join(lines) + '\n'


_TEX = {'\\': r'\textbackslash{}', '&': r'\&', '%': r'\%', '$': r'\$',
        '#': r'\#', '_': r'\_', '{': r'\{', '}': r'\}', '~': r'\~{}',
        '^': r'\^{}'}


def tex(text: str) -> str:
  return ''.join(_TEX.get(ch, ch) for ch in str(text))


def table_latex(table: LeverageTable, alpha: float) -> str:
  """A booktabs tabular: a column group of three metrics per control."""
  k = len(METRICS)
  p_cols = len(table.p_controls)
  spec = 'll' + ('r' * k) * len(table.controls) + 'r' * p_cols
  groups, rules = ['', ''], []
  for i, c in enumerate(table.controls):
    first = 3 + i * k
    groups.append(f'\\multicolumn{{{k}}}{{c}}{{{tex(control_name(c))}}}')
    rules.append(f'\\cmidrule(lr){{{first}-{first + k - 1}}}')
  names = ['Model', 'Representation']
  names += [tex(short) for _ in table.controls for _, short in METRICS]
  if p_cols:
    first = 3 + len(table.controls) * k
    groups.append(f'\\multicolumn{{{p_cols}}}{{c}}{{$p$ real vs (Holm)}}')
    rules.append(f'\\cmidrule(lr){{{first}-{first + p_cols - 1}}}')
    names += [tex(control_name(c)) for c in table.p_controls]
  lines = [
      '% Written by python -m mmjax.report; needs \\usepackage{booktabs}.',
      f'% Leverage: {tex(table.title)}.',
      f'\\begin{{tabular}}{{{spec}}}', '\\toprule',
      ' & '.join(groups) + r' \\', ''.join(rules),
      ' & '.join(names) + r' \\', '\\midrule']
  for row in table.rows:
    cells = [tex(row[0]), tex(row[1])]
    for c in table.controls:
      for m, _ in METRICS:
        mean, std, marks = _parts(table, row, c, m, alpha)
        text = mean.replace(EMPTY, '--') + (f' $\\pm$ {std}' if std else '')
        if marks:
          text += '$^{' + marks.replace(DAGGER, r'\dagger') + '}$'
        cells.append(text)
    for c in table.p_controls:
      p, sig = _p(table, row, c, alpha)
      p = p.replace(EMPTY, '--')
      cells.append(f'\\textbf{{{p}}}' if sig else p)
    lines.append(' & '.join(cells) + r' \\')
  lines += ['\\bottomrule', '\\end{tabular}',
            '% ' + table_note(alpha).replace(DAGGER, 'dagger')]
  return '\n'.join(lines) + '\n'


def _e(text: Any) -> str:
  return html.escape(str(text), quote=True)


def table_html(table: LeverageTable, alpha: float) -> str:
  k = len(METRICS)
  top = ['<th rowspan="2">model</th>', '<th rowspan="2">representation</th>']
  top += [f'<th colspan="{k}">{_e(control_name(c))}</th>'
          for c in table.controls]
  sub = [f'<th>{_e(short)}</th>' for _ in table.controls
         for _, short in METRICS]
  if table.p_controls:
    top.append(f'<th colspan="{len(table.p_controls)}">p real vs (Holm)'
               '</th>')
    sub += [f'<th>{_e(control_name(c))}</th>' for c in table.p_controls]
  out = ['<div class="scroll"><table class="leverage">',
         '<thead><tr>' + ''.join(top) + '</tr>',
         '<tr>' + ''.join(sub) + '</tr></thead><tbody>']
  for row in table.rows:
    cells = [f'<td class="l">{_e(row[0])}</td>',
             f'<td class="l">{_e(row[1])}</td>']
    for c in table.controls:
      for m, _ in METRICS:
        mean, std, marks = _parts(table, row, c, m, alpha)
        text = _e(mean)
        if marks:
          text += f'<sup>{_e(marks)}</sup>'
        if std:  # Below the mean: the table is wide already.
          text += f'<br><span class="sd">± {_e(std)}</span>'
        cells.append(f'<td>{text}</td>')
    for c in table.p_controls:
      p, sig = _p(table, row, c, alpha)
      cells.append(f'<td class="sig">{_e(p)}</td>' if sig else
                   f'<td>{_e(p)}</td>')
    out.append('<tr>' + ''.join(cells) + '</tr>')
  out.append('</tbody></table></div>')
  return '\n'.join(out)


def write_text(path: str, text: str) -> str:
  with open(path, 'w', encoding='utf-8') as f:
    f.write(text)
  return path


def write_tables(tables: Sequence[LeverageTable], out_dir: str,
                 alpha: float) -> list[str]:
  """Writes each table's .csv, .md and .tex into `out_dir`."""
  paths = []
  for t in tables:
    stem = os.path.join(out_dir, t.stem)
    paths += [write_text(stem + '.csv', table_csv(t)),
              write_text(stem + '.md', table_markdown(t, alpha)),
              write_text(stem + '.tex', table_latex(t, alpha))]
  return paths


def gains(tables: Sequence[LeverageTable], alpha: float
          ) -> dict[str, list[plots.Gain]]:
  """Per dataset, the gain markers of every group's non-real controls."""
  out: dict[str, list[plots.Gain]] = {}
  for t in tables:
    for row in t.rows:
      for c in t.controls:
        cell = t.cell(row, c)
        gap = number(cell.get('gap'))
        if c == 'real' or gap is None or not math.isfinite(gap):
          continue
        out.setdefault(t.dataset, []).append(plots.Gain(
            panel=group_name(t.group),
            row=f'{row[0]} · {readable(row[1])}',
            control=c, gap=gap, low=number(cell.get('ci_low')),
            high=number(cell.get('ci_high')),
            significant=t.significant(row, c, alpha)))
  return out


# ---------------------------------------------------------------------------
# Learning curves.


def select_metric(cfg: dict[str, Any] | None) -> str:
  return ((cfg or {}).get('eval') or {}).get('select_metric') or 'recall@20'


def run_curve(directory: str, label: str, seed: Any,
              colour: str | None = None
              ) -> tuple[plots.Curve | None, str]:
  """(the run's validation curve or None, its metric 'val/<select>')."""
  cfg = _maybe_json(os.path.join(directory, sweep_lib.CONFIG))
  metric = 'val/' + select_metric(cfg)
  epochs, values, best = [], [], None
  for line in read_metrics(os.path.join(directory, METRICS_JSONL)):
    if line.get('final'):
      best = line.get('best_epoch', best)
      continue
    v = number(line.get(metric))
    if v is not None and line.get('epoch') is not None:
      epochs.append(int(line['epoch']))
      values.append(v)
  results = _maybe_json(os.path.join(directory, sweep_lib.RESULTS)) or {}
  best = results.get('best_epoch', best)
  if not epochs:
    return None, metric
  return plots.Curve(label=label, seed=seed, epochs=tuple(epochs),
                     values=tuple(values),
                     best_epoch=int(best) if best is not None else None,
                     colour=colour), metric


@dataclasses.dataclass
class CurveSet:
  """One learning-curve figure: the runs of a (model, representation)."""
  model: str
  representation: str
  curves: list[plots.Curve] = dataclasses.field(default_factory=list)
  metric: str = 'val/recall@20'
  missing: int = 0  # Runs without a validation curve.


def _add(sets: dict[tuple[str, str], CurveSet], model: str, rep: str,
         directory: str, label: str, seed: Any,
         colour: str | None) -> None:
  s = sets.setdefault((model, rep), CurveSet(model, rep))
  curve, metric = run_curve(directory, label, seed, colour)
  if curve is None:
    s.missing += 1
  else:
    s.curves.append(curve)
    s.metric = metric


def study_run_dir(study_dir: str, row: dict[str, str],
                  sweeps: Sequence[str] = ()) -> str | None:
  """The run directory a study.csv row names, or None.

  The row's run_dir (or dir, workdir, run) column is a path, absolute or
  relative to the study, or (its last part) the name of a run of one of
  `sweeps`, which finds the runs of a study moved after it ran.
  """
  for key in ('run_dir', 'run dir', 'dir', 'workdir', 'run'):
    text = (row.get(key) or '').strip()
    if not text:
      continue
    # A moved study: its runs by name in its own sweeps.
    for path in (text, os.path.join(study_dir, text),
                 *(sweep_lib.run_dir(s, os.path.basename(text.rstrip('/')))
                   for s in sweeps)):
      if os.path.isdir(path):
        return path
  return None


def study_curves(study_dir: str, rows: Sequence[dict[str, str]]
                 ) -> list[CurveSet]:
  """The final runs of study.csv, a figure per (model, representation),
  one colour per control."""
  controls = order_controls(r.get('control', '') for r in rows)
  styles = plots.control_styles(controls)
  sets: dict[tuple[str, str], CurveSet] = {}
  sweeps = sweep_dirs(study_dir)
  for r in rows:
    directory = study_run_dir(study_dir, r, sweeps)
    model, rep = r.get('model', ''), r.get('representation', '')
    if directory is None:
      sets.setdefault((model, rep), CurveSet(model, rep)).missing += 1
      continue
    c = r.get('control', '')
    _add(sets, model, rep, directory, control_name(c), r.get('seed', ''),
         styles.get(c, (None,))[0])
  return list(sets.values())


def sweep_curves(directory: str) -> list[CurveSet]:
  """A sweep's runs, a figure per (model, representation), one colour per
  (control, grid point)."""
  _, _, records = sweep_lib.load_records(directory)
  # The control (as mmjax.sweep names it: 'none' is the real features) is
  # named when it varies; it replaces a swept features.control.
  controls = {r.group[2] for r in records if r.group[2]}
  sets: dict[tuple[str, str], CurveSet] = {}
  for r in records:
    model, rep, control = r.group
    parts = [f'control={control}'] if len(controls) > 1 else []
    parts += [f'{k.rsplit(".", 1)[-1]}={v}' for k, v in r.point
              if k != 'features.control']
    _add(sets, model or '?', rep or '?', sweep_lib.run_dir(
        directory, r.name), ', '.join(parts) or 'run', r.seed, None)
  return list(sets.values())


def draw_curves(sets: Sequence[CurveSet], out_dir: str) -> list[
    tuple[CurveSet, list[str]]]:
  out = []
  for i, s in enumerate(sets):
    if not s.curves:
      continue
    stem = os.path.join(out_dir, f'curves_{i:02d}_{sanitize(s.model)}_'
                        f'{sanitize(s.representation)}')
    paths = plots.curves_figure(
        s.curves, stem, title=f'{s.model} · {readable(s.representation)}',
        metric=s.metric)
    out.append((s, paths))
  return out


# ---------------------------------------------------------------------------
# Provenance: commands, configs, versions, failures.


@dataclasses.dataclass
class RunSet:
  """The runs of one sweep directory, with what they recorded."""
  directory: str
  spec: dict[str, Any]
  runs: list[tuple[str, str]]  # (name, run directory)


def load_runsets(directories: Sequence[str]) -> list[RunSet]:
  out = []
  for d in directories:
    spec = read_json(os.path.join(d, SWEEP), 'the sweep spec')
    out.append(RunSet(d, spec, [(r['name'], sweep_lib.run_dir(d, r['name']))
                                for r in spec.get('runs', [])]))
  return out


def sweep_command(spec: dict[str, Any], directory: str) -> str:
  """The `python -m mmjax.sweep` command that makes this sweep.json."""
  config = str(spec.get('config', '?'))
  if spec.get('variant'):
    config += ':' + str(spec['variant'])
  args = ['python', '-m', 'mmjax.sweep', '--config', config,
          '--workdir', directory]
  for key, values in (spec.get('grid') or {}).items():
    if isinstance(values, (list, tuple)):
      values = ','.join(str(v) for v in values)
    args += ['--grid', f'{key}={values}']
  for key, value in (spec.get('sets') or {}).items():
    args += ['--set', f'{key}={value}']
  if spec.get('seeds') is not None:
    args += ['--seeds', ','.join(str(s) for s in spec['seeds'])]
  return shlex.join(args)


def study_commands(spec: Any) -> tuple[list[str], list[str]]:
  """(the study's own commands, the commands of its runs) of study.json.

  mmjax.study records {'commands': {'study': <command>, 'runs': {name:
  <launch command>}}}; a plain list or string is taken as the study's.
  """
  if not isinstance(spec, dict):
    return [], []
  main_cmds, runs = [], []
  for key in ('commands', 'command', 'argv'):
    value = spec.get(key)
    if isinstance(value, dict):
      for k, v in value.items():
        if k == 'runs':
          runs += (_command_text(list(v.values())) if isinstance(v, dict)
                   else _command_text(v))
        else:
          main_cmds += _command_text(v)
    elif value:
      main_cmds += _command_text(value)
  return main_cmds, runs


def _command_text(value: Any) -> list[str]:
  """Commands as recorded (a string, an argv list, or lists/dicts of them)."""
  if isinstance(value, str):
    return [value]
  if isinstance(value, (list, tuple)):
    if value and all(isinstance(v, str) for v in value) and any(
        v.startswith('-') for v in value):
      return [shlex.join(value)]
    return [t for v in value for t in _command_text(v)]
  if isinstance(value, dict):
    return [f'{k}: {t}' for k, v in value.items() for t in _command_text(v)]
  return [str(value)]


def run_state(directory: str) -> dict[str, Any]:
  status = sweep_lib.read_status(directory)
  if not os.path.isdir(directory):
    status = {'state': 'pending'}
  elif (os.path.exists(os.path.join(directory, sweep_lib.RESULTS)) and
        status.get('state') == 'done'):
    status = {**status, 'state': 'done'}
  elif status.get('state') not in ('failed', 'interrupted', 'running'):
    status = {**status, 'state': 'incomplete'}
  return status


def failures(runsets: Sequence[RunSet]) -> list[dict[str, Any]]:
  """The failed and interrupted runs, with their exit code and log tail."""
  out = []
  for rs in runsets:
    for name, d in rs.runs:
      status = run_state(d)
      if status['state'] in ('failed', 'interrupted'):
        out.append({'sweep': rs.directory, 'run': name,
                    'state': status['state'],
                    'exit_code': status.get('exit_code'),
                    'log_tail': list(status.get('log_tail') or []),
                    'log': os.path.join(d, sweep_lib.LOG)})
  return out


def provenance(runsets: Sequence[RunSet]) -> dict[str, Any]:
  """What the runs' runinfo.json files say: commits, versions, platforms."""
  commits: collections.Counter = collections.Counter()
  packages: dict[str, collections.Counter] = {}
  other: dict[str, collections.Counter] = {
      k: collections.Counter() for k in ('python', 'platform', 'devices',
                                         'xla_flags')}
  argv, n = [], 0
  for rs in runsets:
    for _, d in rs.runs:
      info = _maybe_json(os.path.join(d, RUNINFO))
      if not isinstance(info, dict):
        continue
      n += 1
      commit = info.get('git_commit') or 'unknown'
      commits[commit + (' (uncommitted changes, see git.diff)'
                        if info.get('git_dirty') else '')] += 1
      for name, version in (info.get('packages') or {}).items():
        packages.setdefault(name, collections.Counter())[
            str(version)] += 1
      for key in other:
        value = info.get(key)
        if key == 'python' and value:
          value = str(value).split()[0]
        if key == 'devices' and isinstance(value, list):
          value = f'{len(value)} x {value[0]}' if value else 'none'
        if value not in (None, ''):
          other[key][str(value)] += 1
      if info.get('argv'):
        argv.append(shlex.join(str(a) for a in info['argv']))
  return {'runs': n, 'commits': commits, 'packages': packages,
          'other': other, 'argv': argv}


def representative_configs(runsets: Sequence[RunSet]
                           ) -> list[tuple[str, dict[str, Any]]]:
  """(title, config.json) of the first run of each (model, representation,
  control) group, plus each sweep's spec."""
  out, seen = [], set()
  for rs in runsets:
    out.append((f'{rs.directory}/{SWEEP}', rs.spec))
    for name, d in rs.runs:
      cfg = _maybe_json(os.path.join(d, sweep_lib.CONFIG))
      if not isinstance(cfg, dict):
        continue
      group = ((cfg.get('model') or {}).get('name'),
               sweep_lib.representation(cfg), sweep_lib.control(cfg))
      if group in seen:
        continue
      seen.add(group)
      out.append((f'{name}/{sweep_lib.CONFIG} ({", ".join(map(str, group))}'
                  ')', cfg))
  return out


# ---------------------------------------------------------------------------
# The page.

CSS = f"""
body {{ font-family: "DejaVu Sans", Arial, sans-serif; color: #212529;
  background: #ffffff; margin: 0 auto; padding: 8px 24px; max-width: 1220px;
  font-size: 14px; }}
h1 {{ font-size: 24px; margin: 12px 0 4px; }}
h2 {{ font-size: 19px; margin: 26px 0 6px; border-bottom: 1px solid #dee2e6;
  padding-bottom: 3px; }}
h3 {{ font-size: 15px; margin: 16px 0 4px; }}
.meta {{ color: #495057; margin: 2px 0; }}
.scroll {{ overflow-x: auto; }}
table {{ border-collapse: collapse; font-size: 13px; margin: 6px 0 10px; }}
th {{ background: {HEADER_COLOUR}; color: #ffffff; padding: 4px 8px;
  border: 1px solid #ffffff; font-weight: 600; }}
td {{ padding: 3px 8px; border-bottom: 1px solid #dee2e6; text-align: right;
  white-space: nowrap; }}
td.l {{ text-align: left; }}
td.sig {{ font-weight: bold; }}
.sd {{ color: #6c757d; }}
tr.failed td, .failed {{ color: #c92a2a; }}
.note {{ color: #495057; font-size: 12.5px; max-width: 1000px; }}
figure {{ margin: 8px 0 18px; }}
figure img {{ max-width: 100%; height: auto; display: block; }}
figcaption {{ color: #495057; font-size: 12.5px; }}
pre {{ background: #f1f3f5; padding: 8px; overflow-x: auto; font-size: 12px;
  margin: 4px 0; white-space: pre-wrap; word-break: break-all; }}
details {{ margin: 3px 0; }}
summary {{ cursor: pointer; }}
code {{ font-size: 12.5px; }}
"""


def image_tag(png: str, alt: str) -> str:
  with open(png, 'rb') as f:
    data = base64.b64encode(f.read()).decode('ascii')
  return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def figure_html(paths: Sequence[str], caption: str) -> str:
  png = next(p for p in paths if p.endswith('.png'))
  files = ', '.join(os.path.basename(p) for p in paths)
  return (f'<figure>{image_tag(png, caption)}<figcaption>{_e(caption)} '
          f'({_e(files)})</figcaption></figure>')


def _json_block(title: str, value: Any) -> str:
  text = json.dumps(value, indent=2, sort_keys=True, default=str)
  return (f'<details><summary>{_e(title)}</summary><pre>{_e(text)}</pre>'
          '</details>')


def plain_table(head: Sequence[str], rows: Sequence[Sequence[Any]],
                left: int = 1, row_class: Sequence[str] | None = None
                ) -> str:
  out = ['<div class="scroll"><table>',
         '<thead><tr>' + ''.join(f'<th>{_e(h)}</th>' for h in head) +
         '</tr></thead><tbody>']
  for i, r in enumerate(rows):
    cls = f' class="{row_class[i]}"' if row_class and row_class[i] else ''
    out.append(f'<tr{cls}>' + ''.join(
        f'<td class="l">{_e(c)}</td>' if j < left else f'<td>{_e(c)}</td>'
        for j, c in enumerate(r)) + '</tr>')
  out.append('</tbody></table></div>')
  return '\n'.join(out)


def _show(column: str, text: str) -> str:
  """A results.csv cell for the page: metrics to 4 decimals, the rest (run
  names, swept values such as a learning rate of 1e-5) as written."""
  x = number(text)
  if (not column.startswith(('val/', 'test/')) or x is None or
      not math.isfinite(x)):
    return text
  return _value(x)


def provenance_html(prov: dict[str, Any]) -> str:
  parts = [f'<p class="meta">Recorded by {prov["runs"]} runs '
           f'(runinfo.json).</p>']
  if prov['commits']:
    parts.append(plain_table(['git commit', 'runs'],
                             prov['commits'].most_common()))
  rows = [(k, ', '.join(f'{v} ({n})' if len(c) > 1 else v
                        for v, n in c.most_common()))
          for k, c in prov['other'].items() if c]
  rows += [(k, ', '.join(f'{v} ({n})' if len(c) > 1 else v
                         for v, n in c.most_common()))
           for k, c in sorted(prov['packages'].items())]
  if rows:
    parts.append(plain_table(['', 'version (runs, where they differ)'],
                             rows))
  if prov['argv']:
    parts.append(f'<details><summary>the {len(prov["argv"])} runs\' '
                 'commands (runinfo.json argv)</summary><pre>' +
                 _e('\n'.join(prov['argv'])) + '</pre></details>')
  return '\n'.join(parts)


def failures_html(failed: Sequence[dict[str, Any]]) -> str:
  if not failed:
    return ''
  parts = [f'<h2>Failed runs ({len(failed)})</h2>']
  for f in failed:
    tail = f['log_tail'] or ['(no log recorded)']
    parts.append(
        f'<h3 class="failed">{_e(f["run"])}: {_e(f["state"])}, exit '
        f'{_e(f["exit_code"])}</h3><p class="meta">{_e(f["log"])}; last '
        f'line: <code>{_e(tail[-1])}</code></p><pre>'
        f'{_e(chr(10).join(tail))}</pre>')
  return '\n'.join(parts)


def page(title: str, sections: Sequence[str]) -> str:
  return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
          f'<title>{_e(title)}</title><style>{CSS}</style></head>\n<body>\n'
          + '\n'.join(s for s in sections if s) + '\n</body></html>\n')


# ---------------------------------------------------------------------------
# The two kinds of report.


@dataclasses.dataclass(frozen=True)
class Report:
  """What `build` wrote."""
  kind: str
  index: str
  tables: tuple[str, ...]
  figures: tuple[str, ...]
  failed: int


def _curves_section(drawn: Sequence[tuple[CurveSet, list[str]]],
                    sets: Sequence[CurveSet], what: str) -> str:
  parts = ['<h2>Learning curves</h2>',
           f'<p class="note">Validation select metric per evaluation, '
           f'{what}; one line style per seed; ★ the best (selected) '
           'epoch.</p>']
  for s, paths in drawn:
    caption = f'{s.model} · {s.representation}: {s.metric}'
    if s.missing:
      caption += f' ({s.missing} runs without a validation curve)'
    parts.append(figure_html(paths, caption))
  empty = [s for s in sets if not s.curves]
  if empty:
    parts.append('<p class="note">No validation curve: ' + _e(', '.join(
        f'{s.model} · {s.representation}' for s in empty)) + '.</p>')
  return '\n'.join(parts) if drawn or empty else ''


def _what_ran(commands: Sequence[str], runsets: Sequence[RunSet],
              configs: Sequence[tuple[str, Any]],
              prov: dict[str, Any], run_commands: Sequence[str] = ()
              ) -> str:
  parts = ['<h2>What was run</h2>', '<h3>Commands</h3>',
           '<pre>' + _e('\n'.join(commands)) + '</pre>']
  if run_commands:
    parts.append(f'<details><summary>the {len(run_commands)} final runs\' '
                 'commands (study.json)</summary><pre>' +
                 _e('\n'.join(run_commands)) + '</pre></details>')
  rows = []
  for rs in runsets:
    counts = collections.Counter(run_state(d)['state'] for _, d in rs.runs)
    rows.append((rs.directory, len(rs.runs), ', '.join(
        f'{n} {s}' for s, n in sorted(counts.items()))))
  if rows:
    parts.append(plain_table(['sweep', 'runs', 'status'], rows))
  parts.append('<h3>Configs</h3>')
  parts += [_json_block(t, v) for t, v in configs]
  parts += ['<h3>Code and versions</h3>', provenance_html(prov)]
  return '\n'.join(parts)


def study_report(directory: str, out_dir: str, alpha: float) -> Report:
  spec = read_json(os.path.join(directory, STUDY), 'the study spec')
  rows = read_csv(os.path.join(directory, TABLE), TABLE_COLUMNS,
                  'the study table; written by python -m mmjax.study')
  if not rows:
    raise ReportError(f'{os.path.join(directory, TABLE)}: no rows')
  study_rows = read_csv(os.path.join(directory, STUDY_CSV),
                        ('model', 'representation', 'control', 'seed'),
                        'the final runs; written by python -m mmjax.study')
  tables = leverage_tables(rows, os.path.join(directory, TABLE))
  table_paths = write_tables(tables, out_dir, alpha)
  figures, sections = [], []
  name = os.path.basename(os.path.abspath(directory))
  label = ((spec.get('spec') or {}).get('name') if isinstance(spec, dict)
           else None)
  sections.append(f'<h1>Leverage study {_e(label or name)}'
                  f'{f" ({_e(name)})" if label else ""}</h1>')
  datasets = list(dict.fromkeys(t.dataset for t in tables))
  sections.append(
      f'<p class="meta">{_e(os.path.abspath(directory))}: '
      f'{len(datasets)} dataset(s), {len(study_rows)} final runs; written '
      f'by <code>python -m mmjax.report {_e(directory)}</code>.</p>')
  per_dataset = gains(tables, alpha)
  for d in datasets:
    sections.append(f'<h2>{_e(d)}</h2>')
    for t in (t for t in tables if t.dataset == d):
      sections += [f'<h3>{_e(t.title)}</h3>', table_html(t, alpha),
                   f'<p class="note">{_e(table_note(alpha))} Files: '
                   f'{_e(t.stem)}.csv, .md, .tex.</p>']
    if per_dataset.get(d):
      paths = plots.gain_figure(
          per_dataset[d], os.path.join(out_dir, f'gain_{sanitize(d)}'),
          title=f'{d}: gain of real features over each control',
          alpha=alpha, control_names={c: control_name(c) for t in tables
                                      for c in t.controls})
      figures += paths
      sections.append(figure_html(
          paths, f'{d}: test Recall@20 of real minus each control, mean '
          'over seeds, with its bootstrap 95% interval; filled markers: '
          f'Holm-adjusted p < {alpha:g}.'))
  sets = study_curves(directory, study_rows)
  drawn = draw_curves(sets, out_dir)
  figures += [p for _, ps in drawn for p in ps]
  sections.append(_curves_section(drawn, sets, 'final runs, one colour per '
                                  'control'))
  runsets = load_runsets(sweep_dirs(directory))
  failed = failures(runsets)
  sections.append(failures_html(failed))
  commands, run_commands = study_commands(spec)
  if not commands:
    commands = [f'(study.json records no command for {directory})']
  # Sweeps the study ran itself (source 'study...') have no command of
  # their own; any other sweep under the study does.
  commands += [sweep_command(rs.spec, rs.directory) for rs in runsets
               if not str(rs.spec.get('source', '')).startswith('study')]
  configs = [(STUDY, spec)] + representative_configs(runsets)
  sections.append(_what_ran(commands, runsets, configs, provenance(runsets),
                            run_commands))
  index = write_text(os.path.join(out_dir, INDEX),
                     page(f'mmjax study {name}', sections))
  return Report('study', index, tuple(table_paths), tuple(figures),
                len(failed))


def sweep_report(directory: str, out_dir: str, alpha: float) -> Report:
  del alpha  # A sweep has no paired tests.
  results_path = os.path.join(directory, RESULTS_CSV)
  if not os.path.exists(results_path):
    raise ReportError(f'{results_path}: missing; collect the sweep first '
                      f'(python -m mmjax.sweep --collect {directory})')
  results = read_csv(results_path, ('run', 'status'))
  try:
    _, _, records = sweep_lib.load_records(directory)
  except sweep_lib.SweepError as e:
    raise ReportError(str(e)) from None
  selections = sweep_lib.select(records)
  name = os.path.basename(os.path.abspath(directory))
  runsets = load_runsets([directory])
  failed = failures(runsets)
  counts = collections.Counter(r.status for r in records)
  sections = [
      f'<h1>Sweep {_e(name)}</h1>',
      f'<p class="meta">{_e(os.path.abspath(directory))}: {len(records)} '
      f'runs ({_e(", ".join(f"{n} {s}" for s, n in sorted(counts.items())))}'
      f'); written by <code>python -m mmjax.report {_e(directory)}</code>.'
      '</p>', '<h2>Summary</h2>']
  if selections:
    tests = []
    for s in selections:
      for m in sweep_lib.summary_metrics(s.select_metric, list(s.test_mean)):
        if m not in tests:
          tests.append(m)
    head = (['model', 'representation', 'control', 'selected point', 'n',
             f'val {selections[0].select_metric}'] +
            [f'test {m}' for m in tests] + ['at budget'])
    rows = []
    for s in selections:
      point = ', '.join(f'{k}={v}' for k, v in s.point) or '(single point)'
      row = [*s.group, point, len(s.seeds), _value(s.val_mean)]
      for m in tests:
        mean, std = s.test_mean.get(f'test/{m}'), s.test_std.get(f'test/{m}')
        text = _value(mean)
        if len(s.seeds) > 1 and std is not None and math.isfinite(std):
          text += f' ± {_value(std)}'
        row.append(text)
      row.append('* yes' if s.at_budget else '')
      rows.append(row)
    sections += [plain_table(head, rows, left=4),
                 '<p class="note">Per (model, representation, control) the '
                 'grid point with the best mean validation metric over its '
                 'seeds; test at that point as mean ± sample std over those '
                 'seeds (n). Test is never read to select. at budget: a '
                 'selected seed\'s best epoch was at the end of its budget.'
                 '</p>']
  else:
    sections.append('<p>No finished runs yet.</p>')
  sections.append(failures_html(failed))
  head = list(results[0].keys()) if results else ['run', 'status']
  metric_cols = [h for h in head if h.startswith(('val/', 'test/'))]
  shown = [h for h in head if h not in metric_cols] + [
      h for h in metric_cols if re.search(r'(recall|ndcg|hit)@', h)]
  sections += [f'<h2>Results ({RESULTS_CSV})</h2>',
               plain_table(shown, [[_show(h, r.get(h, '')) for h in shown]
                                   for r in results], left=2,
                           row_class=['failed' if r.get('status') in (
                               'failed', 'interrupted') else ''
                                      for r in results]),
               f'<p class="note">Metric columns shown: Recall, NDCG and HR; '
               f'{RESULTS_CSV} has all {len(metric_cols)}.</p>']
  sets = sweep_curves(directory)
  drawn = draw_curves(sets, out_dir)
  figures = [p for _, ps in drawn for p in ps]
  sections.append(_curves_section(drawn, sets, 'one colour per grid point'))
  spec = runsets[0].spec
  commands = [sweep_command(spec, directory)]
  sections.append(_what_ran(commands, runsets,
                            representative_configs(runsets),
                            provenance(runsets)))
  index = write_text(os.path.join(out_dir, INDEX),
                     page(f'mmjax sweep {name}', sections))
  return Report('sweep', index, (), tuple(figures), len(failed))


def build(directory: str, alpha: float = DEFAULT_ALPHA) -> Report:
  """Writes the report of the study or sweep in `directory`.

  Args:
    directory: a study (study.json) or sweep (sweep.json) directory.
    alpha: the significance level of the marks.

  Returns:
    What was written, under `<directory>/report/`.

  Raises:
    ReportError: a missing or malformed input (one line).
  """
  if not 0.0 < alpha < 1.0:
    raise ReportError(f'--alpha {alpha}: expected a level in (0, 1)')
  kind = detect(directory)
  out_dir = os.path.join(directory, REPORT)
  os.makedirs(out_dir, exist_ok=True)
  if kind == 'study':
    return study_report(directory, out_dir, alpha)
  return sweep_report(directory, out_dir, alpha)


# ---------------------------------------------------------------------------
# Command line.

# argparse rather than absl flags: the report defines no global flag, so the
# study (or any script) may import it beside flags of its own.


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      prog='python -m mmjax.report',
      description='Tables, figures and a self-contained index.html of a '
      'study or sweep directory, written to <dir>/report/.')
  parser.add_argument('directory', help='a study (study.json) or sweep '
                      '(sweep.json) directory')
  parser.add_argument('--alpha', type=float, default=DEFAULT_ALPHA,
                      help='significance level of the marks (default '
                      '%(default)s)')
  return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
  """The command; returns the exit status (2 on a missing input)."""
  args = parse_args(argv)
  try:
    report = build(args.directory, args.alpha)
  except ReportError as e:
    sys.stderr.write(f'error: {e}\n')
    return USAGE
  print(f'{report.kind} report: {report.index} ({len(report.tables)} table '
        f'files, {len(report.figures)} figure files'
        f'{f", {report.failed} failed runs" if report.failed else ""})')
  return 0


if __name__ == '__main__':
  sys.exit(main())
