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
unit), and the p-values are Holm-corrected across the table.

Expected: real beats shuffled-visual (p < --alpha after Holm) on preset
`visual`, real beats shuffled-text on `text`, and neither on `none`; shuffling
the modality without signal changes nothing.

The knob (`--knob_models`): on preset `visual`, `visual_signal` swept over
`--knob_values` (the rest of the preset unchanged), real against shuffled
visual; the gap should grow with the signal. Knob rows are Holm-corrected as
their own family.

The dataset seed (`data.overrides.seed`) and the run seed (`config.seed`,
which also seeds the shuffle) both take the seed's value. Each run lives in
`<out_dir>/runs/<cell>/` (its training log in `train.log`); a finished run
writes `cell.json` there and is skipped when the script runs again (with
the same settings; other settings are refused), and an interrupted run starts
again. Outputs: `planted.json`,
`planted.csv`, `knob.csv` and the printed tables (`planted.md`).
"""

from __future__ import annotations

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


def data_overrides(preset: str, signal: float | None, seed: int,
                   num_users: int, num_items: int, per_user: int
                   ) -> dict[str, Any]:
  """The `data.overrides` of a cell: generator size, preset, knob, seed."""
  synth = {'preset': preset, 'num_users': num_users, 'num_items': num_items,
           'interactions_per_user': per_user,
           # No images: the models read the emitted feature matrices.
           'max_images': 0}
  if signal is not None:
    synth['visual_signal'] = float(signal)
  return {'seed': int(seed), 'synthetic': synth}


def make_config(cell: Cell, *, num_users: int, num_items: int,
                per_user: int, epochs: int, patience: int, batch_size: int,
                lr: float | None, data_root: str,
                split: str | None = None) -> Any:
  """The training config of a cell, from configs/<model>_synthetic.py.

  `split` replaces the data config's split kind (e.g. 'cold_item': a share
  of the items is held out of training entirely, so that only content can
  rank them).
  """
  module = defaults.sibling_config(
      os.path.join(_REPO, 'configs', 'x.py'), f'{cell.model}_synthetic')
  c = module.get_config()
  c.seed = int(cell.seed)
  c.data.root = data_root
  c.data.overrides = data_overrides(cell.preset, cell.signal, cell.seed,
                                    num_users, num_items, per_user)
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
         'lr': float(cfg.optim.lr)}
  if cfg.data.get('split'):
    out['split'] = cfg.data.split
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
  from mmjax.train import loop  # pylint: disable=g-import-not-at-top
  os.makedirs(workdir, exist_ok=True)
  t0 = time.perf_counter()
  # The loop prints a line per epoch; keep it in the run's log, not on the
  # progress bar.
  with open(os.path.join(workdir, 'train.log'), 'a', encoding='utf-8') as log:
    with contextlib.redirect_stdout(log):
      result = loop.train_and_evaluate_one(cfg, workdir)
  record = {**dataclasses.asdict(cell), 'name': cell.name,
            'workdir': workdir, 'best_epoch': result['best_epoch'],
            'val': result['best'].get(f'val/{METRIC}'),
            'test': result['best'].get(f'test/{METRIC}'),
            'seconds': time.perf_counter() - t0,
            'settings': settings(cfg)}
  with open(path, 'w', encoding='utf-8') as f:
    json.dump(record, f, indent=2, sort_keys=True)
  return record


def per_user(workdirs: list[str], seeds: list[int]
             ) -> tuple[np.ndarray, list[np.ndarray]]:
  """Per-user test Recall@20 of aligned runs, pooled over seeds.

  Args:
    workdirs: one list per seed of run directories [real, control].
    seeds: the seeds, one per entry of `workdirs`.

  Returns:
    (pooled user ids int64 [n] unique across seeds, [values float64 [n] per
    run]). `compare.load_runs` refuses runs of different splits.
  """
  users, values = [], None
  for seed, dirs in zip(seeds, workdirs):
    runs = compare.load_runs(dirs, 'test')
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


def paired_rows(groups: list[dict[str, Any]], num_boot: int, alpha: float
                ) -> list[dict[str, Any]]:
  """Real vs control per group, Holm-corrected across the groups.

  Args:
    groups: dicts with the row's labels and 'dirs' (per seed [real, control]
      run directories) and 'seeds'.
    num_boot: bootstrap resamples.
    alpha: significance level for the Holm-adjusted t-test p-value.

  Returns:
    One row per group: its labels, n, real, shuffled, gap (real - shuffled),
    ci_low/ci_high of the gap, cohen_d, p_ttest, p_wilcoxon, their Holm
    adjustments, gap per seed and 'significant' (Holm t-test p < alpha and a
    positive gap).
  """
  rows = []
  for r, g in enumerate(groups):
    users, (real, ctrl) = per_user(g['dirs'], g['seeds'])
    # compare's diff is b - a: the shuffled run is a, the real run b.
    stat = compare.compare({'shuffled': (users, ctrl), 'real': (users, real)},
                           metric=METRIC, num_boot=num_boot, seed=r,
                           holm_correct=False)[0]
    seed_of = users >> 32
    per_seed = [float(np.mean(real[seed_of == s] - ctrl[seed_of == s]))
                for s in g['seeds']]
    row = {k: v for k, v in g.items() if k not in ('dirs',)}
    row.update(n=stat['n'], real=stat['mean_b'], shuffled=stat['mean_a'],
               gap=stat['diff'], ci_low=stat['ci_low'],
               ci_high=stat['ci_high'], cohen_d=stat['cohen_d'],
               p_ttest=stat['p_ttest'], p_wilcoxon=stat['p_wilcoxon'],
               gap_per_seed=per_seed)
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
          'gap per seed', 'p (t)', 'p (Wilcoxon)', 'p (t, Holm)',
          'Holm sig.', 'expected', 'seeds', 'users')
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for r in rows:
    seeds = ' '.join(f'{g:+.3f}' for g in r['gap_per_seed'])
    lines.append('| ' + ' | '.join((
        r['preset'], r['model'], r['control'], f'{r["real"]:.4f}',
        f'{r["shuffled"]:.4f}', f'{r["gap"]:+.4f}', seeds,
        _p(r['p_ttest']), _p(r['p_wilcoxon']), _p(r['p_ttest_holm']),
        'yes' if r['significant'] else 'no',
        'yes' if r['expected'] else 'no',
        ','.join(str(x) for x in r['seeds']), str(r['n']))) + ' |')
  return '\n'.join(lines)


def format_knob(rows: list[dict[str, Any]]) -> str:
  """The knob table: gap against visual_signal, per model."""
  head = ('model', 'visual_signal', 'Recall@20 real', 'shuffled visual',
          'gap', '95% CI', 'p (t, Holm)', 'seeds', 'users')
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for r in rows:
    lines.append('| ' + ' | '.join((
        r['model'], f'{r["visual_signal"]:g}', f'{r["real"]:.4f}',
        f'{r["shuffled"]:.4f}', f'{r["gap"]:+.4f}',
        f'[{r["ci_low"]:+.4f}, {r["ci_high"]:+.4f}]',
        _p(r['p_ttest_holm']), ','.join(str(x) for x in r['seeds']),
        str(r['n']))) + ' |')
  return '\n'.join(lines)


def _write_csv(path: str, rows: list[dict[str, Any]]) -> None:
  if not rows:
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

  def complete(group):
    # With --partial, a row keeps the seeds whose two runs are finished.
    keep = [k for k, pair in enumerate(group['dirs'])
            if all(d is not None for d in pair)]
    group['seeds'] = [group['seeds'][k] for k in keep]
    group['dirs'] = [group['dirs'][k] for k in keep]
    return bool(keep)

  groups = []
  for preset in presets:
    for model in models:
      for control in controls:
        groups.append({
            'preset': preset, 'model': model,
            'control': CONTROL_LABEL.get(control, f'shuffle_{control}'),
            'expected': SIGNAL_OF[preset] == control,
            'seeds': [int(s) for s in seeds],
            'dirs': [[wd(Cell(preset, None, int(s), model, '')),
                      wd(Cell(preset, None, int(s), model, control))]
                     for s in seeds]})
  main = paired_rows([g for g in groups if complete(g)], num_boot, alpha)
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
  kgroups = [g for g in kgroups if complete(g)]
  knob = paired_rows(kgroups, num_boot, alpha) if kgroups else []
  return main, knob


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
  flags.DEFINE_integer('epochs', 40, 'Maximum epochs per run.')
  flags.DEFINE_integer(
      'patience', 10, 'Evaluations without gain before stopping.')
  flags.DEFINE_integer('batch_size', 512, 'Training batch size.')
  flags.DEFINE_list(
      'lr', [], 'Per-model learning rates, model=lr (default: the config).')
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
  lrs = {}
  for item in fl.lr:
    model, _, value = item.partition('=')
    lrs[model] = float(value)
  spec = dict(presets=fl.presets, seeds=fl.seeds,
              models=fl.models, controls=fl.controls,
              knob_models=fl.knob_models,
              knob_values=fl.knob_values, knob_seeds=fl.knob_seeds)
  cells = grid(**spec)
  started = datetime.datetime.now().isoformat(timespec='seconds')
  def config(cell):
    return make_config(
        cell, num_users=fl.num_users, num_items=fl.num_items,
        per_user=fl.interactions_per_user, epochs=fl.epochs,
        patience=fl.patience, batch_size=fl.batch_size,
        lr=lrs.get(cell.model), data_root=data_root, split=fl.split_kind)

  records = {}
  todo = [] if fl.partial else shard_of(cells, fl.shard)
  bar = tqdm.tqdm(todo, desc='planted', unit='run',
                  file=sys.stderr)
  for cell in bar:
    bar.set_postfix_str(cell.name)
    # Stray library output (dataset preparation) goes to stderr.
    with contextlib.redirect_stdout(io.StringIO()):
      records[cell] = run_cell(cell, config(cell), runs_dir)
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
  header = (f'# planted answer, {datetime.date.today()}, {machine()}\n'
            f'# {fl.num_users} users x {fl.num_items} items x '
            f'{fl.interactions_per_user} interactions, seeds '
            f'{",".join(fl.seeds)}, '
            f'<= {fl.epochs} epochs (patience {fl.patience}), batch '
            f'{fl.batch_size}, lr {lrs or "config defaults"}; test '
            f'{METRIC} at the best validation epoch; Holm over each table, '
            f'alpha {fl.alpha}')
  if pending:
    header += (f'\n# PARTIAL: {len(pending)} runs unfinished; a row uses the '
               f'seeds whose two runs finished (Holm over the rows shown): '
               f'{", ".join(pending)} unfinished')
  text = header + '\n\n' + format_main(main_rows)
  if knob_rows:
    text += ('\n\n# knob: preset visual, visual_signal swept, real vs '
             'shuffled visual\n\n' + format_knob(knob_rows))
  print(text)
  with open(os.path.join(out_dir, 'planted.md'), 'w', encoding='utf-8') as f:
    f.write(text + '\n')
  _write_csv(os.path.join(out_dir, 'planted.csv'), main_rows)
  _write_csv(os.path.join(out_dir, 'knob.csv'), knob_rows)
  with open(os.path.join(out_dir, 'planted.json'), 'w',
            encoding='utf-8') as f:
    json.dump({'started': started, 'finished':
               datetime.datetime.now().isoformat(timespec='seconds'),
               'machine': machine(), 'argv': sys.argv, 'main': main_rows,
               'knob': knob_rows,
               'runs': [records[c] for c in cells]}, f, indent=2,
              default=str)


if __name__ == '__main__':
  define_flags()
  flags.mark_flags_as_required(['out_dir'])
  app.run(main)
