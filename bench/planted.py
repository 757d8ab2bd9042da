r"""The planted answer: does a model use the modality that carries signal?

  nice -n 10 .venv/bin/python bench/planted.py --out_dir /tmp/planted

For the synthetic presets `visual` (signal only in images), `text` (only in
text) and `none` (no content signal) x seeds, and for each model with both
modalities (textual=synthetic_text, visual=synthetic_visual), three runs on
the same dataset and split: the real features, the visual features shuffled
across items (`features.control=shuffle`, `control_modalities=('visual',)`)
and the textual features shuffled. Each run trains with early stopping on
validation Recall@20; test is read at the best validation epoch. Real is
compared with each control by a paired test over users (per-user test
Recall@20, `mmjax.eval.compare`); a table row pools the users of every seed
(each seed is its own dataset, so a (seed, user) pair is one independent
unit), and the p-values are Holm-corrected across the table. That test
conditions on each seed's two trained runs; the gap also varies from one
training run to the next, which only the seeds show: each row also gives the
gap per seed and `p (seeds)`, a one-sample t-test of the per-seed gaps
(not Holm-adjusted; weak with 3 seeds: run more seeds to use it).

Expected: real beats shuffled-visual (p < --alpha after Holm) on preset
`visual`, real beats shuffled-text on `text`, and neither on `none`; shuffling
the modality without signal changes nothing.

The knob (`--knob_models`): on preset `visual`, `visual_signal` swept over
`--knob_values` (the rest of the preset unchanged), real against shuffled
visual; the gap should grow with the signal. Knob rows are Holm-corrected as
their own family.

Per-model settings: `--lr`, `--model_epochs` and `--model_patience` take
model=value items (e.g. `--lr lattice=5e-3`); a model without one gets the
config's lr and `--epochs` / `--patience`. The table's header records what
each model ran with. Two more tables follow the main one: convergence (each
model's best validation epochs against its budget: a best epoch in the last
two epochs means not converged) and the kNN agreement diagnostic (`--knn_k`):
the share of each item's k nearest neighbours, by the real features, the
shuffled ones (as the control run sees them) and the training interactions,
that share its planted colour or material. It says whether the content can
reach an item-graph model (FREEDOM, LATTICE) at all, and how much of the
planted attribute the interactions reveal without any content.

With `--split_kind cold_item` (a share of the items has no training
interaction and every held-out item is one of them), a cold-only table
follows (`cold_only`, off with --nocold_only): each main-grid run's best
checkpoint is restored and ranks only the cold items, so that "orders the
cold items by their content" (real against shuffled, paired over users,
Holm) is told apart from "lifts the cold items above the warm ones" (the
median number of warm items above a user's best-scored cold item).

The dataset seed (`data.overrides.seed`) and the run seed (`config.seed`,
which also seeds the shuffle) both take the seed's value. Each run lives in
`<out_dir>/runs/<cell>/` (its training log in `train.log`); a finished run
writes `cell.json` there and is skipped when the script runs again (with
the same settings; other settings are refused), and an interrupted run starts
again. Outputs: `planted.json`,
`planted.csv`, `knob.csv`, `cold_only.csv` and the printed tables
(`planted.md`).
"""

from __future__ import annotations

import ast
import contextlib
import csv
import dataclasses
import datetime
import io
import json
import os
import platform
import shutil
import sys
import time
from typing import Any

from absl import app
from absl import flags
from absl import logging
import numpy as np
from scipy import stats

from mmjax.eval import compare
from mmjax.train import defaults

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

METRIC = 'recall@20'
CELL = 'cell.json'
# The control's label in tables: shuffling this modality.
CONTROL_LABEL = {'visual': 'shuffle_visual', 'textual': 'shuffle_text'}
# Which preset plants signal in which modality.
SIGNAL_OF = {'visual': 'visual', 'text': 'textual', 'none': None}


@dataclasses.dataclass(frozen=True)
class Cell:
  """One training run of the grid.

  Attributes:
    preset: synthetic preset.
    signal: visual_signal override, None for the preset's own value.
    seed: dataset seed and run seed.
    model: model name (configs/<model>_synthetic.py).
    control: '' (real features) or the modality shuffled.
  """

  preset: str
  signal: float | None
  seed: int
  model: str
  control: str

  @property
  def name(self) -> str:
    sig = '' if self.signal is None else f'_vs{self.signal:g}'
    ctl = self.control or 'real'
    return f'{self.preset}{sig}_s{self.seed}_{self.model}_{ctl}'


def per_model(items: list[str], cast, flag: str) -> dict[str, Any]:
  """Parses per-model overrides 'model=value' (e.g. --lr lattice=5e-3).

  Raises:
    ValueError: an item without '=', a model named twice, or a value that
      `cast` refuses; the message names the flag and the item.
  """
  out = {}
  for item in items:
    model, sep, value = item.partition('=')
    if not sep or not model:
      raise ValueError(f'--{flag}: {item!r} is not model=value.')
    if model in out:
      raise ValueError(f'--{flag}: model {model!r} given twice.')
    try:
      out[model] = cast(value)
    except ValueError as e:
      raise ValueError(f'--{flag}: {item!r}: {e}') from None
  return out


def model_sets(items: list[str]) -> dict[str, dict[str, Any]]:
  """Parses --model_set items 'model:key=value' into {model: {key: value}}.

  Values are Python literals (0.5, True, 'x') or else strings.

  Raises:
    ValueError: an item not of that form; the message names it.
  """
  out: dict[str, dict[str, Any]] = {}
  for item in items:
    model, sep, rest = item.partition(':')
    key, eq, value = rest.partition('=')
    if not (sep and eq and model and key):
      raise ValueError(f'--model_set: {item!r} is not model:key=value.')
    try:
      value = ast.literal_eval(value)
    except (ValueError, SyntaxError):
      pass  # A bare word is a string.
    out.setdefault(model, {})[key] = value
  return out


def describe_settings(models: list[str], epochs: int, patience: int,
                      epochs_of: dict[str, int], patience_of: dict[str, int],
                      lr_of: dict[str, float]) -> str:
  """One clause per model: its epoch budget, patience and learning rate.

  Models with the global settings and the config's lr share one clause, so
  that the table header records exactly what each model ran with.
  """
  groups: dict[tuple[int, int, str], list[str]] = {}
  for m in models:
    key = (epochs_of.get(m, epochs), patience_of.get(m, patience),
           f'lr {lr_of[m]:g}' if m in lr_of else 'lr of the config')
    groups.setdefault(key, []).append(m)
  return '; '.join(
      f'{",".join(ms)}: <= {e} epochs (patience {p}), {lr}'
      for (e, p, lr), ms in groups.items())


def data_overrides(preset: str, signal: float | None, seed: int,
                   num_users: int, num_items: int, per_user: int,
                   feature_noise: float | None = None) -> dict[str, Any]:
  """The `data.overrides` of a cell.

  The generator's size, preset, knob (visual_signal) and seed, and the
  emitted features' noise (None: the generator's default).
  """
  synth = {'preset': preset, 'num_users': num_users, 'num_items': num_items,
           'interactions_per_user': per_user,
           # No images: the models read the emitted feature matrices.
           'max_images': 0}
  if signal is not None:
    synth['visual_signal'] = float(signal)
  if feature_noise is not None:
    synth['feature_noise'] = float(feature_noise)
  return {'seed': int(seed), 'synthetic': synth}


def _model_config(model: str) -> Any:
  """configs/<model>_synthetic.py's `get_config()`."""
  return defaults.sibling_config(
      os.path.join(_REPO, 'configs', 'x.py'), f'{model}_synthetic'
  ).get_config()


def _flat(d: dict[str, Any], prefix: str = '') -> dict[str, Any]:
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flat(v, f'{prefix}{k}.'))
    else:
      out[prefix + k] = v
  return out


def model_changes(cfg: Any) -> dict[str, Any]:
  """The `model` fields that differ from the model's synthetic config."""
  base = _flat(_model_config(cfg.model.name).model.to_dict())
  return {k: v for k, v in _flat(cfg.model.to_dict()).items()
          if k not in base or base[k] != v}


def make_config(cell: Cell, *, num_users: int, num_items: int,
                per_user: int, epochs: int, patience: int, batch_size: int,
                lr: float | None, data_root: str,
                split: str | None = None,
                feature_noise: float | None = None,
                model_set: dict[str, Any] | None = None) -> Any:
  """The training config of a cell, from configs/<model>_synthetic.py.

  `split` replaces the data config's split kind (e.g. 'cold_item': a share
  of the items is held out of training entirely, so that only content can
  rank them); `feature_noise` the generator's feature noise (None: its
  default, 0.5); `model_set` sets `model` fields by dotted key (e.g.
  {'mm_weights.visual': 0.5}).

  Raises:
    KeyError: a `model_set` key that the model's config does not have.
  """
  c = _model_config(cell.model)
  for key, value in (model_set or {}).items():
    *path, leaf = key.split('.')
    node = c.model
    for part in path:
      node = node[part]
    if leaf not in node:
      raise KeyError(f'--model_set: {cell.model} has no model.{key}.')
    node[leaf] = value
  c.seed = int(cell.seed)
  c.data.root = data_root
  c.data.overrides = data_overrides(cell.preset, cell.signal, cell.seed,
                                    num_users, num_items, per_user,
                                    feature_noise)
  if split:
    c.data.split = split
  if cell.control:
    c.features.control = 'shuffle'
    c.features.control_modalities = (cell.control,)
  c.train.num_epochs = int(epochs)
  c.train.patience = int(patience)
  c.train.batch_size = int(batch_size)
  c.train.eval_every_epochs = 1
  if lr is not None:
    c.optim.lr = float(lr)
  # Checkpoints only where the loop must write them (best, stop, end).
  c.ckpt.every_epochs = int(epochs)
  c.ckpt.keep = 1
  c.mesh.data = 1
  return c


def grid(presets, seeds, models, controls, knob_models, knob_values,
         knob_seeds) -> list[Cell]:
  """Every cell, main grid first; knob cells equal to main cells dedup."""
  cells = []
  for preset in presets:
    for seed in seeds:
      for model in models:
        for control in ('', *controls):
          cells.append(Cell(preset, None, int(seed), model, control))
  default = _preset_signal('visual')
  for model in knob_models:
    for value in knob_values:
      for seed in knob_seeds:
        signal = None if float(value) == default else float(value)
        for control in ('', 'visual'):
          cells.append(Cell('visual', signal, int(seed), model, control))
  return list(dict.fromkeys(cells))


def _preset_signal(preset: str) -> float:
  from mmjax.data import synthetic  # pylint: disable=g-import-not-at-top
  return float(synthetic.PRESETS[preset]['visual_signal'])


def settings(cfg: Any) -> dict[str, Any]:
  """What a finished run must share with the current flags to be reused."""
  out = {'data': cfg.data.overrides.to_dict(),
         'epochs': int(cfg.train.num_epochs),
         'patience': int(cfg.train.patience),
         'batch_size': int(cfg.train.batch_size),
         'lr': float(cfg.optim.lr),
         # Records made before the sampler had this option lack the key, so
         # those runs (negatives from all items) are refused, not reused.
         'negatives_from': cfg.train.negatives_from}
  if cfg.data.get('split'):
    out['split'] = cfg.data.split
  changed = model_changes(cfg)
  if changed:
    out['model'] = changed
  return out


def read_cell(cell: Cell, runs_dir: str,
              expected: dict[str, Any] | None = None
              ) -> dict[str, Any] | None:
  """A finished cell's record, or None.

  Raises:
    ValueError: the record was made with other settings than `expected`
      (resuming would mix two grids in one table).
  """
  path = os.path.join(runs_dir, cell.name, CELL)
  if not os.path.exists(path):
    return None
  with open(path, encoding='utf-8') as f:
    record = json.load(f)
  if expected is not None and record.get('settings') != expected:
    raise ValueError(
        f'{path} was made with {record.get("settings")}, but this run asks '
        f'for {expected}; use another --out_dir or delete that run.')
  return record


def shard_of(cells: list[Cell], shard: str) -> list[Cell]:
  """The cells of shard 'i/n': whole dataset groups, round robin.

  The runs of one dataset stay in one process so that its compiled programs
  (identical shapes) come from the compilation cache after the first run.
  """
  i, n = (int(x) for x in shard.split('/'))
  if not 0 <= i < n:
    raise ValueError(f'--shard={shard}: expected i/n with 0 <= i < n.')
  groups = list(dict.fromkeys((c.preset, c.signal, c.seed) for c in cells))
  mine = set(groups[i::n])
  return [c for c in cells if (c.preset, c.signal, c.seed) in mine]


def run_cell(cell: Cell, cfg: Any, runs_dir: str) -> dict[str, Any]:
  """Trains a cell (or reads its finished result) and returns its record."""
  done = read_cell(cell, runs_dir, settings(cfg))
  if done is not None:
    return done
  workdir = os.path.join(runs_dir, cell.name)
  path = os.path.join(workdir, CELL)
  if os.path.isdir(workdir):
    # An interrupted run starts again from scratch: the loop writes its
    # periodic checkpoint only at the end here (ckpt.every_epochs = epochs),
    # and a fresh start beside the old run's best checkpoints fails in orbax
    # (StepAlreadyExistsError).
    shutil.rmtree(workdir)
  # pylint: disable=g-import-not-at-top
  from mmjax import run as run_lib
  from mmjax.utils import runinfo
  # pylint: enable=g-import-not-at-top
  os.makedirs(workdir, exist_ok=True)
  # The run's workdir guard refuses a non-empty folder without a run's
  # config.json, and train.log makes it non-empty: the config goes first
  # (the run writes it again).
  with open(os.path.join(workdir, runinfo.CONFIG), 'w', encoding='utf-8') as f:
    f.write(cfg.to_json_best_effort(indent=2, sort_keys=True))
  t0 = time.perf_counter()
  # The loop prints a line per epoch; keep it in the run's log, not on the
  # progress bar.
  with open(os.path.join(workdir, 'train.log'), 'a', encoding='utf-8') as log:
    with contextlib.redirect_stdout(log):
      result = run_lib.run(cfg, workdir)
  record = {**dataclasses.asdict(cell), 'name': cell.name,
            'workdir': workdir, 'best_epoch': result.best_epoch,
            'val': result.val.get(METRIC),
            'test': result.test.get(METRIC),
            'seconds': time.perf_counter() - t0,
            'settings': settings(cfg)}
  with open(path, 'w', encoding='utf-8') as f:
    json.dump(record, f, indent=2, sort_keys=True)
  return record


COLD_ONLY = 'test_cold_only'  # per_user_<COLD_ONLY>.npz of a run
COLD_RECORD = 'cold_only.json'
COLD_KEYS = ('cold_only', 'full', 'num_users', 'random', 'warm_above_median')
COLD_EVAL = 'cold_only'  # Its cold_items_only evaluator's name.


def _replace_json(path: str, obj: Any) -> None:
  # Written aside and renamed: another shard may read it meanwhile.
  with open(path + '.tmp', 'w', encoding='utf-8') as f:
    json.dump(obj, f, indent=2, sort_keys=True)
  os.replace(path + '.tmp', path)


def cold_only(cfg: Any, workdir: str, best_epoch: int, recorded_test: float,
              read_only: bool = False) -> dict[str, Any] | None:
  """Ranks only the cold items with a finished cold-split run's best state.

  On a cold-item split every held-out item is cold, so the full ranking's
  Recall@20 mixes two questions: does the model order the cold items by
  their content, and does it lift them above the warm items at all. The run's
  best checkpoint is restored (a closed-form model is fitted again), and
  (a) test Recall@20 is computed with the warm items (those with a training
      interaction) removed from the candidates; its per-user values go to
      `<workdir>/per_user_test_cold_only.npz` for the paired test; the
      reference is a random order of the cold items, whose expected Recall@20
      for a user with n unmasked cold candidates is min(20, n) / n;
  (b) per user, the number of unmasked warm items scored strictly above the
      user's best-scored cold item (its median is reported; warm items tied
      with it are not counted).
  Both are the package's `cold_items_only` evaluator (mmjax/eval/
  evaluators.py) on the state `mmjax.run.restore_best` restores. The
  full-ranking test Recall@20 is recomputed too (with the loop's tie-break
  key): it must equal the recorded one, so the diagnostic reads the state
  the table's row came from. The result is kept in
  `<workdir>/cold_only.json` (written last) and read back on the next call.

  Args:
    cfg: the run's config (`make_config` of its cell); unused, as the
      run's recorded config.json is read back.
    workdir: the run directory.
    best_epoch: its best validation epoch (the tie-break key's epoch).
    recorded_test: its recorded test Recall@20.
    read_only: return None instead of computing a missing result.

  Returns:
    {'cold_only': mean cold-only Recall@20, 'random': the random order's,
     'warm_above_median': float, 'full': the recomputed full-ranking
     Recall@20, 'num_users': int}, or None (read_only, not computed yet).

  Raises:
    ValueError: the split has no cold item, or the recomputed full-ranking
      Recall@20 differs from the recorded one.
  """
  path = os.path.join(workdir, COLD_RECORD)
  if os.path.exists(path):
    with open(path, encoding='utf-8') as f:
      record = json.load(f)
    # A record of an older version of this diagnostic is made again.
    if tuple(sorted(record)) == COLD_KEYS:
      return record
  if read_only:
    return None
  # pylint: disable=g-import-not-at-top
  from mmjax import run as run_lib
  from mmjax.eval import ranking
  # pylint: enable=g-import-not-at-top
  del cfg  # The run's own config.json is read back.
  restored = run_lib.restore_best(workdir)
  if restored.best_epoch != best_epoch:
    raise ValueError(f'{workdir}: the best checkpoint is epoch '
                     f'{restored.best_epoch}, not {best_epoch}.')
  try:
    restored.trainer.add_evaluators(
        {COLD_EVAL: {'kind': 'cold_items_only', 'split': 'test'}})
  except ValueError as e:
    raise ValueError(f'{workdir}: {e} The diagnostic needs --split_kind '
                     'cold_item.') from e
  results = restored.evaluate(['test', COLD_EVAL])
  full, result = results['test'], results[COLD_EVAL]
  if abs(full.summary[METRIC] - recorded_test) > 1e-9:
    raise ValueError(
        f'{workdir}: the restored best state gives test {METRIC} '
        f'{full.summary[METRIC]}, the run recorded {recorded_test}.')
  per_user_path = os.path.join(workdir, f'per_user_{COLD_ONLY}.npz')
  ranking.save_per_user(result, per_user_path + '.tmp.npz',
                        split_hash=restored.trainer.split_hash,
                        split=COLD_ONLY)
  os.replace(per_user_path + '.tmp.npz', per_user_path)
  out = {'cold_only': float(result.summary[METRIC]),
         'random': float(result.summary[f'random_{METRIC}']),
         'warm_above_median': float(result.summary['warm_above_median']),
         'full': float(full.summary[METRIC]),
         'num_users': int(result.summary['num_users'])}
  _replace_json(path, out)
  return out


def per_user(workdirs: list[str], seeds: list[int], split: str = 'test'
             ) -> tuple[np.ndarray, list[np.ndarray]]:
  """Per-user test Recall@20 of aligned runs, pooled over seeds.

  Args:
    workdirs: one list per seed of run directories [real, control].
    seeds: the seeds, one per entry of `workdirs`.
    split: which per-user file: 'test', or `COLD_ONLY` (the cold-only
      ranking of `cold_only`).

  Returns:
    (pooled user ids int64 [n] unique across seeds, [values float64 [n] per
    run]). `compare.load_runs` refuses runs of different splits.
  """
  users, values = [], None
  for seed, dirs in zip(seeds, workdirs):
    runs = compare.load_runs(dirs, split)
    ref = None
    for k, run in enumerate(runs.values()):
      order = np.argsort(run['users'], kind='stable')
      u = np.asarray(run['users'])[order].astype(np.int64)
      if ref is None:
        ref = u
        users.append(u + (int(seed) << 32))
        if values is None:
          values = [[] for _ in runs]
      elif not np.array_equal(u, ref):
        raise ValueError(f'{dirs}: runs evaluated on different users.')
      values[k].append(run['per_user'][METRIC][order])
  return np.concatenate(users), [np.concatenate(v) for v in values]


def paired_rows(groups: list[dict[str, Any]], num_boot: int, alpha: float,
                split: str = 'test') -> list[dict[str, Any]]:
  """Real vs control per group, Holm-corrected across the groups.

  Args:
    groups: dicts with the row's labels and 'dirs' (per seed [real, control]
      run directories) and 'seeds'.
    num_boot: bootstrap resamples.
    alpha: significance level for the Holm-adjusted t-test p-value.
    split: the per-user files compared (see `per_user`).

  Returns:
    One row per group: its labels, n, real, shuffled, gap (real - shuffled),
    ci_low/ci_high of the gap, cohen_d, p_ttest, p_wilcoxon, their Holm
    adjustments, gap per seed, p_seeds (one-sample t-test of the per-seed
    gaps against 0, NaN with one seed or identical gaps) and 'significant'
    (Holm t-test p < alpha and a positive gap).
  """
  rows = []
  for r, g in enumerate(groups):
    users, (real, ctrl) = per_user(g['dirs'], g['seeds'], split)
    # compare's diff is b - a: the shuffled run is a, the real run b.
    stat = compare.compare({'shuffled': (users, ctrl), 'real': (users, real)},
                           metric=METRIC, num_boot=num_boot, seed=r,
                           holm_correct=False)[0]
    seed_of = users >> 32
    per_seed = [float(np.mean(real[seed_of == s] - ctrl[seed_of == s]))
                for s in g['seeds']]
    # The per-user test conditions on the two trained runs of each seed; the
    # seeds' gaps also vary with training, which only a test over seeds sees.
    p_seeds = (float(stats.ttest_1samp(per_seed, 0.0).pvalue)
               if len(per_seed) > 1 and np.ptp(per_seed) > 0 else float('nan'))
    row = {k: v for k, v in g.items() if k not in ('dirs',)}
    row.update(n=stat['n'], real=stat['mean_b'], shuffled=stat['mean_a'],
               gap=stat['diff'], ci_low=stat['ci_low'],
               ci_high=stat['ci_high'], cohen_d=stat['cohen_d'],
               p_ttest=stat['p_ttest'], p_wilcoxon=stat['p_wilcoxon'],
               gap_per_seed=per_seed, p_seeds=p_seeds)
    rows.append(row)
  for key in ('p_ttest', 'p_wilcoxon'):
    for row, p in zip(rows, compare.holm([row[key] for row in rows])):
      row[key + '_holm'] = float(p)
  for row in rows:
    row['significant'] = bool(row['p_ttest_holm'] < alpha and row['gap'] > 0)
  return rows


def _p(x: float) -> str:
  return '-' if x != x else f'{x:.1e}'  # NaN: no variation at all.


def format_main(rows: list[dict[str, Any]]) -> str:
  """The planted-answer table in Markdown."""
  head = ('preset', 'model', 'control', 'Recall@20 real', 'shuffled', 'gap',
          'gap per seed', 'p (seeds)', 'p (t)', 'p (Wilcoxon)',
          'p (t, Holm)', 'Holm sig.', 'expected', 'seeds', 'users')
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for r in rows:
    seeds = ' '.join(f'{g:+.3f}' for g in r['gap_per_seed'])
    lines.append('| ' + ' | '.join((
        r['preset'], r['model'], r['control'], f'{r["real"]:.4f}',
        f'{r["shuffled"]:.4f}', f'{r["gap"]:+.4f}', seeds,
        _p(r['p_seeds']), _p(r['p_ttest']), _p(r['p_wilcoxon']),
        _p(r['p_ttest_holm']), 'yes' if r['significant'] else 'no',
        'yes' if r['expected'] else 'no',
        ','.join(str(x) for x in r['seeds']), str(r['n']))) + ' |')
  return '\n'.join(lines)


def format_knob(rows: list[dict[str, Any]]) -> str:
  """The knob table: gap against visual_signal, per model."""
  head = ('model', 'visual_signal', 'Recall@20 real', 'shuffled visual',
          'gap', 'gap per seed', 'p (seeds)', '95% CI', 'p (t, Holm)',
          'seeds', 'users')
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for r in rows:
    lines.append('| ' + ' | '.join((
        r['model'], f'{r["visual_signal"]:g}', f'{r["real"]:.4f}',
        f'{r["shuffled"]:.4f}', f'{r["gap"]:+.4f}',
        ' '.join(f'{g:+.3f}' for g in r['gap_per_seed']), _p(r['p_seeds']),
        f'[{r["ci_low"]:+.4f}, {r["ci_high"]:+.4f}]',
        _p(r['p_ttest_holm']), ','.join(str(x) for x in r['seeds']),
        str(r['n']))) + ' |')
  return '\n'.join(lines)


def _write_csv(path: str, rows: list[dict[str, Any]]) -> None:
  if not rows:
    # No stale table of an earlier run in the same out_dir.
    if os.path.exists(path):
      os.remove(path)
    return
  keys = list(rows[0])
  with open(path, 'w', encoding='utf-8', newline='') as f:
    w = csv.DictWriter(f, fieldnames=keys)
    w.writeheader()
    for r in rows:
      w.writerow({k: (' '.join(f'{x:.5f}' for x in v) if isinstance(v, list)
                      else v) for k, v in r.items()})


def machine() -> str:
  cpu = platform.processor() or platform.machine()
  return (f'{platform.node()}, {cpu}, {os.cpu_count()} CPUs, load '
          f'{os.getloadavg()[0]:.1f}')


def keep_finished(group: dict[str, Any]) -> bool:
  """Drops a group's seeds without both runs; False when none is left."""
  keep = [k for k, pair in enumerate(group['dirs'])
          if all(d is not None for d in pair)]
  group['seeds'] = [group['seeds'][k] for k in keep]
  group['dirs'] = [group['dirs'][k] for k in keep]
  return bool(keep)


def main_groups(workdir_of: Any, presets: list[str], seeds: list[str],
                models: list[str], controls: list[str]
                ) -> list[dict[str, Any]]:
  """The main table's rows before testing: labels and per-seed run pairs.

  Args:
    workdir_of: Cell -> run directory, or None for an unfinished run.
    presets, seeds, models, controls: the grid.

  Returns:
    One dict per (preset, model, control): preset, model, control (its
    table label), expected (the preset plants signal in that modality),
    seeds and dirs (per seed [real, control] directories).
  """
  groups = []
  for preset in presets:
    for model in models:
      for control in controls:
        groups.append({
            'preset': preset, 'model': model,
            'control': CONTROL_LABEL.get(control, f'shuffle_{control}'),
            'expected': SIGNAL_OF[preset] == control,
            'seeds': [int(s) for s in seeds],
            'dirs': [[workdir_of(Cell(preset, None, int(s), model, '')),
                      workdir_of(Cell(preset, None, int(s), model, control))]
                     for s in seeds]})
  return groups


def summarize(records: dict[Cell, dict[str, Any]], cells: list[Cell], *,
              presets, seeds, models, controls, knob_models, knob_values,
              knob_seeds, num_boot: int, alpha: float
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
  """(main rows, knob rows) from finished cells.

  A row whose runs are not all finished (record None, --partial) is left out.
  """
  del cells

  def wd(cell):
    record = records.get(cell)
    return None if record is None else record['workdir']

  # With --partial, a row keeps the seeds whose two runs are finished.
  groups = main_groups(wd, presets, seeds, models, controls)
  main = paired_rows([g for g in groups if keep_finished(g)], num_boot, alpha)
  default = _preset_signal('visual')
  kgroups = []
  for model in knob_models:
    for value in knob_values:
      signal = None if float(value) == default else float(value)
      kgroups.append({
          'model': model, 'visual_signal': float(value),
          'seeds': [int(s) for s in knob_seeds],
          'dirs': [[wd(Cell('visual', signal, int(s), model, '')),
                    wd(Cell('visual', signal, int(s), model, 'visual'))]
                   for s in knob_seeds]})
  kgroups = [g for g in kgroups if keep_finished(g)]
  knob = paired_rows(kgroups, num_boot, alpha) if kgroups else []
  return main, knob


def cold_rows(records: dict[Cell, dict[str, Any]],
              cold: dict[Cell, dict[str, Any]], *, presets, seeds, models,
              controls, num_boot: int, alpha: float
              ) -> list[dict[str, Any]]:
  """The cold-only table: the main groups compared on `cold_only` rankings.

  Args:
    records: finished cells (None: unfinished).
    cold: `cold_only` results of the cells that have one.
    presets, seeds, models, controls: the grid.
    num_boot, alpha: as `paired_rows`.

  Returns:
    `paired_rows` rows (split `COLD_ONLY`) plus 'random' (a random order's
    Recall@20, mean over seeds), 'warm_above_real' and
    'warm_above_shuffled': per seed, the median number of warm items above
    a user's best-scored cold item; a row keeps the seeds whose two runs
    have a cold-only result.
  """
  def wd(cell):
    return records[cell]['workdir'] if cell in cold else None

  groups = [g for g in main_groups(wd, presets, seeds, models, controls)
            if keep_finished(g)]
  rows = paired_rows(groups, num_boot, alpha, split=COLD_ONLY)
  by_dir = {records[c]['workdir']: r for c, r in cold.items()}
  for g, row in zip(groups, rows):
    row['random'] = float(np.mean([by_dir[d[0]]['random']
                                   for d in g['dirs']]))
    row['warm_above_real'] = [by_dir[d[0]]['warm_above_median']
                              for d in g['dirs']]
    row['warm_above_shuffled'] = [by_dir[d[1]]['warm_above_median']
                                  for d in g['dirs']]
  return rows


def format_cold(rows: list[dict[str, Any]]) -> str:
  """The cold-only table in Markdown."""
  head = ('preset', 'model', 'control', 'cold-only Recall@20 real',
          'shuffled', 'random order', 'gap', 'gap per seed', 'p (seeds)',
          'p (t, Holm)', 'Holm sig.', 'expected',
          'warm above best cold, real', 'shuffled', 'seeds', 'users')
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for r in rows:
    lines.append('| ' + ' | '.join((
        r['preset'], r['model'], r['control'], f'{r["real"]:.4f}',
        f'{r["shuffled"]:.4f}', f'{r["random"]:.4f}', f'{r["gap"]:+.4f}',
        ' '.join(f'{g:+.3f}' for g in r['gap_per_seed']), _p(r['p_seeds']),
        _p(r['p_ttest_holm']), 'yes' if r['significant'] else 'no',
        'yes' if r['expected'] else 'no',
        ', '.join(f'{x:g}' for x in r['warm_above_real']),
        ', '.join(f'{x:g}' for x in r['warm_above_shuffled']),
        ','.join(str(x) for x in r['seeds']), str(r['n']))) + ' |')
  return '\n'.join(lines)


def format_convergence(records: list[dict[str, Any]]) -> str:
  """Where each model's runs stopped, against their epoch budget.

  A run whose best validation epoch lies in the last two epochs of its
  budget was still improving when the budget ran out (not converged); one
  that stopped before its budget was ended by patience.
  """
  by_model: dict[str, list[dict[str, Any]]] = {}
  for r in records:
    by_model.setdefault(r['model'], []).append(r)
  head = ('model', 'runs', 'epochs', 'patience', 'best epoch median',
          'min-max', 'best in last 2 epochs', 'stopped by patience')
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for model, rs in by_model.items():
    best = np.array([r['best_epoch'] for r in rs])
    budget = np.array([r['settings']['epochs'] for r in rs])
    patience = np.array([r['settings']['patience'] for r in rs])
    late = int(np.sum(best >= budget - 1))
    stopped = int(np.sum(best + patience < budget))
    lines.append('| ' + ' | '.join((
        model, str(len(rs)), _range(budget), _range(patience),
        f'{np.median(best):g}', f'{best.min()}-{best.max()}',
        str(late), str(stopped))) + ' |')
  return '\n'.join(lines)


def _range(x: np.ndarray) -> str:
  lo, hi = int(x.min()), int(x.max())
  return str(lo) if lo == hi else f'{lo}-{hi}'


ATTRIBUTES = ('colour', 'material')


def same_share(idx: np.ndarray, ok: np.ndarray, values: np.ndarray
               ) -> float:
  """Share of (item, neighbour) pairs with equal `values`.

  Args:
    idx: int [I, k] neighbour ids.
    ok: bool [I, k], False for empty slots (left out).
    values: [I] an attribute of every item.
  """
  return float(np.mean((values[idx] == values[:, None])[ok]))


def chance_share(values: np.ndarray) -> float:
  """The share for two distinct items drawn at random: sum n_g (n_g - 1)
  / (I (I - 1)) over the attribute's groups g."""
  _, counts = np.unique(values, return_counts=True)
  n = len(values)
  return float(np.sum(counts * (counts - 1)) / (n * (n - 1)))


def neighbour_graphs(dataset_dir: str, sources: dict[str, str], seed: int,
                     k: int, transform: str = 'none'):
  """The kNN graphs whose attribute agreement `neighbour_agreement` reads.

  Per modality, the top-k cosine graph (self excluded, `mmjax.graph.knn`)
  of the real features and of the shuffled ones exactly as a control run
  sees them (`context.control_features` with the run's seed, then the
  transform); and the graph of the training interactions (item rows of the
  binary item-user matrix, ItemKNN's cosine; items without a training
  interaction have no neighbours).

  Returns:
    (dataset, [(source, 'real' | 'shuffled', idx int [I, k], ok bool [I, k])]).
  """
  # pylint: disable=g-import-not-at-top
  from mmjax.data import dataset as dataset_lib
  from mmjax.data import store
  from mmjax.graph import knn
  from mmjax.models import context
  # pylint: enable=g-import-not-at-top
  ds = dataset_lib.load(dataset_dir)
  graphs = []

  def add(source, label, x, mask=None):
    idx, val = knn.cosine_topk(x, k, mask, exclude_self=True)
    graphs.append((source, label, np.asarray(idx),
                   np.isfinite(np.asarray(val))))

  for modality, name in sorted(sources.items()):
    feat = store.load(dataset_dir, name, ds.item_ids)
    for label, how in (('real', 'none'), ('shuffled', 'shuffle')):
      raw = context.control_features(feat.values, feat.mask, how, seed,
                                     modality)
      x, _ = context.transform_features(raw, feat.mask, transform)
      add(modality, label, x, feat.mask)
  users, items = ds.select(dataset_lib.TRAIN)
  inter = np.zeros((ds.num_items, ds.num_users), np.float32)
  inter[items, users] = 1.0
  add('interactions', 'real', inter)
  return ds, graphs


def neighbour_agreement(dataset_dir: str, sources: dict[str, str],
                        seed: int, k: int, transform: str = 'none'
                        ) -> list[dict[str, Any]]:
  """How often an item's kNN neighbours share its planted attributes.

  FREEDOM's frozen item graph and LATTICE's original one are top-k cosine
  graphs of the initial features: whether they link items of one colour (or
  material) says whether the content can reach these models at all. The
  graphs are those of `neighbour_graphs` (real, shuffled, interactions).

  Returns:
    One row per graph: source ('visual', 'textual', 'interactions'),
    features ('real' or 'shuffled'), items (items with all k neighbours),
    and per attribute (colour, material) the share of (item, neighbour)
    pairs that share it and its chance share.

  Raises:
    ValueError: the item table lacks the planted attributes (not synthetic
      data).
  """
  ds, graphs = neighbour_graphs(dataset_dir, sources, seed, k, transform)
  missing = [a for a in ATTRIBUTES if a not in ds.item_table]
  if missing:
    raise ValueError(f'{dataset_dir}/items.json has no {missing} column; '
                     'the diagnostic needs synthetic data.')
  attrs = {a: np.asarray(ds.item_table[a]) for a in ATTRIBUTES}
  rows = []
  for source, label, idx, ok in graphs:
    row = {'source': source, 'features': label,
           'items': int(ok.all(axis=1).sum())}
    for a, v in attrs.items():
      row[a] = same_share(idx, ok, v)
      row[a + '_chance'] = chance_share(v)
    rows.append(row)
  return rows


def agreement_rows(records: dict[Cell, dict[str, Any]], presets, seeds,
                   models, sources: dict[str, str], k: int,
                   transform: str = 'none') -> list[dict[str, Any]]:
  """`neighbour_agreement` per preset, averaged over the seeds.

  The dataset of (preset, seed) is read from the runinfo.json of any of
  its finished real runs; a (preset, seed) without one is left out.
  """
  out = []
  for preset in presets:
    per_seed = []
    for seed in seeds:
      for model in models:
        rec = records.get(Cell(preset, None, int(seed), model, ''))
        info = rec and os.path.join(rec['workdir'], 'runinfo.json')
        if info and os.path.exists(info):
          with open(info, encoding='utf-8') as f:
            ds_dir = json.load(f)['dataset']['dir']
          per_seed.append(neighbour_agreement(ds_dir, sources, int(seed), k,
                                              transform))
          break
    if not per_seed:
      continue
    for j, row in enumerate(per_seed[0]):
      rows = [s[j] for s in per_seed]
      merged = {'preset': preset, 'source': row['source'],
                'features': row['features'], 'seeds': len(rows),
                'items': int(np.mean([r['items'] for r in rows]))}
      for a in ATTRIBUTES:
        vals = [r[a] for r in rows]
        merged[a] = float(np.mean(vals))
        merged[a + '_range'] = (float(np.min(vals)), float(np.max(vals)))
        merged[a + '_chance'] = float(np.mean([r[a + '_chance']
                                               for r in rows]))
      out.append(merged)
  return out


def format_agreement(rows: list[dict[str, Any]], k: int) -> str:
  """The kNN agreement table (share of neighbours sharing an attribute)."""
  head = ('preset', 'graph', 'features', f'same colour (of {k} nbrs)',
          'same material', 'chance (colour, material)', 'seeds')
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for r in rows:
    def cell(a):
      lo, hi = r[a + '_range']
      return (f'{r[a]:.3f}' if r['seeds'] == 1
              else f'{r[a]:.3f} ({lo:.3f}-{hi:.3f})')
    lines.append('| ' + ' | '.join((
        r['preset'], r['source'], r['features'], cell('colour'),
        cell('material'),
        f'{r["colour_chance"]:.3f}, {r["material_chance"]:.3f}',
        str(r['seeds']))) + ' |')
  return '\n'.join(lines)


def define_flags() -> None:
  """The command-line flags (defined only when run as a script, so that the
  tests can import this module beside others that define the same names)."""
  flags.DEFINE_string('out_dir', None, 'Runs, JSON/CSV and tables.')
  flags.DEFINE_list('presets', ['visual', 'text', 'none'], 'Synthetic presets.')
  flags.DEFINE_list(
      'seeds', ['0', '1', '2'], 'Seeds (dataset seed and run seed alike).')
  flags.DEFINE_list('models', ['vbpr', 'lattice', 'bm3', 'freedom'],
                    'Models (configs/<model>_synthetic.py).')
  flags.DEFINE_list('controls', ['visual', 'textual'],
                    'Modalities to shuffle, one control each.')
  flags.DEFINE_integer('num_users', 1000, 'Synthetic users.')
  flags.DEFINE_integer('num_items', 500, 'Synthetic items.')
  flags.DEFINE_integer(
      'interactions_per_user', 20, 'Synthetic interactions per user.')
  flags.DEFINE_float(
      'feature_noise', None, 'Noise of the emitted features (None: the '
      "generator's 0.5, whose kNN graphs link items of one colour about 40% "
      'of the time; 0.2 gives about 98%).')
  flags.DEFINE_integer('epochs', 40, 'Maximum epochs per run.')
  flags.DEFINE_integer(
      'patience', 10, 'Evaluations without gain before stopping.')
  flags.DEFINE_integer('batch_size', 512, 'Training batch size.')
  flags.DEFINE_list(
      'lr', [], 'Per-model learning rates, model=lr (default: the config).')
  flags.DEFINE_list(
      'model_epochs', [], 'Per-model epoch budgets, model=N (default: '
      '--epochs).')
  flags.DEFINE_list(
      'model_patience', [], 'Per-model patience, model=N (default: '
      '--patience).')
  flags.DEFINE_list(
      'model_set', [], "Model fields to change, model:key=value (e.g. "
      "freedom:mm_weights.visual=0.5); recorded in each run's settings.")
  flags.DEFINE_integer(
      'knn_k', 10, 'Neighbours per item of the kNN agreement diagnostic '
      '(the configs\' knn_k); 0 skips it.')
  flags.DEFINE_list('knob_models', ['vbpr'],
                    'Models for the visual_signal sweep.')
  flags.DEFINE_list('knob_values', ['0', '0.1', '0.25', '0.5'],
                    'visual_signal values on preset visual.')
  flags.DEFINE_list('knob_seeds', ['0'], 'Seeds of the knob sweep.')
  flags.DEFINE_float('alpha', 0.01, 'Significance level after Holm.')
  flags.DEFINE_integer(
      'resamples', 2000, 'Bootstrap resamples (compare.py owns --num_boot).')
  flags.DEFINE_string(
      'shard', '0/1', 'i/n: run every n-th group of runs that share a dataset '
      '(start n processes, 0/n .. n-1/n); the last to finish prints the table.')
  flags.DEFINE_string(
      'split_kind', None, "The split kind (default: the data config's random "
      "split); 'cold_item' holds a share of the items out of training.")
  flags.DEFINE_bool(
      'cold_only', True, 'With --split_kind cold_item: the cold-only ranking '
      'diagnostic of every main-grid run (see `cold_only`).')
  flags.DEFINE_bool(
      'partial', False, 'Print the rows whose runs are finished; run none.')
  flags.DEFINE_string(
      'data_root', None, 'Where the datasets go (default <out_dir>/data).')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Too many command-line arguments.')
  fl = flags.FLAGS
  import jax  # pylint: disable=g-import-not-at-top
  import tqdm  # pylint: disable=g-import-not-at-top
  logging.set_verbosity(logging.WARNING)  # Orbax's per-save chatter.
  out_dir = os.path.abspath(fl.out_dir)
  # Compilation dominates these small runs (about 40 s of a 50 s run on a
  # loaded machine); runs on one dataset share every program's shapes.
  jax.config.update('jax_compilation_cache_dir',
                    os.path.join(out_dir, 'jax_cache'))
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)
  runs_dir = os.path.join(out_dir, 'runs')
  data_root = os.path.abspath(fl.data_root
                              or os.path.join(out_dir, 'data'))
  os.makedirs(runs_dir, exist_ok=True)
  lrs = per_model(fl.lr, float, 'lr')
  epochs_of = per_model(fl.model_epochs, int, 'model_epochs')
  patience_of = per_model(fl.model_patience, int, 'model_patience')
  sets = model_sets(fl.model_set)
  spec = dict(presets=fl.presets, seeds=fl.seeds,
              models=fl.models, controls=fl.controls,
              knob_models=fl.knob_models,
              knob_values=fl.knob_values, knob_seeds=fl.knob_seeds)
  cells = grid(**spec)
  started = datetime.datetime.now().isoformat(timespec='seconds')
  def config(cell):
    return make_config(
        cell, num_users=fl.num_users, num_items=fl.num_items,
        per_user=fl.interactions_per_user,
        epochs=epochs_of.get(cell.model, fl.epochs),
        patience=patience_of.get(cell.model, fl.patience),
        batch_size=fl.batch_size,
        lr=lrs.get(cell.model), data_root=data_root, split=fl.split_kind,
        feature_noise=fl.feature_noise, model_set=sets.get(cell.model))

  # The cold-only diagnostic covers the main grid's runs on a cold split.
  diagnose = fl.split_kind == 'cold_item' and fl.cold_only
  main_cells = set(grid(fl.presets, fl.seeds, fl.models, fl.controls, [],
                        [], []))
  records, cold = {}, {}

  def diagnose_cell(cell):
    rec = records[cell]
    with contextlib.redirect_stdout(io.StringIO()):
      result = cold_only(config(cell), rec['workdir'], rec['best_epoch'],
                         rec['test'], read_only=fl.partial)
    if result is not None:
      cold[cell] = result

  todo = [] if fl.partial else shard_of(cells, fl.shard)
  bar = tqdm.tqdm(todo, desc='planted', unit='run',
                  file=sys.stderr)
  for cell in bar:
    bar.set_postfix_str(cell.name)
    # Stray library output (dataset preparation) goes to stderr.
    with contextlib.redirect_stdout(io.StringIO()):
      records[cell] = run_cell(cell, config(cell), runs_dir)
    if diagnose and cell in main_cells:
      diagnose_cell(cell)
  for cell in cells:
    if cell not in records:
      records[cell] = read_cell(cell, runs_dir, settings(config(cell)))
  pending = [c.name for c in cells if records[c] is None]
  if pending and not fl.partial:
    print(f'{len(pending)} runs of other shards are not finished yet (e.g. '
          f'{pending[0]}); the last shard to finish prints the table '
          '(--partial: a table of the finished rows now).')
    return
  main_rows, knob_rows = summarize(records, cells, **spec,
                                   num_boot=fl.resamples,
                                   alpha=fl.alpha)
  cold_table = []
  if diagnose:
    # Runs finished by other shards (or before the diagnostic existed);
    # --partial only reads the diagnostics already made.
    missing = [c for c in cells if c in main_cells and c not in cold
               and records[c] is not None]
    for cell in tqdm.tqdm(missing, desc='cold-only', unit='run',
                          file=sys.stderr):
      diagnose_cell(cell)
    cold_table = cold_rows(records, cold, presets=fl.presets, seeds=fl.seeds,
                           models=fl.models, controls=fl.controls,
                           num_boot=fl.resamples, alpha=fl.alpha)
  from mmjax.data import synthetic  # pylint: disable=g-import-not-at-top
  noise = synthetic.default_config().feature_noise
  header = (f'# planted answer, {datetime.date.today()}, {machine()}\n'
            f'# {fl.num_users} users x {fl.num_items} items x '
            f'{fl.interactions_per_user} interactions, feature noise '
            f'{fl.feature_noise if fl.feature_noise is not None else noise}, '
            f'seeds '
            f'{",".join(fl.seeds)}, '
            f'split {fl.split_kind or "of the data config (random)"}, batch '
            f'{fl.batch_size}, BPR negatives from the training items; '
            f'test {METRIC} at the best validation epoch; '
            f'Holm over each table, alpha {fl.alpha}\n# ' + describe_settings(
                list(dict.fromkeys(fl.models + fl.knob_models)), fl.epochs,
                fl.patience, epochs_of, patience_of, lrs))
  if sets:
    header += '\n# model fields set: ' + '; '.join(
        f'{m}: ' + ', '.join(f'{k}={v!r}' for k, v in kv.items())
        for m, kv in sets.items())
  if pending:
    header += (f'\n# PARTIAL: {len(pending)} runs unfinished; a row uses the '
               f'seeds whose two runs finished (Holm over the rows shown): '
               f'{", ".join(pending)} unfinished')
  text = header + '\n\n' + format_main(main_rows)
  if knob_rows:
    text += ('\n\n# knob: preset visual, visual_signal swept, real vs '
             'shuffled visual\n\n' + format_knob(knob_rows))
  if cold_table:
    text += ('\n\n# cold-only ranking: test Recall@20 with the warm items '
             'removed from the candidates (a random order of the cold items '
             'is the reference), and per seed the median number of warm '
             "items above a user's best-scored cold item\n\n"
             + format_cold(cold_table))
  finished = [records[c] for c in cells if records[c] is not None]
  text += ('\n\n# convergence: best validation epoch of every run\n\n'
           + format_convergence(finished))
  agreement = []
  if fl.knn_k > 0:
    feats = config(cells[0]).features
    agreement = agreement_rows(records, fl.presets, fl.seeds, fl.models,
                               dict(feats.sources), fl.knn_k,
                               feats.transform)
    text += (f'\n\n# kNN agreement: share of each item\'s {fl.knn_k} '
             'nearest neighbours (cosine, self excluded) sharing its planted '
             'attribute; mean (min-max) over seeds\n\n'
             + format_agreement(agreement, fl.knn_k))
  print(text)
  with open(os.path.join(out_dir, 'planted.md'), 'w', encoding='utf-8') as f:
    f.write(text + '\n')
  _write_csv(os.path.join(out_dir, 'planted.csv'), main_rows)
  _write_csv(os.path.join(out_dir, 'knob.csv'), knob_rows)
  _write_csv(os.path.join(out_dir, 'cold_only.csv'), cold_table)
  with open(os.path.join(out_dir, 'planted.json'), 'w',
            encoding='utf-8') as f:
    json.dump({'started': started, 'finished':
               datetime.datetime.now().isoformat(timespec='seconds'),
               'machine': machine(), 'argv': sys.argv, 'main': main_rows,
               'knob': knob_rows, 'cold_only': cold_table,
               'agreement': agreement,
               'runs': [records[c] for c in cells]}, f, indent=2,
              default=str)


if __name__ == '__main__':
  define_flags()
  flags.mark_flags_as_required(['out_dir'])
  app.run(main)
