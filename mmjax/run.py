r"""One run as a package API: `run(config, workdir) -> RunResult`.

Why: the command line (`python -m mmjax.launch`), the sweep, the leverage
study and the bench scripts all need the same steps around the training
loop: check the config, guard the workdir (resume only the same config),
record how to redo the run, train, and read back what it found. Each had its
own copy, and the bench scripts rebuilt a Trainer and reached into its
private attributes to evaluate a finished run again. Here they are public:

  from mmjax import run as run_lib
  result = run_lib.run(config, 'runs/x')
  result.best_epoch, result.val['recall@20'], result.test['ndcg@20']
  result.evaluators['cold']['recall@20']   # an `eval.evaluators` entry
  result.per_user['test']                  # runs/x/per_user_test.npz

  run_lib.RunResult.from_workdir('runs/x')  # a finished run, read back
  restored = run_lib.restore_best('runs/x')  # trainer, params, config
  run_lib.evaluate_checkpoint('runs/x')  # == the recorded best metrics
  run_lib.evaluate_checkpoint('runs/x', {'cold': {
      'kind': 'cold_items_only', 'split': 'test'}})  # asked afterwards

A multi-model config (`models` with `per_model.<name>` sections) trains each
model into `<workdir>/<name>` and `run` returns a dict name -> RunResult in
the order of `models` (a dict rather than a list: callers look models up by
name, and the names are the subfolders).

Importing this module imports no JAX: `launch` reports config and workdir
errors before paying for it; the training stack is imported by `run`.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import shutil
import sys
from typing import Any, Mapping, Sequence

from absl import logging
import ml_collections

from mmjax.data import dataset as dataset_lib
from mmjax.train import validate
from mmjax.utils import compile_cache
from mmjax.utils import runinfo

RESULTS = 'results.json'  # mmjax/train/loop.py RESULTS.
METRICS = 'metrics.jsonl'  # mmjax/utils/writers.py METRICS.
CHECKPOINTS = 'checkpoints'  # mmjax/train/checkpoint.py.


@dataclasses.dataclass(frozen=True)
class RunResult:
  """What one model's run found (results.json), and where its files are.

  Attributes:
    model: the model name.
    workdir: the run's directory (absolute).
    best_epoch: the epoch selected on validation (0 for a fitted model).
    at_budget: still improving when `train.num_epochs` ran out.
    stopped_early: patience ended the run before its budget.
    fitted: a closed-form model (no epochs).
    num_epochs: the budget (None when fitted).
    epochs_run: the epochs trained.
    val: metric -> value of 'val' at the best epoch ('recall@20', ...).
    test: metric -> value of 'test' at the best epoch.
    evaluators: evaluator name -> metric -> value at the best epoch, for
      'val', 'test' and every evaluator of `eval.evaluators`.
    config_path: config.json, the resolved config.
    metrics_path: metrics.jsonl.
    results_path: results.json.
    checkpoint_dir: checkpoints/ (None for a fitted model).
    per_user: evaluator name -> its per-user file (those present).
  """

  model: str
  workdir: str
  best_epoch: int
  at_budget: bool
  stopped_early: bool
  fitted: bool
  num_epochs: int | None
  epochs_run: int
  val: dict[str, float]
  test: dict[str, float]
  evaluators: dict[str, dict[str, float]]
  config_path: str
  metrics_path: str
  results_path: str
  checkpoint_dir: str | None
  per_user: dict[str, str]

  @property
  def metrics(self) -> dict[str, float]:
    """The best epoch's metrics as results.json names them ('val/...')."""
    return {f'{name}/{metric}': value
            for name, values in self.evaluators.items()
            for metric, value in values.items()}

  @classmethod
  def from_results(cls, results: Mapping[str, Any], workdir: str
                   ) -> RunResult:
    """The RunResult of a results.json's contents written in `workdir`."""
    workdir = os.path.abspath(workdir)
    evaluators = {}
    for key, value in (results.get('best') or {}).items():
      name, _, metric = key.partition('/')
      evaluators.setdefault(name, {})[metric] = value
    per_user = {}
    for name in evaluators:
      path = os.path.join(workdir, _per_user_file(name))
      if os.path.exists(path):
        per_user[name] = path
    checkpoints = os.path.join(workdir, CHECKPOINTS)
    return cls(
        model=results['model'], workdir=workdir,
        best_epoch=int(results['best_epoch']),
        at_budget=bool(results.get('at_budget')),
        stopped_early=bool(results.get('stopped_early')),
        fitted=bool(results.get('fitted')),
        num_epochs=results.get('num_epochs'),
        epochs_run=int(results.get('epochs_run') or 0),
        val=dict(evaluators.get('val', {})),
        test=dict(evaluators.get('test', {})),
        evaluators=evaluators,
        config_path=os.path.join(workdir, runinfo.CONFIG),
        metrics_path=os.path.join(workdir, METRICS),
        results_path=os.path.join(workdir, RESULTS),
        checkpoint_dir=checkpoints if os.path.isdir(checkpoints) else None,
        per_user=per_user)

  @classmethod
  def from_workdir(cls, workdir: str) -> RunResult:
    """Reads a finished run back from its workdir's results.json.

    Args:
      workdir: one model's run directory (for a multi-model config, its
        `<workdir>/<name>`; see `load`).

    Raises:
      FileNotFoundError: the run has not finished (no results.json).
    """
    path = os.path.join(workdir, RESULTS)
    if not os.path.exists(path):
      raise FileNotFoundError(
          f'{path}: no results (the run has not finished, or {workdir} holds '
          'a multi-model run: read it with mmjax.run.load).')
    with open(path, encoding='utf-8') as f:
      return cls.from_results(json.load(f), workdir)


def _per_user_file(name: str) -> str:
  # As mmjax/train/loop.py per_user_file (imported lazily there: JAX).
  return f'per_user_{"valid" if name == "val" else name}.npz'


def model_names(config: ml_collections.ConfigDict) -> tuple[str, ...]:
  """The `models` of a multi-model config; () for a single-model one."""
  return tuple(config.get('models') or ())


def load(workdir: str) -> RunResult | dict[str, RunResult]:
  """A finished run read back, as `run` returned it.

  Raises:
    FileNotFoundError: no config.json, or a model has no results.json.
  """
  names = model_names(runinfo.load_config(workdir))
  if not names:
    return RunResult.from_workdir(workdir)
  return {n: RunResult.from_workdir(os.path.join(workdir, n)) for n in names}


def check_data(config: ml_collections.ConfigDict) -> None:
  """The cheap data checks: the data config exists, and when the dataset is
  already prepared, every representation of `features.sources` is stored.

  Raises:
    validate.ConfigError: either is missing.
  """
  from mmjax.data import prepare  # pylint: disable=g-import-not-at-top
  from mmjax.data import store  # pylint: disable=g-import-not-at-top
  name = str(config.data.name)
  try:
    data_cfg = prepare.resolve_training_data(config.data)
  except FileNotFoundError as e:  # datasets.UnknownDataset among them.
    raise validate.ConfigError(f'data.name={name!r}: {e}') from e
  # As prepare.ensure_dataset names it; a dataset not prepared yet is
  # checked by the loop after preparing it.
  out_dir = os.path.join(
      data_cfg.root, f'{data_cfg.name}-{prepare.config_hash(data_cfg)[:8]}')
  if not os.path.exists(os.path.join(out_dir, dataset_lib.MANIFEST)):
    return
  stored = store.list_features(out_dir)
  for modality, rep in sorted(dict(config.features.sources or {}).items()):
    if rep and rep not in stored:
      close = difflib.get_close_matches(rep, stored, n=1)
      hint = (f'did you mean {close[0]!r}?' if close else
              f'stored: {", ".join(stored) or "none"}; extract it with '
              '`python -m mmjax.features.extract`.')
      raise validate.ConfigError(
          f'features.sources.{modality}={rep!r}: no such representation in '
          f'{out_dir}/features; {hint}')


def run(config: ml_collections.ConfigDict, workdir: str, *,
        overwrite: bool = False, overrides: Sequence[str] = (),
        argv: Sequence[str] | None = None
        ) -> RunResult | dict[str, RunResult] | None:
  """Checks, trains (or resumes) and evaluates one config into `workdir`.

  Steps: `validate.check` and `check_data` (no JAX yet); the workdir guard
  (`runinfo.check_resumable`: a workdir resumes only a run of the same
  config); the device check; with `overwrite`, an existing run is moved to
  `<workdir>.old-<UTC time>`; runinfo (config.json, overrides, versions,
  git diff); then the training loop, which resumes from the workdir's
  checkpoint when there is one and skips nothing it has not done; last, the
  propagation paths the run took (kernel, row-split kernel or segment_sum:
  `mmjax.graph.sparse.run_record`) and the programs it compiled or read
  from the persistent compilation cache (`mmjax.utils.compile_cache`, on
  by default) go into runinfo.json. A start that fails
  before anything was trained removes the workdir it created (never one
  that existed).

  Args:
    config: a training config (configs/*.py's `get_config()`).
    workdir: the output directory.
    overwrite: start afresh where `workdir` holds another run (moved aside,
      nothing deleted).
    overrides: the command-line `--config.` flags (recorded only).
    argv: the command line (recorded only); default sys.argv.

  Returns:
    The RunResult; for a multi-model config, name -> RunResult in the order
    of `models`. (None only when the training loop returned no result,
    which the package's loop never does.)

  Raises:
    validate.ConfigError: a config value that cannot run, or a missing
      representation of a prepared dataset.
    runinfo.WorkdirError: `workdir` holds another config's run.
    dataset.DataError: bad data.
  """
  validate.check(config)
  check_data(config)
  # Only a run's directory is moved aside: never a folder that holds no run.
  overwrite = overwrite and os.path.exists(
      os.path.join(workdir, runinfo.CONFIG))
  if not overwrite:
    runinfo.check_resumable(workdir, config)
  # The training stack, imported once the cheap checks have passed.
  # pylint: disable=g-import-not-at-top
  import jax

  from mmjax import models
  from mmjax.graph import sparse
  from mmjax.parallel import mesh as mesh_lib
  from mmjax.train import loop
  # pylint: enable=g-import-not-at-top
  # Before anything compiles: a later run with the same shapes (a resume,
  # the next run of a sweep) then reads its programs instead of compiling.
  cache = compile_cache.Counter(compile_cache.enable())
  if not jax.distributed.is_initialized():  # Once per process.
    mesh_lib.maybe_initialize_distributed(config.get('mesh'))
  validate.check_devices(config, jax.device_count(),
                         lambda name: hasattr(models.get_model(name), 'fit'))
  logging.info('JAX %s, devices: %r', jax.__version__, jax.devices())
  if overwrite:
    moved = runinfo.archive(workdir)
    logging.warning('overwrite: moved the old run to %s', moved)
  created = not os.path.exists(workdir)
  # The propagation paths this run takes, with those of its earlier starts
  # (a resume), for runinfo.json: which code computed the results.
  paths = set(runinfo.read(workdir).get('propagation', {}).get('paths', ()))
  try:
    runinfo.write(workdir, config, overrides,
                  sys.argv if argv is None else argv)
    with sparse.recording_paths(paths):
      rows = loop.train_and_evaluate(config, os.path.abspath(workdir))
  except BaseException:
    # A start that fails before anything is trained (e.g. a representation
    # of a dataset prepared in this run) leaves no workdir behind; one that
    # existed before is never removed.
    if created and not runinfo.has_results(workdir):
      shutil.rmtree(workdir, ignore_errors=True)
    raise
  finally:
    if os.path.exists(os.path.join(workdir, runinfo.RUNINFO)):
      runinfo.add(workdir, propagation=sparse.run_record(paths),
                  compilation_cache=cache.record())
  names = model_names(config)
  results = [RunResult.from_results(row, os.path.join(workdir, name))
             for row, name in zip(rows or (), names or ('',))]
  if names:
    return dict(zip(names, results))
  return results[0] if results else None


@dataclasses.dataclass(frozen=True)
class RestoredRun:
  """A finished (or interrupted) run's best state, rebuilt.

  Attributes:
    workdir: the run directory.
    config: its recorded config (config.json), locked.
    trainer: a `loop.Trainer` built from it (dataset, model, evaluators).
    params: the parameters of its best validation checkpoint (a closed-form
      model is fitted again: deterministic).
    best_epoch: that checkpoint's epoch (0 when fitted): the tie-break
      key's epoch.
  """

  workdir: str
  config: ml_collections.ConfigDict
  trainer: Any
  params: Any
  best_epoch: int

  def evaluate(self, evaluators: Sequence[str] | Mapping[str, Any] | None
               = None) -> dict[str, Any]:
    """Evaluates the best state again, with the loop's tie-break keys.

    Args:
      evaluators: None: the run's own ('val', 'test' and those of its
        `eval.evaluators`); a sequence of their names; or a mapping of new
        evaluators, name -> {kind, split, ...} as in `eval.evaluators`
        (mmjax/eval/evaluators.py), added to the trainer first.

    Returns:
      name -> ranking.EvalResult (summary, per-user vectors, top items).
    """
    trainer = self.trainer
    if evaluators is None:
      names = trainer.evaluator_names
    elif isinstance(evaluators, Mapping):
      names = trainer.add_evaluators(evaluators)
    else:
      names = list(evaluators)
    return trainer.evaluate(self.params, self.best_epoch, names)


def restore_best(workdir: str, *, dataset: Any = None,
                 dataset_dir: str | None = None, mesh: Any = None
                 ) -> RestoredRun:
  """Rebuilds a run's Trainer from its config.json and restores its best state.

  Args:
    workdir: one model's run directory.
    dataset: the dataset (loaded from the recorded config when None).
    dataset_dir: its directory.
    mesh: the mesh (built from the config's `mesh.data` when None).

  Returns:
    The RestoredRun.

  Raises:
    FileNotFoundError: no config.json, or no best checkpoint.
    ValueError: the best checkpoint is not the epoch results.json recorded.
  """
  # pylint: disable=g-import-not-at-top
  from mmjax.train import checkpoint
  from mmjax.train import loop
  # pylint: enable=g-import-not-at-top
  config = runinfo.load_config(workdir)
  if model_names(config):
    raise ValueError(f'{workdir} holds a multi-model run: restore one of '
                     f'its models, {workdir}/<name>.')
  if dataset is None:
    dataset, dataset_dir = loop.load_dataset(config)
  trainer = loop.Trainer(config, dataset, dataset_dir, mesh)
  if trainer.fit_only:
    return RestoredRun(os.path.abspath(workdir), config, trainer,
                       trainer.fit(), 0)
  ckpt = checkpoint.Checkpointer(workdir, config.ckpt.keep,
                                 'val/' + config.eval.select_metric)
  try:
    best_epoch = ckpt.best_step()
    if best_epoch is None:
      raise FileNotFoundError(f'{workdir}: no best checkpoint.')
    params = ckpt.restore_best(trainer.abstract_state()).params
  finally:
    ckpt.close()
  results = os.path.join(workdir, RESULTS)
  if os.path.exists(results):
    with open(results, encoding='utf-8') as f:
      recorded = json.load(f)['best_epoch']
    if recorded != best_epoch:
      raise ValueError(f'{workdir}: the best checkpoint is epoch '
                       f'{best_epoch}, results.json says {recorded}.')
  return RestoredRun(os.path.abspath(workdir), config, trainer, params,
                     int(best_epoch))


def evaluate_checkpoint(
    workdir: str,
    evaluators: Sequence[str] | Mapping[str, Any] | None = None,
    *, restored: RestoredRun | None = None) -> dict[str, float]:
  """Evaluates a run's best checkpoint again.

  With the loop's keys, the recorded evaluators reproduce results.json's
  'best' values exactly (`RunResult.metrics`).

  Args:
    workdir: one model's run directory.
    evaluators: as `RestoredRun.evaluate`: None (the run's own), names, or
      new evaluators name -> {kind, split, ...}.
    restored: `restore_best(workdir)` when already made.

  Returns:
    '<evaluator>/<metric>' -> value, as results.json's 'best' names them.
  """
  restored = restored or restore_best(workdir)
  out = {}
  for name, result in restored.evaluate(evaluators).items():
    out.update({f'{name}/{k}': v for k, v in result.summary.items()})
  return out
