r"""The leverage study: does a model use its content, and which helps most?

  python -m mmjax.study --config configs/studies/leverage_synthetic.py \
      --workdir studies/synthetic --workers 2
  python -m mmjax.study \
      --config configs/studies/leverage_synthetic.py:runlocal \
      --workdir studies/smoke
  python -m mmjax.study --collect studies/synthetic
  python -m mmjax.study --config configs/studies/leverage_ml_lvlm.py \
      --workdir studies/ml_lvlm --slurm   # then studies/ml_lvlm/slurm/submit.sh

A study config (configs/studies/*.py, `get_config(arg)`) names models (each
with its training config and its ID-only counterpart), representations
(name -> {modality: representation}, i.e. `features.sources`), a tuning grid,
tuning and final seeds, the controls, the overrides every run gets (`sets`:
data split, epochs, patience...) and the user groups (`user_groups`: the
`eval.user_groups` edges; the lowest bin is the cold users, the highest the
warm users). See configs/studies/leverage_synthetic.py for every field.

Stages, each resumable (finished runs are skipped, interrupted ones resume,
failed ones are recorded and retried on the next start; mmjax.sweep's rules
and machinery):

(a) tune: per (model, representation), a sweep of the grid x tuning seeds
    with the real features in `<study>/tune/<model>.<representation>/`; the
    point with the best mean validation `eval.select_metric` is selected
    (`sweep.select`: test is never read). A grid of one point still runs
    (its runs are reused by stage b).
(b) final: at each selected point, over the final seeds, every control, as
    one sweep in `<study>/final/` (runs of several configs):
      real            the real features;
      shuffle[_<m>]   features shuffled across items (all modalities, or
                      modality m), `features.control=shuffle`;
      noise[_<m>]     Gaussian noise with the features' per-dimension mean
                      and std, `features.control=noise`;
      none            no content: the model's ID-only counterpart (BPR-MF
                      for VBPR, LightGCN for graph models, ItemKNN for
                      AttributeItemKNN) at its own config's hyperparameters,
                      or tuned on the grid of its section
                      (`tune_counterparts`); one run per seed, shared by
                      every model with that counterpart;
      only_<m>        `features.sources` reduced to modality m.
    A final real run whose tuning run (same config, overrides and seed) is
    finished is copied from it instead of trained again. `references`
    (MostPop, ItemKNN...) run at their config's hyperparameters over the
    final seeds, as rows of the table without statistics.
(c) collect: `<study>/study.csv` (one row per (model, representation,
    control, seed): run dir, status, best epoch, at_budget and every val/,
    test/ and extra evaluator's metric at the best epoch),
    `<study>/table.csv`, `table.md`, `table.tex`: per
    (model, representation, control) and group (all, warm_users,
    cold_users, cold_items, cold_only, those present) test Recall@20,
    NDCG@20 and HR@20 as mean and sample std over seeds and, for every
    control row, real against it on per-user test `metric` (Recall@20)
    pooled over the seeds both finished (`mmjax.eval.stats`): gap (mean of
    real - control over the (seed, user) units) and gap per seed, paired t
    (p_t, and Holm over the whole table), Wilcoxon (Holm), effect size d,
    bootstrap 95% interval and the per-seed t-test p_seeds. Group
    `cold_only` is the ranking of the cold items alone, by the runs'
    `cold_items_only` evaluator (`eval.evaluators`, at the best epoch):
    does the model order the cold items by their content (against
    `random_recall@20`, a random order's), and how many warm items sit
    above a user's best cold item (`warm_above_median`).
    `<study>/study.json` records the spec, the selected points and the
    commands.

Stages one at a time: `--stage tune|select|final|collect` runs one of them
(`select` is the choice of (b) and the set-up of its final runs; `tune` and
`final` take `--run_index K`, one run). `--slurm` writes
`<study>/slurm/{tune,select,final,collect}.sbatch` (arrays for tune and
final from launch/slurm_array.sbatch, single jobs from
launch/slurm_step.sbatch; `--slurm_template` where there is no checkout)
and `submit.sh`, which chains them with `--dependency=afterok`; see
launch/README.md.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import shlex
import shutil
import sys
from typing import Any, Sequence

from absl import app
from absl import flags
import ml_collections
import numpy as np

from mmjax import sweep  # Its flags: --config, --workdir, --workers, ...
from mmjax.data import dataset as dataset_lib
from mmjax.eval import stats
from mmjax.utils import compile_cache

FLAGS = flags.FLAGS
STUDY = 'study.json'
TUNE = 'tune'
FINAL = 'final'
REPO = sweep.REPO
GROUPS = ('all', 'warm_users', 'cold_users', 'cold_items', 'cold_only')
COLD_ONLY_KIND = 'cold_items_only'  # mmjax/eval/evaluators.py's kind.
TABLE_METRICS = ('recall@20', 'ndcg@20', 'hit@20')
TABLE_COLUMNS = (
    'dataset', 'model', 'representation', 'control', 'group', 'n_seeds',
    'recall@20_mean', 'recall@20_std', 'ndcg@20_mean', 'ndcg@20_std',
    'hit@20_mean', 'hit@20_std', 'gap', 'p_t', 'p_t_holm', 'p_w_holm',
    'effect_d', 'ci_low', 'ci_high', 'p_seeds', 'at_budget', 'n_units',
    'gap_per_seed', 'random_recall@20', 'warm_above_median')
# The sweep's flags that mean nothing to a study.
_SWEEP_ONLY = ('grid', 'set', 'seeds', 'shard')
# The stages a command may run alone (SLURM runs them as chained jobs).
STAGES = ('all', 'tune', 'select', 'final', 'collect')


class StudyError(sweep.SweepError):
  """A study that cannot start; the message says why in one line."""


# ---------------------------------------------------------------------------
# The study config.


def load_config(config_spec: str) -> ml_collections.ConfigDict:
  """`get_config(variant)` of a study config file 'path[:variant]'."""
  path, _, variant = config_spec.partition(':')
  module = sweep.load_module(path)
  if not hasattr(module, 'get_config'):
    raise StudyError(f'{path} has no get_config()')
  try:
    return module.get_config(variant or None)
  except Exception as e:  # pylint: disable=broad-except
    raise StudyError(f'{config_spec}: {type(e).__name__}: {e}') from e


def _plain(value: Any) -> Any:
  return sweep.to_jsonable(value)


def flatten(tree: Any, base: Any, prefix: str = '') -> dict[str, Any]:
  """Nested {section: {key: value}} as {dotted key: value}.

  A nested dict is descended into where the training config `base` has a
  section there holding all of its keys; elsewhere (a free-form field such
  as `data.overrides` or `features.sources`) it is set whole.
  """
  out = {}
  for key, value in _plain(tree).items():
    dotted = f'{prefix}{key}'
    node = None
    try:
      node = sweep.get_path(base, dotted)
    except (KeyError, TypeError, AttributeError):
      pass
    if (isinstance(value, dict) and value and
        isinstance(node, ml_collections.ConfigDict) and
        set(value) <= set(node.keys())):
      out.update(flatten(value, base, dotted + '.'))
    else:
      out[dotted] = value
  return out


def section_spec(section: Any) -> str:
  """A model section's 'path[:variant]' (paths relative to the repo)."""
  path = section['config']
  if not os.path.isabs(path):
    path = os.path.join(REPO, path)
  variant = section.get('variant') or ''
  return f'{path}:{variant}' if variant else path


def parse_control(name: str) -> tuple[str, str | None]:
  """'shuffle_visual' -> ('shuffle', 'visual'); 'real' -> ('real', None)."""
  kind, _, modality = name.partition('_')
  if kind not in ('real', 'shuffle', 'noise', 'none', 'only') or (
      kind in ('real', 'none') and modality) or (kind == 'only' and
                                                 not modality):
    raise StudyError(f'unknown control {name!r}: use real, shuffle, noise, '
                     'none, shuffle_<m>, noise_<m> or only_<m>')
  return kind, modality or None


def _args(sets: dict[str, Any]) -> list[str]:
  return [f'--config.{k}={sweep.format_value(v)}' for k, v in sets.items()]


def _grid(study: Any, section: Any, base: Any) -> dict[str, list[Any]]:
  grid = section['grid'] if 'grid' in section else study.get('grid')
  return flatten(grid or {}, base)


class Plan:
  """What a study runs: tune sweeps, then the final runs.

  Attributes:
    study: the study config.
    tunes: [{'key', 'model', 'representation', 'config', 'dir', 'sets',
      'grid'}], one sweep per tuned (model, representation) or counterpart.
    representations, models, counterparts, references: its sections, as
      dicts.
  `final(selected)` gives the final runs and the table's cells.
  """

  def __init__(self, config_spec: str, workdir: str):
    self.config_spec = config_spec
    self.workdir = workdir
    self.study = load_config(config_spec)
    s = self.study
    self.dataset = s.get('dataset') or ''
    self.tune_seeds = [int(x) for x in s.tune_seeds]
    self.final_seeds = [int(x) for x in s.final_seeds]
    self.controls = [str(c) for c in s.controls]
    for c in self.controls:
      parse_control(c)
    self.representations = {k: dict(_plain(v)) for k, v in
                            _plain(s.representations).items()}
    self.models = _plain(s.models)
    self.counterparts = _plain(s.get('counterparts') or {})
    self.references = _plain(s.get('references') or {})
    for m, sec in self.models.items():
      cp = sec.get('counterpart')
      if cp and cp not in self.counterparts:
        raise StudyError(f'models.{m}.counterpart={cp!r} is not in '
                         f'counterparts {sorted(self.counterparts)}')
      for r in sec.get('representations') or ():
        if r not in self.representations:
          raise StudyError(f'models.{m}.representations names {r!r}, not '
                           f'in representations {sorted(self.representations)}')
    self._bases: dict[str, Any] = {}
    self.tunes = []
    for m, sec in self.models.items():
      for r in self._reps_of(sec):
        self.tunes.append(self._tune(m, sec, r, self.representations[r]))
    if s.get('tune_counterparts'):
      used = {sec.get('counterpart') for sec in self.models.values()}
      for c, sec in self.counterparts.items():
        if c in used:
          self.tunes.append(self._tune(c, sec, 'id-only', None))

  def _reps_of(self, sec: dict[str, Any]) -> list[str]:
    return list(sec.get('representations') or self.representations)

  def base(self, spec: str) -> Any:
    if spec not in self._bases:
      self._bases[spec] = sweep.resolve(spec, [])
    return self._bases[spec]

  def sets(self, spec: str, sources: dict[str, str] | None,
           extra: Any = None) -> dict[str, Any]:
    """The fixed overrides of a run of `spec`: the study's sets, its
    section's (`extra`), the user groups and the sources."""
    out = flatten(self.study.get('sets') or {}, self.base(spec))
    out.update(flatten(extra or {}, self.base(spec)))
    groups = tuple(self.study.get('user_groups') or ())
    if groups:
      out['eval.user_groups'] = groups
    if sources is not None:
      out['features.sources'] = dict(sources)
    return out

  def _tune(self, model: str, sec: dict[str, Any], rep: str,
            sources: dict[str, str] | None) -> dict[str, Any]:
    spec = section_spec(sec)
    key = sweep.sanitize(f'{model}.{rep}')
    grid = _grid(self.study, sec, self.base(spec))
    # The grid's keys are swept, not set (a section's lr is a default).
    sets = {k: v for k, v in self.sets(spec, sources, sec.get('sets')).items()
            if k not in grid}
    return {'key': key, 'model': model, 'representation': rep,
            'config': spec, 'dir': os.path.join(self.workdir, TUNE, key),
            'sets': sets, 'grid': grid}

  def expand_tune(self, tune: dict[str, Any]) -> list[sweep.Run]:
    grid = {k: [sweep.format_value(v) for v in vs]
            for k, vs in tune['grid'].items()}
    sets = {k: sweep.format_value(v) for k, v in tune['sets'].items()}
    _, runs = sweep.expand(tune['config'], grid or None, sets,
                           self.tune_seeds, use_get_sweep=False)
    return runs

  def final(self, selected: dict[str, dict[str, Any]]
            ) -> tuple[list[sweep.Run], list[dict[str, Any]]]:
    """The final sweep's runs and the table's entries.

    Args:
      selected: tune key -> {dotted key: value} (the selected point); a
      tuned (model, representation) without one is left out (it waits).

    Returns:
      (runs, entries): the final sweep's runs (shared ones once) and one
      entry per table cell and seed: {'model', 'representation',
      'control', 'seed', 'run' (a run's name), 'kind' (real | control |
      reference)}.

    Raises:
      StudyError: two runs of one name with different settings.
    """
    runs: dict[str, sweep.Run] = {}
    entries = []

    def add(name, spec, overrides, point, seed):
      name = sweep.sanitize(name)
      over = {**overrides, 'seed': seed}
      args = tuple(_args(over))
      # What varies across the final runs (the table's columns of
      # results.csv); the study's fixed sets are in `args` only.
      varying = {k: v for k, v in over.items()
                 if k in point or k == 'seed' or k.startswith('features.')}
      if name not in runs:
        runs[name] = sweep.Run(len(runs), name, _plain(varying), args, spec)
      elif runs[name].config != spec or runs[name].args != args:
        # A reference that is also a counterpart, with other settings.
        raise StudyError(f'two runs named {name} with other settings: give '
                         'the reference and the counterpart the same '
                         'section, or another label')
      return name

    for m, sec in self.models.items():
      spec = section_spec(sec)
      for r in self._reps_of(sec):
        sources = self.representations[r]
        key = sweep.sanitize(f'{m}.{r}')
        if key not in selected:
          continue  # Its tuning has no finished run yet: its cells wait.
        point = selected[key]
        for control in self.controls:
          kind, modality = parse_control(control)
          if modality and modality not in sources:
            continue
          if kind == 'only' and len(sources) < 2:
            continue
          for seed in self.final_seeds:
            if kind == 'none':
              cp = sec.get('counterpart')
              if not cp:
                continue
              csec = self.counterparts[cp]
              cspec = section_spec(csec)
              ckey = sweep.sanitize(f'{cp}.id-only')
              if self.study.get('tune_counterparts') and (
                  ckey not in selected):
                continue
              cpoint = selected.get(ckey, {})
              name = add(f'{cp}.id-only.seed={seed}', cspec,
                         {**self.sets(cspec, None, csec.get('sets')),
                          **cpoint}, cpoint, seed)
            else:
              over = {**self.sets(spec, sources, sec.get('sets')),
                      **point}
              if kind == 'only':
                over['features.sources'] = {modality: sources[modality]}
              elif kind in ('shuffle', 'noise'):
                over['features.control'] = kind
                over['features.control_modalities'] = (
                    (modality,) if modality else ())
              name = add(f'{m}.{r}.{control}.seed={seed}', spec, over,
                         point, seed)
            entries.append({'model': m, 'representation': r,
                            'control': control, 'seed': seed, 'run': name,
                            'kind': 'real' if kind == 'real' else 'control'})
    for ref, sec in self.references.items():
      spec = section_spec(sec)
      for seed in self.final_seeds:
        name = add(f'{ref}.id-only.seed={seed}', spec,
                   self.sets(spec, None, sec.get('sets')), {}, seed)
        entries.append({'model': ref, 'representation': 'id-only',
                        'control': 'real', 'seed': seed, 'run': name,
                        'kind': 'reference'})
    return list(runs.values()), entries


def describe_plan(plan: Plan) -> str:
  """What `plan` runs, in lines of text; the final runs as if every tuning
  sweep selected its first point."""
  lines = [f'study {plan.study.get("name") or ""}: {len(plan.tunes)} tuning '
           f'sweeps (seeds {plan.tune_seeds}), final seeds '
           f'{plan.final_seeds}']
  total = 0
  for t in plan.tunes:
    n = math.prod(len(v) for v in t['grid'].values()) * len(plan.tune_seeds)
    total += n
    grid = ', '.join(f'{k} {list(v)}' for k, v in t['grid'].items())
    lines.append(f'  tune {t["key"]}: {n} runs ({grid or "one point"})')
  runs, entries = plan.final({t['key']: {k: v[0] for k, v in
                                         t['grid'].items()}
                              for t in plan.tunes})
  per_control: dict[str, set[str]] = {}
  for e in entries:
    per_control.setdefault(e['control'], set()).add(e['run'])
  lines.append(f'{total} tuning runs; {len(runs)} final runs: ' + ', '.join(
      f'{c} {len(n)}' for c, n in per_control.items()))
  return '\n'.join(lines)


# ---------------------------------------------------------------------------
# Running.


def _point_values(run: sweep.Run, grid: dict[str, Any]) -> dict[str, Any]:
  return {k: run.overrides[k] for k in grid if k in run.overrides}


def run_env(workdir: str) -> dict[str, str]:
  """The runs' environment: this one, with the persistent JAX compilation
  cache (mmjax/utils/compile_cache.py, on in every run) in the study folder
  unless the user chose a folder. The runs of a study build the same
  programs again and again (same data, shapes and model); a cached
  executable is the one XLA would compile, so results do not change."""
  env = dict(os.environ)
  if not (env.get('JAX_COMPILATION_CACHE_DIR')
          or env.get(compile_cache.ENV)):
    env[compile_cache.ENV] = os.path.join(os.path.abspath(workdir),
                                          'jax_cache')
  return env


def run_sweep(config_spec: str, workdir: str, runs: Sequence[sweep.Run],
              workers: int, spec: dict[str, Any],
              env: dict[str, str] | None = None) -> list[str]:
  """Runs the unfinished `runs` in sweep directory `workdir`.

  Returns:
    The names of the runs that failed.
  """
  sweep.write_spec(workdir, spec)
  todo = [r for r in runs
          if not sweep.is_finished(sweep.run_dir(workdir, r.name))]
  print(f'{workdir}: {len(runs)} runs, {len(runs) - len(todo)} finished '
        f'(skipped), {len(todo)} to run', flush=True)
  if not todo:
    return []
  sweep.prepare_data([sweep.resolve(r.config or config_spec, r.args)
                      for r in todo])
  runner = sweep.Runner(config_spec, workdir, workers, env=env)
  finished = runner.run(todo)
  return [r.name for r, s in finished
          if s['state'] in ('failed', 'interrupted')]


def _same_config(a_spec: str, a_args: Sequence[str], b_spec: str,
                 b_args: Sequence[str]) -> bool:
  a = sweep.resolve(a_spec, a_args).to_json(sort_keys=True)
  b = sweep.resolve(b_spec, b_args).to_json(sort_keys=True)
  return a == b


def reuse_tuning_runs(plan: Plan, tune_runs: dict[str, list[sweep.Run]],
                      selected: dict[str, dict[str, Any]],
                      final_runs: Sequence[sweep.Run]) -> int:
  """Copies finished tuning runs that a final real run repeats exactly.

  Returns:
    How many were copied.
  """
  copied = 0
  by_name = {r.name: r for r in final_runs}
  for tune in plan.tunes:
    point = selected.get(tune['key'])
    if point is None:
      continue
    for run in tune_runs[tune['key']]:
      if _point_values(run, tune['grid']) != point:
        continue
      seed = run.overrides.get('seed')
      if tune['representation'] == 'id-only':
        name = f'{tune["model"]}.id-only.seed={seed}'
      else:
        name = f'{tune["model"]}.{tune["representation"]}.real.seed={seed}'
      final = by_name.get(sweep.sanitize(name))
      src = sweep.run_dir(tune['dir'], run.name)
      if final is None or not sweep.is_finished(src):
        continue
      dst = sweep.run_dir(os.path.join(plan.workdir, FINAL), final.name)
      if sweep.is_finished(dst) or os.path.exists(
          os.path.join(dst, sweep.CONFIG)):
        continue
      if not _same_config(tune['config'], run.args, final.config,
                          final.args):
        continue
      tmp = dst + '.copying'
      shutil.rmtree(tmp, ignore_errors=True)
      shutil.copytree(src, tmp, ignore=shutil.ignore_patterns(
          sweep.RUN_LOCK))
      status = sweep.read_status(tmp)
      status['copied_from'] = os.path.abspath(src)
      with open(os.path.join(tmp, sweep.STATUS), 'w', encoding='utf-8') as f:
        json.dump(status, f, indent=2, sort_keys=True)
      if os.path.isdir(dst):
        shutil.rmtree(dst)  # Only a lock or log: nothing ran there.
      os.replace(tmp, dst)
      copied += 1
  return copied


def _check_workdir(workdir: str, config_spec: str) -> None:
  record = read_record(workdir)
  if record and (record.get('config') != _abs_spec(config_spec)):
    raise StudyError(f'{workdir} holds a study of {record.get("config")!r}; '
                     'use another --workdir')


def tune_tasks(plan: Plan) -> list[tuple[dict[str, Any], sweep.Run]]:
  """Every tuning run of the study, as (tune, run), tune sweeps in order:
  the tuning stage's array task K runs entry K."""
  return [(tune, run) for tune in plan.tunes for run in plan.expand_tune(tune)]


def _tune_spec(plan: Plan, tune: dict[str, Any],
               runs: Sequence[sweep.Run]) -> dict[str, Any]:
  return sweep.make_spec(tune['config'], 'study-tune', {
      k: [sweep.format_value(v) for v in vs]
      for k, vs in tune['grid'].items()}, {
          k: sweep.format_value(v) for k, v in tune['sets'].items()},
                         plan.tune_seeds, runs)


def run_tuning(plan: Plan, workers: int, env: dict[str, str],
               run_index: int | None = None) -> list[str]:
  """Stage (a): runs the unfinished tuning runs (all, or entry `run_index`
  of `tune_tasks`).

  Returns:
    The failed runs, as '<tune key>/<run name>'.

  Raises:
    StudyError: `run_index` out of range.
  """
  failed = []
  if run_index is not None:
    tasks = tune_tasks(plan)
    if not 0 <= run_index < len(tasks):
      raise StudyError(f'--run_index {run_index}: the tuning stage has '
                       f'{len(tasks)} runs (0..{len(tasks) - 1})')
    tune, run = tasks[run_index]
    runs = plan.expand_tune(tune)
    return [f'{tune["key"]}/{n}' for n in run_sweep(
        tune['config'], tune['dir'], [run], 1, _tune_spec(plan, tune, runs),
        env)]
  for tune in plan.tunes:
    runs = plan.expand_tune(tune)
    failed += [f'{tune["key"]}/{n}' for n in run_sweep(
        tune['config'], tune['dir'], runs, workers,
        _tune_spec(plan, tune, runs), env)]
  return failed


def select_points(plan: Plan) -> tuple[dict[str, dict[str, Any]],
                                       dict[str, dict[str, Any]]]:
  """Stage (b)'s choice: per tune sweep, the grid point with the best mean
  validation metric over its finished runs (`sweep.select`).

  Returns:
    (selected: tune key -> {dotted key: value}, tuned: tune key -> the
    record of the choice for study.json). A tune sweep without a finished
    run is left out (its final runs wait).
  """
  selected, tuned = {}, {}
  for tune in plan.tunes:
    runs = plan.expand_tune(tune)
    records = []
    if os.path.exists(os.path.join(tune['dir'], sweep.SPEC)):
      _, _, records = sweep.load_records(tune['dir'])
    # Only this grid's runs (the folder may hold an earlier, larger grid).
    names = {r.name for r in runs}
    chosen = sweep.select([r for r in records if r.name in names])
    if not chosen:
      print(f'{tune["key"]}: no finished tuning run; its final runs wait',
            file=sys.stderr)
      continue
    best = chosen[0]
    point = next(_point_values(r, tune['grid']) for r in runs
                 if tuple((k, sweep.display(v)) for k, v in
                          _point_values(r, tune['grid']).items())
                 == best.point)
    selected[tune['key']] = point
    tuned[tune['key']] = {
        'model': tune['model'], 'representation': tune['representation'],
        'dir': tune['dir'], 'point': point, 'val_mean': best.val_mean,
        'select_metric': best.select_metric, 'seeds': list(best.seeds),
        'points': [{'point': dict(p), 'n': n, 'val': v}
                   for p, n, v in best.points]}
  return selected, tuned


def ordered_final_runs(plan: Plan, selected: dict[str, dict[str, Any]]
                       ) -> tuple[list[sweep.Run], list[dict[str, Any]]]:
  """`plan.final(selected)` with the runs seed-major and numbered: the
  final stage's array task K runs run K."""
  final_runs, entries = plan.final(selected)
  # Seed-major: the first round compiles each program once, and the
  # compilation cache serves the other seeds.
  order = {s: i for i, s in enumerate(plan.final_seeds)}
  final_runs.sort(key=lambda r: order.get(r.overrides.get('seed'), 0))
  return ([sweep.Run(i, r.name, r.overrides, r.args, r.config)
           for i, r in enumerate(final_runs)], entries)


def prepare_final(plan: Plan, config_spec: str,
                  argv: Sequence[str] | None = None
                  ) -> tuple[list[sweep.Run], dict[str, Any]]:
  """Stage (b)'s set-up: selects, then writes the final sweep's spec and
  study.json and copies the tuning runs a final run repeats.

  Returns:
    (the final runs, the final sweep's spec).
  """
  workdir = plan.workdir
  selected, tuned = select_points(plan)
  final_runs, entries = ordered_final_runs(plan, selected)
  final_dir = os.path.join(workdir, FINAL)
  final_spec = {
      'config': _abs_spec(config_spec), 'variant': None, 'source': 'study',
      'grid': None, 'sets': {}, 'seeds': plan.final_seeds,
      'runs': [{'name': r.name, 'overrides': r.overrides,
                'config': r.config, 'args': list(r.args)}
               for r in final_runs]}
  check_final(final_dir, final_spec)
  os.makedirs(os.path.join(final_dir, sweep.RUNS), exist_ok=True)
  tune_runs = {t['key']: plan.expand_tune(t) for t in plan.tunes}
  copied = reuse_tuning_runs(plan, tune_runs, selected, final_runs)
  if copied:
    print(f'{copied} final real runs copied from their finished tuning runs',
          flush=True)
  record = {
      'config': _abs_spec(config_spec), 'spec': _plain(plan.study),
      'dataset': plan.dataset, 'selected': tuned,
      'tune_seeds': plan.tune_seeds, 'final_seeds': plan.final_seeds,
      'commands': {
          'study': shlex.join([sys.executable, '-m', 'mmjax.study',
                               *(argv or [])]),
          'runs': {r.name: shlex.join(sweep.launch_command(
              r.config, os.path.abspath(sweep.run_dir(final_dir, r.name)),
              r)) for r in final_runs}},
      'entries': entries}
  # Written before the final runs, so that an interrupted study can be
  # collected (`--collect`) with what finished.
  write_record(workdir, record)
  sweep.write_spec(final_dir, final_spec)
  return final_runs, final_spec


def read_final(workdir: str) -> tuple[list[sweep.Run], dict[str, Any]]:
  """The final runs and spec that the selection step wrote.

  Raises:
    StudyError: no selection yet.
  """
  spec = _read_json(os.path.join(workdir, FINAL, sweep.SPEC))
  if spec is None:
    raise StudyError(f'{os.path.join(workdir, FINAL, sweep.SPEC)} is '
                     'missing: run the selection first (--stage select)')
  runs = [sweep.Run(i, r['name'], r['overrides'], tuple(r['args']),
                    r['config']) for i, r in enumerate(spec['runs'])]
  return runs, spec


def run_study(config_spec: str, workdir: str, workers: int = 1,
              argv: Sequence[str] | None = None, stage: str = 'all',
              run_index: int | None = None) -> int:
  """Runs (or resumes) the study, or one stage of it; the exit status.

  Args:
    config_spec: the study config, 'path[:variant]'.
    workdir: the study directory.
    workers: runs at once.
    argv: the command line (recorded in study.json).
    stage: 'all' (tune, select, final, collect), or one of them ('tune'
      and 'final' may take `run_index`: a SLURM array task).
    run_index: run only this entry of the stage's runs (`tune_tasks`,
      `ordered_final_runs`).
  """
  if stage not in STAGES:
    raise StudyError(f'--stage {stage}: expected one of {", ".join(STAGES)}')
  if run_index is not None and stage not in ('tune', 'final'):
    raise StudyError('--run_index goes with --stage tune or --stage final')
  plan = Plan(config_spec, workdir)
  os.makedirs(workdir, exist_ok=True)
  _check_workdir(workdir, config_spec)
  env = run_env(workdir)
  failed = []
  if stage in ('all', 'tune'):
    failed += run_tuning(plan, workers, env, run_index)
  if stage in ('all', 'select'):
    final_runs, final_spec = prepare_final(plan, config_spec, argv)
    if stage == 'select':
      print(f'{len(final_runs)} final runs in '
            f'{os.path.join(workdir, FINAL, sweep.SPEC)}')
  if stage == 'final':
    final_runs, final_spec = read_final(workdir)
    if run_index is not None:
      if run_index >= len(final_runs):
        # The array is sized for a selection in every tune sweep; one
        # without a finished tuning run has fewer final runs.
        print(f'--run_index {run_index}: the selection has '
              f'{len(final_runs)} final runs; nothing to do')
        return 0
      final_runs = [final_runs[run_index]]
  if stage in ('all', 'final'):
    failed += [f'{FINAL}/{n}' for n in run_sweep(
        config_spec, os.path.join(workdir, FINAL), final_runs,
        1 if run_index is not None else workers, final_spec, env)]
  if stage in ('all', 'collect'):
    rows = collect(workdir)
    entries = (read_record(workdir) or {}).get('entries', [])
    print(f'collected {len(entries)} cells into '
          f'{os.path.join(workdir, "study.csv")}; table.csv, table.md, '
          f'table.tex: {len(rows)} rows')
  if failed:
    print(f'{len(failed)} runs failed (retried when the study is started '
          'again): ' + ', '.join(failed), file=sys.stderr)
    return sweep.FAILURE
  return 0


def check_final(final_dir: str, spec: dict[str, Any]) -> None:
  """Refuses final runs that exist with other settings.

  The final sweep records each run's varying keys as its overrides and its
  full flags as 'args'; a run of the same name whose flags or config file
  changed (an edited study config) would otherwise be skipped as finished.

  Raises:
    StudyError: naming the first such run.
  """
  old = _read_json(os.path.join(final_dir, sweep.SPEC)) or {}
  known = {r['name']: r for r in old.get('runs', [])}
  for r in spec['runs']:
    was = known.get(r['name'])
    if was and (was.get('config') != r['config'] or
                list(was.get('args') or []) != r['args']):
      raise StudyError(f'{final_dir}: run {r["name"]} exists with other '
                       'settings (was the study config changed?); use '
                       'another --workdir')


def _read_json(path: str) -> Any:
  try:
    with open(path, encoding='utf-8') as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def _abs_spec(config_spec: str) -> str:
  path, colon, variant = config_spec.partition(':')
  return os.path.abspath(path) + colon + variant


def read_record(workdir: str) -> dict[str, Any] | None:
  return _read_json(os.path.join(workdir, STUDY))


def write_record(workdir: str, record: dict[str, Any]) -> None:
  sweep.write_json(os.path.join(workdir, STUDY), record)


# ---------------------------------------------------------------------------
# Collect.

def _edge(value: float) -> str:
  return 'inf' if math.isinf(value) else f'{value:g}'


def user_group_names(edges: Sequence[float]) -> dict[str, str]:
  """{'cold_users': 'group=0-6', 'warm_users': 'group=6-1e+09'}: the names
  `mmjax.eval.ranking` gives the lowest and highest bins of
  `eval.user_groups` edges (none with fewer than two bins)."""
  edges = [float(e) for e in edges or ()]
  if len(edges) < 3:
    return {}
  return {'cold_users': f'group={_edge(edges[0])}-{_edge(edges[1])}',
          'warm_users': f'group={_edge(edges[-2])}-{_edge(edges[-1])}'}


def _edges(run_dir: str) -> list[float]:
  cfg = _read_json(os.path.join(run_dir, sweep.CONFIG)) or {}
  return [float(e) for e in (cfg.get('eval') or {}).get('user_groups') or ()]


def cold_only_evaluator(run_dir: str) -> str | None:
  """The name of the run's first `cold_items_only` evaluator
  (`eval.evaluators` of its config.json), or None."""
  cfg = _read_json(os.path.join(run_dir, sweep.CONFIG)) or {}
  evaluators = (cfg.get('eval') or {}).get('evaluators') or {}
  for name, spec in sorted(evaluators.items()):
    if isinstance(spec, dict) and spec.get('kind') == COLD_ONLY_KIND:
      return name
  return None


@dataclasses.dataclass(frozen=True)
class GroupSource:
  """Where a table group's numbers come from in a run directory.

  Attributes:
    prefix, suffix: a metric's key in results.json's best metrics is
      '<prefix>/<name><suffix>' (`metric(name)`).
    per_user_file: the per-user file of the paired test.
    per_user_metric: the statistics' metric's name in that file.
  """
  prefix: str
  suffix: str
  per_user_file: str
  per_user_metric: str

  def metric(self, name: str) -> str:
    return f'{self.prefix}/{name}{self.suffix}'


def group_source(group: str, names: dict[str, str], cold_only: str | None,
                 metric: str) -> GroupSource | None:
  """The source of `group`'s rows, or None where the runs lack it.

  'all', 'warm_users', 'cold_users' and 'cold_items' read the test ranking
  (the user groups and the cold-item metrics are its slices; `names` from
  `user_group_names`); 'cold_only' reads the `cold_only` evaluator's
  ranking of the cold items alone (per_user_<name>.npz).
  """
  test = 'per_user_test.npz'
  if group == 'all':
    return GroupSource('test', '', test, metric)
  if group == 'cold_items':
    return GroupSource('test', '/cold_items', test, metric + '/cold_items')
  if group == 'cold_only':
    if not cold_only:
      return None
    return GroupSource(cold_only, '', f'per_user_{cold_only}.npz', metric)
  if group in names:
    # The user groups select users of the whole ranking (`_Groups`).
    return GroupSource('test', '/' + names[group], test, metric)
  return None


class _Groups:
  """Per-run user selections for the user groups (from the run's dataset)."""

  def __init__(self):
    self._counts: dict[str, np.ndarray] = {}

  def train_counts(self, run_dir: str) -> np.ndarray:
    info = _read_json(os.path.join(run_dir, 'runinfo.json')) or {}
    data_dir = (info.get('dataset') or {}).get('dir')
    if not data_dir:
      raise ValueError(f'{run_dir}: runinfo.json names no dataset dir')
    if data_dir not in self._counts:
      ds = dataset_lib.load(data_dir)
      users, _ = ds.select(dataset_lib.TRAIN)
      self._counts[data_dir] = np.bincount(users, minlength=ds.num_users)
    return self._counts[data_dir]

  def select(self, run_dirs: dict[int, str], group: str):
    """(seed, users) -> bool [n]: the group's users of each seed's run
    (`run_dirs`: seed -> run directory), or None without two groups."""
    bins = {}
    for seed, d in run_dirs.items():
      edges = _edges(d)
      if len(edges) < 3:
        return None
      lo, hi = (edges[0], edges[1]) if group == 'cold_users' else (
          edges[-2], edges[-1])
      bins[seed] = (lo, hi, self.train_counts(d))

    def keep(seed, users):
      lo, hi, counts = bins[seed]
      c = counts[users]
      return (c >= lo) & (c < hi)

    return keep


def _fnum(x: Any) -> Any:
  if x is None:
    return ''
  if isinstance(x, dict):  # gap_per_seed: {seed: gap}.
    return ' '.join(f'{k}:{v:+.5f}' for k, v in x.items())
  if isinstance(x, float) and not math.isfinite(x):
    return ''
  return x


def collect(workdir: str, num_boot: int | None = None) -> list[dict[str, Any]]:
  """Writes study.csv, table.csv, table.md and table.tex; returns the
  table's rows."""
  record = read_record(workdir)
  if record is None:
    raise StudyError(f'{workdir}: no {STUDY}; not a study directory')
  spec = record.get('spec') or {}
  metric = spec.get('metric') or 'recall@20'
  if num_boot is None:
    num_boot = int(spec.get('num_boot') or 10000)
  final_dir = os.path.join(workdir, FINAL)
  cells = []
  for e in record.get('entries', []):
    d = sweep.run_dir(final_dir, e['run'])
    state = sweep.run_state(d)
    results = (_read_json(os.path.join(d, sweep.RESULTS)) or {}
               ) if state == 'done' else {}
    best = results.get('best') or {}
    cells.append({**e, 'dir': d, 'status': state,
                  'best_epoch': results.get('best_epoch', ''),
                  'at_budget': results.get('at_budget', ''),
                  'metrics': {k: v for k, v in best.items()
                              if '/' in k and not k.startswith('train/')}})
  write_study_csv(os.path.join(workdir, 'study.csv'), cells)
  rows = table_rows(record.get('dataset') or '', cells, metric, num_boot)
  write_table(workdir, rows, record)
  return rows


def write_study_csv(path: str, cells: Sequence[dict[str, Any]]) -> None:
  # val/ and test/ first, then those of extra evaluators (eval.evaluators,
  # e.g. 'cold/recall@20').
  names = {k for c in cells for k in c['metrics']}
  metrics = sorted(k for k in names if k.startswith('val/'))
  metrics += sorted(k for k in names if k.startswith('test/'))
  metrics += sorted(k for k in names if k not in metrics)
  head = ['model', 'representation', 'control', 'seed', 'run_dir', 'status',
          'best_epoch', 'at_budget'] + metrics
  rows = [{'model': c['model'], 'representation': c['representation'],
           'control': c['control'], 'seed': c['seed'], 'run_dir': c['dir'],
           'status': c['status'], 'best_epoch': c['best_epoch'],
           'at_budget': c['at_budget'], **c['metrics']} for c in cells]
  _write_csv(path, head, rows)


def _write_csv(path: str, head: Sequence[str],
               rows: Sequence[dict[str, Any]]) -> None:
  buf = io.StringIO()
  writer = csv.DictWriter(buf, fieldnames=list(head), restval='',
                          extrasaction='ignore', lineterminator='\n')
  writer.writeheader()
  for r in rows:
    writer.writerow({k: _fnum(v) for k, v in r.items()})
  _write_text(path, buf.getvalue())


def _write_text(path: str, text: str) -> None:
  tmp = f'{path}.{os.getpid()}.tmp'
  with open(tmp, 'w', encoding='utf-8', newline='') as f:
    f.write(text)
  os.replace(tmp, path)


def table_rows(dataset: str, cells: Sequence[dict[str, Any]], metric: str,
               num_boot: int) -> list[dict[str, Any]]:
  """One row per (model, representation, control, group), Holm across all.

  The statistics of a control row pair its seeds with the real row's seeds
  (both finished) on per-user test `metric` of the group's users (for
  'cold_only', of the cold-only ranking: `group_source`). Rows of group
  'cold_only' also give the mean over seeds of the random order's
  Recall@20 and of the median number of warm items above a user's
  best-scored cold item (the evaluator's summary).
  """
  keyed: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
  for c in cells:
    keyed.setdefault((c['model'], c['representation'], c['control']),
                     []).append(c)
  groups = _Groups()
  per_user_cache: dict[str, Any] = {}

  def per_user(d, name):
    path = os.path.join(d, name)
    if path not in per_user_cache:
      from mmjax.eval import ranking  # pylint: disable=g-import-not-at-top
      per_user_cache[path] = ranking.load_per_user(path)
    return per_user_cache[path]

  rows = []
  for (model, rep, control), cs in keyed.items():
    done = [c for c in cs if c['status'] == 'done']
    names = user_group_names(_edges(done[0]['dir'])) if done else {}
    cold_only = cold_only_evaluator(done[0]['dir']) if done else None
    real = {c['seed']: c for c in keyed.get((model, rep, 'real'), [])
            if c['status'] == 'done'}
    for group in GROUPS:
      source = group_source(group, names, cold_only, metric)
      if source is None:
        continue
      if group != 'all' and not any(
          _finite(c['metrics'].get(source.metric(metric))) for c in done):
        continue
      row = {'dataset': dataset, 'model': model, 'representation': rep,
             'control': control, 'group': group, 'n_seeds': len(done),
             'at_budget': any(bool(c['at_budget']) for c in done)}
      for m in TABLE_METRICS:
        mean, std = stats.mean_std(
            [c['metrics'].get(source.metric(m)) for c in done])
        row[f'{m}_mean'], row[f'{m}_std'] = mean, std
      if group == 'cold_only':
        for key in ('random_recall@20', 'warm_above_median'):
          row[key] = stats.mean_std(
              [c['metrics'].get(source.metric(key)) for c in done])[0]
      if control != 'real' and cs[0]['kind'] == 'control':
        pairs = [c for c in done if c['seed'] in real]
        if pairs:
          select = None
          if group in ('warm_users', 'cold_users'):
            select = groups.select({c['seed']: c['dir'] for c in pairs},
                                   group)
          pooled = stats.pool(
              [(c['seed'],
                per_user(real[c['seed']]['dir'], source.per_user_file),
                per_user(c['dir'], source.per_user_file)) for c in pairs],
              source.per_user_metric, select)
          st = stats.real_vs_control(pooled, num_boot=num_boot,
                                     seed=len(rows))
          row.update(gap=st['gap'], p_t=st['p_t'], p_w=st['p_w'],
                     effect_d=st['effect_d'], ci_low=st['ci_low'],
                     ci_high=st['ci_high'], p_seeds=st['p_seeds'],
                     n_units=st['n'], gap_per_seed=st['gap_per_seed'])
      rows.append(row)
  tested = [r for r in rows if 'p_t' in r]
  stats.add_holm(tested)
  return rows


def _finite(x: Any) -> bool:
  try:
    return math.isfinite(float(x))
  except (TypeError, ValueError):
    return False


def _f(x: Any, spec: str = '.4f') -> str:
  return format(float(x), spec) if _finite(x) else '-'


def _ms(row: dict[str, Any], m: str) -> str:
  mean, std = row.get(f'{m}_mean'), row.get(f'{m}_std')
  if not _finite(mean):
    return '-'
  return f'{mean:.4f} ± {std:.4f}' if _finite(std) else f'{mean:.4f}'


def format_markdown(rows: Sequence[dict[str, Any]],
                    record: dict[str, Any]) -> str:
  spec = record.get('spec') or {}
  lines = [f'# Leverage study {spec.get("name") or ""}'.rstrip(), '',
           f'Dataset {record.get("dataset") or "-"}; final seeds '
           f'{record.get("final_seeds")}. Test metrics at the best '
           'validation epoch, mean ± sample std over seeds (n). Control '
           'rows: real - control on per-user test '
           f'{spec.get("metric") or "recall@20"} pooled over (seed, user) '
           'units (gap, bootstrap 95% CI, effect size d, paired t and '
           'Wilcoxon p Holm-adjusted over the table) and p over the '
           'per-seed gaps (p seeds). * best epoch at the budget.', '']
  for group in GROUPS:
    sub = [r for r in rows if r['group'] == group]
    if not sub:
      continue
    lines += [f'## {group}', '',
              '| model | representation | control | n | Recall@20 | '
              'NDCG@20 | HR@20 | gap | 95% CI | d | p_t (Holm) | '
              'p_w (Holm) | p seeds |', '|' + '---|' * 13]
    for r in sub:
      ci = (f'[{_f(r.get("ci_low"), "+.4f")}, {_f(r.get("ci_high"), "+.4f")}]'
            if 'ci_low' in r else '')
      lines.append('| ' + ' | '.join([
          r['model'], r['representation'], r['control'],
          f'{r["n_seeds"]}{"*" if r["at_budget"] else ""}',
          _ms(r, 'recall@20'), _ms(r, 'ndcg@20'), _ms(r, 'hit@20'),
          _f(r['gap'], '+.4f') if 'gap' in r else '', ci,
          _f(r['effect_d'], '+.3f') if 'effect_d' in r else '',
          _f(r['p_t_holm'], '.1e') if 'p_t_holm' in r else '',
          _f(r['p_w_holm'], '.1e') if 'p_w_holm' in r else '',
          _f(r['p_seeds'], '.1e') if 'p_seeds' in r else '']) + ' |')
    lines.append('')
  if not rows:
    lines.append('No finished runs yet.')
  return '\n'.join(lines).rstrip() + '\n'


def format_latex(rows: Sequence[dict[str, Any]]) -> str:
  head = ['Model', 'Representation', 'Control', 'Group', '$n$',
          'Recall@20', 'NDCG@20', 'HR@20', 'Gap', '$p_t$ (Holm)',
          '$p$ (seeds)']
  lines = ['% Written by python -m mmjax.study; needs \\usepackage{booktabs}.',
           '\\begin{tabular}{' + 'l' * 4 + 'r' * 7 + '}', '\\toprule',
           ' & '.join(head) + r' \\', '\\midrule']
  for r in rows:
    cells = [sweep.tex(r['model']), sweep.tex(r['representation']),
             sweep.tex(r['control']), sweep.tex(r['group']), str(r['n_seeds'])]
    cells += [_ms(r, m).replace('±', r'$\pm$') for m in TABLE_METRICS]
    cells += [_f(r['gap'], '+.4f') if 'gap' in r else '',
              _f(r['p_t_holm'], '.1e') if 'p_t_holm' in r else '',
              _f(r['p_seeds'], '.1e') if 'p_seeds' in r else '']
    if r['at_budget']:
      cells[4] += r'$^{*}$'
    lines.append(' & '.join(cells) + r' \\')
  lines += ['\\bottomrule', '\\end{tabular}']
  return '\n'.join(lines) + '\n'


def write_table(workdir: str, rows: Sequence[dict[str, Any]],
                record: dict[str, Any]) -> None:
  _write_csv(os.path.join(workdir, 'table.csv'), TABLE_COLUMNS, rows)
  _write_text(os.path.join(workdir, 'table.md'),
              format_markdown(rows, record))
  _write_text(os.path.join(workdir, 'table.tex'), format_latex(rows))


# ---------------------------------------------------------------------------
# SLURM: the stages as chained jobs.

SUBMIT = 'submit.sh'


def slurm_sizes(plan: Plan) -> tuple[int, int]:
  """(tuning runs, final runs): the two arrays' sizes. The final runs'
  names and number do not depend on the points selected, only on every
  tune sweep having one (`describe_plan` counts them the same way)."""
  first = {t['key']: {k: v[0] for k, v in t['grid'].items()}
           for t in plan.tunes}
  return len(tune_tasks(plan)), len(ordered_final_runs(plan, first)[0])


def write_slurm(plan: Plan, config_spec: str,
                template: str | None = None) -> dict[str, str]:
  """Writes <study>/slurm/: tune.sbatch (array, one task per tuning run),
  select.sbatch (one job: selection and final set-up), final.sbatch
  (array, one task per final run), collect.sbatch (one job) and submit.sh,
  which submits them chained by --dependency (afterok; the collect after
  any end of the final array, so that the table shows what finished).
  Every job is `python -m mmjax.study` with --stage (and --run_index
  $SLURM_ARRAY_TASK_ID), so the study's own rules hold: finished runs are
  skipped, interrupted ones resume, failed ones are retried when the
  chain is submitted again.

  Args:
    plan: the study.
    config_spec: its config, 'path[:variant]'.
    template: --slurm_template (`sweep.find_template`).

  Returns:
    {script name: path}.

  Raises:
    SweepError: a template is missing.
  """
  array_path, array = sweep.read_template(template, sweep.ARRAY_TEMPLATE)
  step_path, step = sweep.read_template(template, sweep.STEP_TEMPLATE)
  workdir = plan.workdir
  n_tune, n_final = slurm_sizes(plan)
  slurm_dir = os.path.join(workdir, 'slurm')
  os.makedirs(slurm_dir, exist_ok=True)
  name = os.path.basename(os.path.abspath(workdir)) or 'study'
  common = ['--config', _abs_spec(config_spec), '--workdir',
            os.path.abspath(workdir)]
  scripts = {}
  for stage, n in (('tune', n_tune), ('select', 0), ('final', n_final),
                   ('collect', 0)):
    text, path = (array, array_path) if n else (step, step_path)
    scripts[stage] = sweep.slurm_script(
        text, job_name=f'{name}-{stage}', num_runs=max(n, 1),
        workdir=workdir, args=common + ['--stage', stage],
        module='mmjax.study', template_path=path)
  paths = {}
  for stage, text in scripts.items():
    paths[stage] = os.path.join(slurm_dir, f'{stage}.sbatch')
    _write_text(paths[stage], text)
  submit = os.path.join(slurm_dir, SUBMIT)
  _write_text(submit, submit_script(paths))
  os.chmod(submit, 0o755)
  paths['submit'] = submit
  print(f'{n_tune} tuning runs, {n_final} final runs; edit the cluster '
        f'section of the .sbatch files in {slurm_dir}, then submit the '
        f'chain:\n  {submit}')
  return paths


def submit_script(paths: dict[str, str]) -> str:
  """The shell script that submits the stages in order."""
  q = {k: shlex.quote(v) for k, v in paths.items()}
  return f"""#!/bin/bash
# Submits the study's stages as chained SLURM jobs (written by
# python -m mmjax.study --slurm). Submitting it again redoes only what is
# missing: each job skips finished runs and resumes interrupted ones.
set -euo pipefail
# --parsable prints 'jobid[;cluster]'.
tune=$(sbatch --parsable {q['tune']})
tune=${{tune%%;*}}
select=$(sbatch --parsable --dependency=afterok:$tune {q['select']})
select=${{select%%;*}}
final=$(sbatch --parsable --dependency=afterok:$select {q['final']})
final=${{final%%;*}}
collect=$(sbatch --parsable --dependency=afterany:$final {q['collect']})
echo "submitted: tune $tune, select $select, final $final, collect $collect"
"""


# ---------------------------------------------------------------------------
# Command line (--config, --workdir, --workers and --collect are the sweep's
# flags, defined once by mmjax.sweep).


def define_flags() -> None:
  """The sweep's flags plus --dry_run; by the command line only, not at
  import (absl's flag registry is global: see sweep.define_flags)."""
  sweep.define_flags()
  if 'dry_run' not in FLAGS:
    flags.DEFINE_bool(
        'dry_run', False, 'Print what the study would run (tuning sweeps, '
        'final runs per control) and run nothing.')
  if 'stage' not in FLAGS:
    flags.DEFINE_enum(
        'stage', 'all', STAGES, 'Run one stage only: tune, select (choose '
        'the points, set up the final runs), final, collect; with '
        '--run_index, one run of tune or final (a SLURM array task).')


def study_main(argv: Sequence[str]) -> int:
  for name in _SWEEP_ONLY:
    if FLAGS[name].present:
      raise StudyError(f'--{name} is a flag of mmjax.sweep, not of a study')
  if FLAGS.collect:
    rows = collect(FLAGS.collect)
    print(f'collected {FLAGS.collect}: {len(rows)} table rows')
    return 0
  if not FLAGS.config or not FLAGS.workdir:
    raise StudyError('--config and --workdir are required (or --collect '
                     'DIR)')
  if FLAGS.workers < 1:
    raise StudyError(f'--workers {FLAGS.workers}: expected at least 1')
  if FLAGS.slurm_template and not FLAGS.slurm:
    raise StudyError('--slurm_template goes with --slurm')
  if FLAGS.dry_run:
    print(describe_plan(Plan(FLAGS.config, FLAGS.workdir)))
    return 0
  if FLAGS.slurm:
    if FLAGS.stage != 'all' or FLAGS.run_index is not None:
      raise StudyError('--slurm writes the scripts of every stage: no '
                       '--stage or --run_index with it')
    write_slurm(Plan(FLAGS.config, FLAGS.workdir), FLAGS.config,
                FLAGS.slurm_template)
    return 0
  return run_study(FLAGS.config, FLAGS.workdir, FLAGS.workers, argv,
                   stage=FLAGS.stage, run_index=FLAGS.run_index)


def _fail(message: str) -> None:
  sys.stderr.write(f'error: {message}\n')
  sys.exit(sweep.USAGE)


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    _fail(f'unexpected arguments {" ".join(argv[1:])}')
  try:
    status = study_main(sys.argv[1:])
  except sweep.SweepError as e:
    _fail(str(e))
  except KeyboardInterrupt:
    print('interrupted: unfinished runs resume when the study is started '
          'again', file=sys.stderr)
    status = 130
  sys.exit(status)


if __name__ == '__main__':
  define_flags()
  app.run(main)
