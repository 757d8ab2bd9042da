"""Training and evaluation loop: compiled epochs, checkpoints, exact resume.

One epoch is one jitted program (`lax.scan` over S static batches) with the
positives' order and the negatives drawn on device (`sampler`); the state is
donated, the model context and train data are jit arguments (replicated),
batches are sharded over the ('data',) mesh. Keys: init `fold_in(root,
STREAM_INIT)`; epoch order `fold_in(data, epoch)`; step `fold_in(train,
step)` split into (negatives, model); evaluation `fold_in(eval, epoch)`.

Every `train.eval_every_epochs` (and at the last epoch) validation and test
are evaluated; the best epoch is selected on validation only
(`eval.select_metric`), test is reported at that epoch. Early stopping after
`train.patience` evaluations without improvement (0: never). Checkpoints
(`checkpoint.Checkpointer`) every `ckpt.every_epochs`, at early stop and at
the end, with the loop state (epoch, best metric and epoch, evaluations since
the best, the best epoch's summaries). A restarted run resumes from the latest
checkpoint, drops the metrics.jsonl lines logged after it and the checkpoints
written after it, and ends with the same params and metrics as an unbroken
run (the `perf/` timing fields aside).

metrics.jsonl: per epoch {'epoch', 'step', 'train/loss', 'train/bpr',
'train/reg' (means over the epoch's steps, weighted by real rows), with
`train.log_norms` also 'train/l2_grads', 'train/l2_updates' (the same means
of the global norms), 'train/l2_params' (end of epoch), 'train/lr'
(the learning rate of the epoch's last update), 'perf/epoch_time_s',
'perf/samples_per_s'}; per evaluation 'val/<metric>',
'test/<metric>', '<name>/<metric>' of each evaluator of `eval.evaluators`
(mmjax/eval/evaluators.py; those with every='best' only at a new best),
'perf/eval_time_s'; at the end a line with 'final': true and
'best/val/...', 'best/test/...', 'best/<name>/...', 'best_epoch',
'at_budget'. Per-user vectors at the best epoch: per_user_valid.npz,
per_user_test.npz and per_user_<name>.npz (`per_user_file`).

A trained run whose best validation came in its last evaluations, with
patience never ending it, is "still improving at the budget" (`at_budget`):
results.json and the final metrics line say so, the final table marks it and
a warning asks for a larger `train.num_epochs`. Closed-form models (`fit`)
have no budget and are never marked.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import time
from typing import Any, Callable

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from mmjax import models
from mmjax.data import dataset as dataset_lib
from mmjax.eval import evaluators as evaluators_lib
from mmjax.eval import ranking
from mmjax.models import context as context_lib
from mmjax.models import options as model_options
from mmjax.parallel import mesh as mesh_lib
from mmjax.train import checkpoint
from mmjax.train import optim
from mmjax.train import sampler
from mmjax.train import state as state_lib
from mmjax.utils import runinfo
from mmjax.utils import seeds
from mmjax.utils import writers

RESULTS = 'results.json'

# A run is still improving at the budget when its best validation is one of
# its last AT_BUDGET_EVALS evaluations and patience did not end it. Counted
# in evaluations, not epochs, because the curve is only seen at evaluations:
# fewer than three looks without a gain is no evidence of a plateau (one or
# two flat evaluations are within the noise of a rising curve), and it is
# the case the issue names (FREEDOM's best at epoch 48 of 50, evaluated every
# epoch: two evaluations after the best). A run that patience stopped,
# even at its last epoch, saw its plateau and is never marked.
AT_BUDGET_EVALS = 3


def at_budget(evals_since_best: int, patience_reached: bool) -> bool:
  """Whether a trained run was still improving when its budget ran out.

  Args:
    evals_since_best: evaluations after the best one (0: the best was last).
    patience_reached: `train.patience` evaluations passed without a gain.

  Returns:
    True when the best is among the last `AT_BUDGET_EVALS` evaluations and
    patience did not stop the run: more epochs would likely do better.
  """
  return not patience_reached and evals_since_best < AT_BUDGET_EVALS


def budget_warning(results: dict[str, Any]) -> str | None:
  """The console warning of a run still improving at the budget, or None."""
  if not results.get('at_budget'):
    return None
  return (f'warning: {results["model"]}: best validation epoch '
          f'{results["best_epoch"]} of {results["num_epochs"]}; still '
          'improving at the budget, raise train.num_epochs')


def make_train_step(model: Any, tx: optax.GradientTransformation, cfg: Any):
  """`train_step(state, batch, ctx, key, first=True, cache=None)`, pure.

  Returns (state, metrics, cache). The model sees its own section,
  `cfg.model`, only.

  For a model with a per-epoch cache (`epoch_cache`, mmjax/models), where
  `first` is true the cache is computed from `state.params` inside the
  loss, so the step's gradient flows through it (MMRec's LATTICE builds its
  item graph so at an epoch's first batch), and returned; elsewhere the
  given `cache` (what the epoch's first step returned) is used, detached.
  `first` may be traced: inside the epoch's scan one `lax.cond` picks the
  branch, so the loss and its gradient are compiled once, not once for the
  first step and once for the others. The cache is None for other models.
  """
  model_cfg = cfg.model
  cache_fn = getattr(model, 'epoch_cache', None)
  # Off by default: the norms keep every step's gradients and updates in
  # memory instead of fused into Adam's pass (at Amazon Baby's size 14-31% of
  # a LightGCN, FREEDOM or VBPR step's memory traffic, XLA's count).
  log_norms = bool(cfg.train.get('log_norms', False))

  def train_step(state, batch, ctx, key, first=True, cache=None):
    def loss_fn(params):
      value, step_ctx = None, ctx
      if cache_fn is not None:
        def build(p):
          return cache_fn(p, ctx, model_cfg)

        if first is True:  # Static: no cond to trace.
          value = build(params)
        elif cache is not None:
          value = jax.lax.cond(
              first, build, lambda _: jax.lax.stop_gradient(cache), params)
        if value is not None:
          step_ctx = models.with_epoch_cache(ctx, model_cfg, value)
      loss, aux = model.loss(params, batch, step_ctx, key, model_cfg)
      return loss, (aux, value)

    (loss, (aux, value)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = {'loss': loss}
    if log_norms:
      metrics['l2_grads'] = optax.tree.norm(grads)
      metrics['l2_updates'] = optax.tree.norm(updates)
    metrics.update(aux)
    return (state_lib.TrainState(state.step + 1, params, opt_state), metrics,
            value)

  return train_step


def sharded_batch(td: sampler.TrainData, index: Any, mask: Any, key: Any,
                  num_negatives: int, with_negatives: bool,
                  rows: jax.sharding.Sharding) -> dict[str, Any]:
  """A step's batch, split over the 'data' axis (params stay replicated)."""
  batch = sampler.make_batch(td, index, mask, key, num_negatives,
                             with_negatives)
  return jax.lax.with_sharding_constraint(batch, rows)


# Folded into the training key for the per-epoch hook's keys; step keys fold
# in the step count, which never reaches this value.
PRE_EPOCH_STREAM = 2**31 - 1


def make_epoch_fn(model: Any, tx: optax.GradientTransformation, cfg: Any,
                  mesh: jax.sharding.Mesh, batch_size: int):
  """The jitted epoch `(state, ctx, td, epoch, data_key, train_key)`.

  Returns (state, {'train/<name>': float32 []}). The state is donated.
  A model's per-epoch cache (`epoch_cache`, mmjax/models) is built by the
  epoch's first step, from the parameters the epoch starts with, and
  carried through the scan to the others (`make_train_step`).

  Raises:
    ValueError: the batch size is not a multiple of the device count.
  """
  if batch_size % mesh.size:
    raise ValueError(f'train.batch_size={batch_size} must be a multiple of '
                     f'the {mesh.size} devices of the mesh.')
  train_step = make_train_step(model, tx, cfg)
  num_negatives = int(cfg.train.num_negatives)
  with_negatives = models.uses_negatives(model)
  rows = mesh_lib.data_sharded(mesh)
  repl = mesh_lib.replicated(mesh)

  pre_epoch = getattr(model, 'pre_epoch', None)
  cache_fn = getattr(model, 'epoch_cache', None)

  def epoch_fn(state, ctx, td, epoch, data_key, train_key):
    index, mask = sampler.epoch_order(
        td, jax.random.fold_in(data_key, epoch), batch_size)  # [S, B]
    if pre_epoch is not None:
      # Once per epoch (MMRec's `pre_epoch_processing`), from a key that
      # depends on the epoch alone, so a resumed run redraws the same.
      epoch_key = jax.random.fold_in(
          jax.random.fold_in(train_key, PRE_EPOCH_STREAM), epoch)
      ctx = pre_epoch(ctx, epoch_key, cfg.model)

    # The per-epoch cache (`epoch_cache`) rides in the scan's carry: the
    # first step computes it (with gradient) from the epoch's starting
    # parameters and the others reuse it. Its placeholder for the first
    # step, never read, only gives the carry its shapes; None (the model
    # has no cache, or its options ask for none) carries nothing.
    cache = None
    if cache_fn is not None:
      shapes = jax.eval_shape(lambda p: cache_fn(p, ctx, cfg.model),
                              state.params)
      cache = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
    first = jnp.arange(index.shape[0]) == 0  # [S]

    def body(carry, xs):
      state, cache = carry
      index, mask, is_first = xs
      step_key = jax.random.fold_in(train_key, state.step)
      neg_key, model_key = jax.random.split(step_key)
      batch = sharded_batch(td, index, mask, neg_key, num_negatives,
                            with_negatives, rows)
      state, metrics, cache = train_step(state, batch, ctx, model_key,
                                         is_first, cache)
      return (state, cache), metrics

    (state, _), per_step = jax.lax.scan(body, (state, cache),
                                        (index, mask, first))
    weight = mask.sum(axis=1)  # [S]: real rows per step.
    out = {f'train/{name}': jnp.sum(v * weight) / jnp.sum(weight)
           for name, v in per_step.items()}
    out['train/l2_params'] = optax.tree.norm(state.params)
    return state, out

  return jax.jit(epoch_fn, in_shardings=repl, out_shardings=repl,
                 donate_argnums=(0,))


def with_declared_options(cfg: Any) -> ml_collections.ConfigDict:
  """`cfg` with every option its model declares (mmjax/models/options.py).

  A model reads `<section>.<option>` with no default of its own; a
  config that leaves an option out (a config.json of an older run, a
  hand-made section) gets the declared default here.
  """
  out = copy.deepcopy(cfg)
  with out.unlocked():
    out.model = model_options.complete(cfg.model)
  return out


class Trainer:
  """Everything one run needs on device, built once.

  Attributes:
    cfg, model, mesh, ctx (replicated), td (replicated TrainData or None for
    closed-form models), tx, epoch_fn, steps_per_epoch, data_key and
    train_key (the epoch order's and the steps' keys, `epoch_fn`'s last two
    arguments), evaluators {'val': Evaluator, 'test': Evaluator} (the
    full ranking of each split), extra_evaluators (name -> the evaluators of
    `eval.evaluators`, mmjax/eval/evaluators.py), dataset, feature_record,
    score_fn (params, ctx, users) -> scores [U_b, I], and eval_params
    (params -> what score_fn takes: the embeddings, or the params of a model
    with `score`).
  """

  def __init__(self, cfg: Any, ds: dataset_lib.Dataset,
               dataset_dir: str | None = None,
               mesh: jax.sharding.Mesh | None = None):
    cfg = with_declared_options(cfg)
    self.cfg = cfg
    self.dataset = ds
    self.model = models.get_model(cfg.model.name)
    self.mesh = mesh or mesh_lib.make_mesh(cfg.mesh.data)
    self.repl = mesh_lib.replicated(self.mesh)
    ctx, self.feature_record = context_lib.make_context(
        ds, dataset_dir, cfg.features, seed=int(cfg.seed))
    ctx = jax.device_put(ctx, self.repl)
    if hasattr(self.model, 'prepare'):
      prepared = jax.jit(lambda c: self.model.prepare(c, cfg.model),
                         out_shardings=self.repl)(ctx)
      ctx = dataclasses.replace(
          ctx, extras={cfg.model.name: prepared})
    self.ctx = ctx
    self.fit_only = hasattr(self.model, 'fit')
    self.num_train = int((ds.split == dataset_lib.TRAIN).sum())
    self.td = None
    if not self.fit_only:
      self.td = jax.device_put(
          sampler.make_train_data(ds, cfg.train.negatives_from), self.repl)
      batch = int(cfg.train.batch_size)
      self.steps_per_epoch = -(-self.num_train // batch)
      self.tx = optim.make_optimizer(cfg, self.steps_per_epoch)
      self.epoch_fn = make_epoch_fn(self.model, self.tx, cfg, self.mesh, batch)
      self.data_key = self._key(seeds.STREAM_DATA)
      self.train_key = self._key(seeds.STREAM_TRAIN)
    if hasattr(self.model, 'score'):
      model = self.model
      self.score_fn = lambda p, c, u: model.score(p, c, u, cfg.model)
      self.eval_params = lambda params: params
    else:
      self.score_fn = ranking.embedding_score
      embed = jax.jit(lambda p, c: self.model.embed(p, c, cfg.model),
                      out_shardings=self.repl)
      self.eval_params = lambda params: embed(params, self.ctx)
    self._eval_data = {}
    mask_valid = bool(cfg.eval.mask_valid_at_test)
    self.evaluators = {
        name: ranking.Evaluator(self.eval_data(name, mask_valid), cfg.eval,
                                self.mesh, self.score_fn)
        for name in evaluators_lib.SPLITS}
    self.extra_evaluators = {}
    self.add_evaluators(cfg.eval.get('evaluators'))
    self.split_hash = dataset_lib.split_hash(ds)

  def eval_data(self, split: str, mask_valid: bool) -> ranking.EvalData:
    """The EvalData of split 'val' or 'test', built once per mask choice."""
    mask_valid = mask_valid and split == 'test'
    if (split, mask_valid) not in self._eval_data:
      self._eval_data[split, mask_valid] = ranking.make_eval_data(
          self.dataset, evaluators_lib.SPLITS[split], mask_valid=mask_valid,
          relevance_threshold=self.cfg.eval.relevance_threshold)
    return self._eval_data[split, mask_valid]

  def add_evaluators(self, section: Any) -> list[str]:
    """Builds the evaluators of an `eval.evaluators`-like section.

    Args:
      section: name -> {kind, split, every, ...} (evaluators.specs), or None.

    Returns:
      Their names.

    Raises:
      ValueError: a bad entry, or a name taken by another evaluator (one
        with the same spec is kept as it is).
    """
    spec_map = evaluators_lib.specs(section)
    taken = sorted(n for n, s in spec_map.items()
                   if n in self.extra_evaluators
                   and self.extra_evaluators[n].spec != s)
    if taken:
      raise ValueError(f'evaluators {taken} exist already, with other '
                       'settings.')
    new = {n: s for n, s in spec_map.items() if n not in self.extra_evaluators}
    self.extra_evaluators.update(evaluators_lib.build(
        new, self.eval_data, self.cfg.eval, self.mesh, self.score_fn))
    return list(spec_map)

  @property
  def evaluator_names(self) -> list[str]:
    """'val', 'test', then the extra evaluators (metric prefixes)."""
    return [*self.evaluators, *self.extra_evaluators]

  def names_every(self, every: str) -> list[str]:
    """The evaluators run at every evaluation ('eval'; 'val' and 'test'
    included) or only at a new best ('best')."""
    main = list(self.evaluators) if every == 'eval' else []
    return main + [n for n, e in self.extra_evaluators.items()
                   if e.spec.every == every]

  def _key(self, stream: int) -> Any:
    # Made by a jitted function: device_put of a committed single-device
    # key to a mesh spanning several processes is not allowed.
    seed = int(self.cfg.seed)
    return jax.jit(lambda: seeds.stream(seed, stream),
                   out_shardings=self.repl)()

  def _create(self, key, ctx):
    return state_lib.create_train_state(self.model, self.tx, key, ctx,
                                        self.cfg.model)

  def init_state(self) -> state_lib.TrainState:
    key = self._key(seeds.STREAM_INIT)
    return jax.jit(self._create, out_shardings=self.repl)(key, self.ctx)

  def abstract_state(self) -> Any:
    shapes = jax.eval_shape(self._create,
                            seeds.stream(self.cfg.seed, seeds.STREAM_INIT),
                            self.ctx)
    return checkpoint.abstract(shapes, self.repl)

  def fit(self) -> Any:
    # Closed-form models get the init stream's key, as `init` does.
    return jax.jit(lambda k, c: self.model.fit(k, c, self.cfg.model),
                   out_shardings=self.repl)(self._key(seeds.STREAM_INIT),
                                            self.ctx)

  def run_epoch(self, state: state_lib.TrainState, epoch: int
                ) -> tuple[state_lib.TrainState, dict[str, float]]:
    """Trains one epoch (1-based); returns the new state and host metrics."""
    epoch_arr = jax.device_put(np.int32(epoch), self.repl)
    # Traced under the mesh so that graph propagation splits its rows over
    # the 'data' axis (mmjax/graph/kernel/ops.py) instead of repeating the
    # whole product on every device.
    with jax.set_mesh(self.mesh), jax.transfer_guard('disallow'):
      state, metrics = self.epoch_fn(state, self.ctx, self.td, epoch_arr,
                                     self.data_key, self.train_key)
    return state, {k: float(v) for k, v in jax.device_get(metrics).items()}

  def eval_key(self, epoch: int, name: str) -> jax.Array:
    """The tie-break key of evaluator `name` at `epoch`: its split's key.

    'val' folds in 0 and 'test' 1; an extra evaluator uses its split's key.
    """
    if name in self.extra_evaluators:
      name = self.extra_evaluators[name].spec.split
    key = jax.random.fold_in(seeds.stream(self.cfg.seed, seeds.STREAM_EVAL),
                             epoch)
    return jax.random.fold_in(key, list(evaluators_lib.SPLITS).index(name))

  def evaluate(self, params: Any, epoch: int,
               names: list[str] | None = None,
               given: dict[str, ranking.EvalResult] | None = None
               ) -> dict[str, ranking.EvalResult]:
    """Evaluator results of `params` (tie-break keyed by epoch).

    Args:
      params: the model's parameters.
      epoch: the epoch (the tie-break key's).
      names: which evaluators; default: those run at every evaluation
        ('val', 'test' and the extras with every='eval').
      given: results of this params and epoch already computed ('val',
        'test'), which `user_groups` evaluators regroup instead of ranking
        again.

    Returns:
      name -> EvalResult, for `names` only.
    """
    names = self.names_every('eval') if names is None else list(names)
    unknown = sorted(set(names) - set(self.evaluator_names))
    if unknown:
      raise KeyError(f'no evaluators {unknown}; the run has '
                     f'{self.evaluator_names}.')
    done = dict(given or {})
    out = {}
    with jax.set_mesh(self.mesh):
      eval_params = self.eval_params(params)

      def split_result(split):
        if split not in done:
          done[split] = self.evaluators[split](
              eval_params, self.ctx, self.eval_key(epoch, split))
        return done[split]

      for name in names:
        if name in self.evaluators:
          out[name] = split_result(name)
        else:
          evaluator = self.extra_evaluators[name]
          split = evaluator.spec.split
          out[name] = evaluator(
              eval_params, self.ctx, self.eval_key(epoch, name),
              split_result(split) if evaluator.needs_split_result else None)
    return out


def _data_view(data_cfg: Any) -> ml_collections.ConfigDict:
  """The `data` section with nested `overrides` flattened to dotted keys.

  `prepare.ensure_dataset` applies `overrides` as {'a.b': value}; ConfigDict
  fields cannot hold dots under lock_config, so training configs nest them
  ({'synthetic': {'num_users': 300}}) and they are flattened here.
  """
  d = data_cfg.to_dict()
  flat = {}

  def walk(prefix, value):
    if isinstance(value, dict):
      for k, v in value.items():
        walk(f'{prefix}.{k}' if prefix else k, v)
    else:
      flat[prefix] = value

  walk('', d.pop('overrides', None) or {})
  d['overrides'] = flat
  return ml_collections.ConfigDict(d, allow_dotted_keys=True)


def load_dataset(cfg: Any) -> tuple[dataset_lib.Dataset, str]:
  """(dataset, its directory), prepared first when absent."""
  from mmjax.data import prepare  # pylint: disable=g-import-not-at-top
  data_dir = prepare.ensure_dataset(_data_view(cfg.data))
  return dataset_lib.load(data_dir), data_dir


def check_splits(ds: dataset_lib.Dataset, dataset_dir: str | None,
                 select_metric: str) -> None:
  """Refuses a dataset that cannot select an epoch or report a test score.

  Every run picks its best epoch on validation (`eval.select_metric`) and
  reports test there, so both splits need interactions. An Elliot fixed
  split without val.tsv has none for validation: training it would only
  fail at the first evaluation (a KeyError on the missing val metric), and
  selecting on test instead would report a test score tuned on test. The
  tool refuses it before training and says how to give it a validation set.

  Raises:
    ValueError: a split without interactions, naming the dataset and the
      way out.
  """
  counts = np.bincount(np.asarray(ds.split), minlength=len(
      dataset_lib.SPLIT_NAMES))
  where = dataset_dir or ds.manifest.get('name') or 'the dataset'
  if not counts[dataset_lib.VALID]:
    raise ValueError(
        f'{where}: no validation interactions, but eval.select_metric='
        f'{select_metric!r} selects the best epoch on validation (an Elliot '
        'fixed split without val.tsv?). Add a val.tsv, or read the data '
        'with a split that holds some interactions out for validation '
        '(data.split); selecting on test would tune on the test set.')
  if not counts[dataset_lib.TEST]:
    raise ValueError(f'{where}: no test interactions, so the run has '
                     'nothing to report; give the dataset a test split.')


def _evaluate_and_record(trainer: Trainer, writer: writers.MetricWriter,
                         workdir: str, params: Any, epoch: int, step: int,
                         loop: dict[str, Any],
                         extra: dict[str, float] | None = None
                         ) -> tuple[float, bool]:
  """Evaluates `params`, writes the scalars and keeps the best in `loop`.

  The one evaluation path of a trained model's epochs and of a fitted
  model (epoch 0): the evaluators run at every evaluation, and at a new best
  (by `eval.select_metric` on validation) also those run only then, whose
  per-user results are saved to the workdir.

  Args:
    trainer: the run's trainer.
    writer: the metric writer.
    workdir: where the per-user files go.
    params: the model's parameters.
    epoch: the epoch (0 for a fitted model).
    step: the step the scalars are written at.
    loop: the loop state; 'best_metric', 'best_epoch', 'best' and
      'evals_since_best' are updated.
    extra: more scalars for the same line (e.g. the fit time).

  Returns:
    (the selection metric's value, whether it is a new best).
  """
  select = 'val/' + trainer.cfg.eval.select_metric
  t0 = time.perf_counter()
  results = trainer.evaluate(params, epoch)
  scalars = {'epoch': epoch}
  for split, r in results.items():
    scalars.update(_scalars(split, r.summary))
  metric = float(scalars[select])
  is_best = loop['best_metric'] is None or metric > loop['best_metric']
  best_only = trainer.names_every('best')
  if is_best and best_only:
    more = trainer.evaluate(params, epoch, best_only, results)
    for split, r in more.items():
      scalars.update(_scalars(split, r.summary))
    results.update(more)
  scalars.update(extra or {})
  scalars['perf/eval_time_s'] = time.perf_counter() - t0
  writer.write_scalars(step, scalars)
  if is_best:
    prefixes = set(trainer.evaluator_names)
    loop.update(best_metric=metric, best_epoch=epoch, evals_since_best=0,
                best={k: v for k, v in scalars.items()
                      if k.split('/')[0] in prefixes})
    _save_per_user(workdir, results, trainer, trainer.cfg.model.name)
  else:
    loop['evals_since_best'] += 1
  return metric, is_best


def _initial_loop_state() -> dict[str, Any]:
  return {'epoch': 0, 'best_metric': None, 'best_epoch': 0,
          'evals_since_best': 0, 'best': {}, 'done': False}


def _scalars(prefix: str, summary: dict[str, float]) -> dict[str, float]:
  return {f'{prefix}/{k}': v for k, v in summary.items()}


def per_user_file(name: str) -> str:
  """The per-user file of evaluator `name`: per_user_<name>.npz.

  'val' is written as per_user_valid.npz: file names use the dataset's split
  names ('valid', 'test'), which `python -m mmjax.eval.compare` expects.
  """
  return f'per_user_{"valid" if name == "val" else name}.npz'


def _save_per_user(workdir, results, trainer, name):
  for prefix, result in results.items():
    extra = trainer.extra_evaluators.get(prefix)
    if extra is not None and not extra.saves_per_user:
      continue
    split = 'valid' if prefix == 'val' else prefix
    ranking.save_per_user(
        result, os.path.join(workdir, per_user_file(prefix)),
        split_hash=trainer.split_hash, split=split, name=name)


def train_and_evaluate_one(cfg: Any, workdir: str,
                           ds: dataset_lib.Dataset | None = None,
                           dataset_dir: str | None = None,
                           mesh: jax.sharding.Mesh | None = None,
                           on_epoch_end: Callable[[int], None] | None = None
                           ) -> dict[str, Any]:
  """Trains (or fits) one model into `workdir`; resumes when possible.

  Args:
    cfg: a training config (configs/test.py's keys).
    workdir: output directory.
    ds: the dataset; loaded from `cfg.data` when None.
    dataset_dir: its directory (features, manifest hash).
    mesh: the mesh; built from `cfg.mesh.data` when None.
    on_epoch_end: called with the epoch (1-based) after the epoch's log line
      is printed and its metrics are flushed to metrics.jsonl, before its
      checkpoint is saved (progress reporting; tests stop a run there).
      Not called for a fitted model.

  Returns:
    The results (also written to results.json): {'model', 'best_epoch',
    'best': {'val/..': .., 'test/..'}, 'fitted' (a closed-form model),
    'num_epochs' (the budget; None when fitted), 'epochs_run',
    'stopped_early' (patience ended the run before its budget), 'at_budget'
    (still improving at the budget, see `at_budget`)}.
  """
  os.makedirs(workdir, exist_ok=True)
  if ds is None:
    ds, dataset_dir = load_dataset(cfg)
  with open(os.path.join(workdir, runinfo.CONFIG), 'w', encoding='utf-8') as f:
    f.write(cfg.to_json_best_effort(indent=2, sort_keys=True))
  check_splits(ds, dataset_dir, cfg.eval.select_metric)
  trainer = Trainer(cfg, ds, dataset_dir, mesh)
  runinfo.record_data(workdir, dataset_lib.run_record(ds, dataset_dir),
                      trainer.feature_record)
  name = cfg.model.name
  metrics_path = os.path.join(workdir, writers.METRICS)
  select = 'val/' + cfg.eval.select_metric
  if trainer.fit_only:
    writers.truncate_after(metrics_path, -1)
    writer = writers.create_writer(workdir)
    t0 = time.perf_counter()
    params = jax.block_until_ready(trainer.fit())
    fit_time = time.perf_counter() - t0
    loop, step, num_epochs = _initial_loop_state(), 0, None
    # A fitted model is evaluated once, as epoch 0, and is its own best.
    metric, _ = _evaluate_and_record(trainer, writer, workdir, params, 0, 0,
                                     loop, {'perf/fit_time_s': fit_time})
    loop['done'] = True
    # A fitted model has no epochs: one line instead of an epoch log.
    print(f'[{name}] fitted in {fit_time:.2f}s | {select} {metric:.4f}',
          flush=True)
    stopped_early = still_improving = False
  else:
    ckpt = checkpoint.Checkpointer(workdir, cfg.ckpt.keep, select)
    latest = ckpt.latest_step()
    if latest is not None:
      state, loop = ckpt.restore(trainer.abstract_state())
      dropped = writers.truncate_after(metrics_path, latest)
      ckpt.drop_after(latest)
      logging.info('Resumed %s from epoch %d (dropped %d log lines).', name,
                   latest, dropped)
    else:
      writers.truncate_after(metrics_path, -1)
      # A run killed before its first periodic checkpoint may have left
      # best-model checkpoints; a fresh start must not collide with them.
      ckpt.drop_after(0)
      state, loop = trainer.init_state(), _initial_loop_state()
    writer = writers.create_writer(workdir)
    num_epochs = int(cfg.train.num_epochs)
    eval_every = max(int(cfg.train.eval_every_epochs), 1)
    every = max(int(cfg.ckpt.every_epochs), 1)
    patience = int(cfg.train.patience or 0)
    epoch = int(loop['epoch'])
    while not loop['done'] and epoch < num_epochs:
      epoch += 1
      t0 = time.perf_counter()
      state, metrics = trainer.run_epoch(state, epoch)
      dt = time.perf_counter() - t0
      step = epoch * trainer.steps_per_epoch
      writer.write_scalars(step, {
          'epoch': epoch, **metrics,
          # The rate of the epoch's last update (0-based step - 1).
          'train/lr': optim.learning_rate(cfg, trainer.steps_per_epoch,
                                          step - 1),
          'perf/epoch_time_s': dt,
          'perf/samples_per_s': trainer.num_train / dt})
      line = (f'[{name}] epoch {epoch}/{num_epochs} loss '
              f'{metrics["train/loss"]:.4f} {dt:.2f}s '
              f'{trainer.num_train / dt:,.0f} samples/s')
      if epoch % eval_every == 0 or epoch == num_epochs:
        metric, is_best = _evaluate_and_record(
            trainer, writer, workdir, state.params, epoch, step, loop)
        line += f' | {select} {metric:.4f}'
        if is_best:
          ckpt.save_best(epoch, state, {select: metric})
          line += ' (best)'
        elif patience and loop['evals_since_best'] >= patience:
          loop['done'] = True
          # At the last epoch the budget ends the run anyway.
          if epoch < num_epochs:
            line += f' (early stop: {patience} evaluations without gain)'
      print(line, flush=True)
      if on_epoch_end is not None:
        writer.flush()  # The callback may read (or outlive) the log.
        on_epoch_end(epoch)
      if epoch % every == 0 or loop['done'] or epoch == num_epochs:
        loop['epoch'] = epoch
        ckpt.save(epoch, state, loop)
    step = int(loop['epoch']) * trainer.steps_per_epoch
    ckpt.close()
    # `done` is also set when patience runs out at the last epoch, which is
    # not an early stop but still a plateau seen (so not at the budget).
    stopped_early = bool(loop['done']) and int(loop['epoch']) < num_epochs
    still_improving = at_budget(int(loop['evals_since_best']),
                                bool(loop['done']))
  final = {'final': True, 'epoch': int(loop['epoch']),
           'best_epoch': int(loop['best_epoch']),
           'at_budget': still_improving}
  final.update({f'best/{k}': v for k, v in loop['best'].items()})
  writer.write_scalars(step, final)
  writer.close()
  results = {'model': name, 'best_epoch': int(loop['best_epoch']),
             'best': loop['best'], 'fitted': trainer.fit_only,
             'num_epochs': num_epochs, 'epochs_run': int(loop['epoch']),
             'stopped_early': stopped_early, 'at_budget': still_improving}
  with open(os.path.join(workdir, RESULTS), 'w', encoding='utf-8') as f:
    json.dump(results, f, indent=2, sort_keys=True, default=str)
  warning = budget_warning(results)
  if warning:
    print(warning, flush=True)
  return results


def model_config(cfg: Any, name: str) -> ml_collections.ConfigDict:
  """The single-model config of `name` in a multi-model config.

  `cfg.per_model.<name>` replaces the `model` section; every other section
  is shared.
  """
  sub = copy.deepcopy(cfg)
  with sub.unlocked():
    sub.model = copy.deepcopy(cfg.per_model[name])
    sub.models = ()
    sub.per_model = ml_collections.ConfigDict()
  return sub


def format_table(rows: list[dict[str, Any]], metrics: tuple[str, ...]
                 ) -> str:
  """One validation/test table over models.

  The best epoch of a fitted model reads 'fit'; a run still improving at
  its budget is marked '*' there, with a note under the table, so a number
  that more epochs would raise is not read as the model's level.
  """
  head = ['model', 'best_epoch'] + [f'{s}/{m}' for s in ('val', 'test')
                                    for m in metrics]
  lines = ['  '.join(f'{h:>16}' for h in head)]
  marked = False
  for r in rows:
    if r.get('fitted'):
      epoch = 'fit'
    elif r.get('at_budget'):
      epoch, marked = f'{r["best_epoch"]} of {r["num_epochs"]} *', True
    else:
      epoch = str(r['best_epoch'])
    cells = [r['model'], epoch]
    for s in ('val', 'test'):
      for m in metrics:
        v = r['best'].get(f'{s}/{m}')
        cells.append('-' if v is None else f'{float(v):.4f}')
    lines.append('  '.join(f'{c:>16}' for c in cells))
  if marked:
    lines.append(f'* best validation in the last {AT_BUDGET_EVALS} '
                 'evaluations: still improving at the budget, raise '
                 'train.num_epochs')
  return '\n'.join(lines)


def train_and_evaluate(cfg: Any, workdir: str,
                       on_epoch_end: Callable[[int], None] | None = None
                       ) -> list[dict[str, Any]]:
  """Runs the config: one model, or each of `cfg.models` into workdir/<name>.

  Prints one validation/test table at the end. `on_epoch_end` is passed to
  `train_and_evaluate_one` for each model.
  """
  names = tuple(cfg.get('models') or ())
  ds, dataset_dir = load_dataset(cfg)
  check_splits(ds, dataset_dir, cfg.eval.select_metric)
  from mmjax.data import prepare  # pylint: disable=g-import-not-at-top
  if jax.process_index() == 0:
    # One line: prepare prints the full table once, when it builds the data.
    print(prepare.format_summary_line(ds, dataset_dir), flush=True)
  mesh = mesh_lib.make_mesh(cfg.mesh.data)
  rows = []
  if names:
    for name in names:
      rows.append(train_and_evaluate_one(
          model_config(cfg, name), os.path.join(workdir, name), ds,
          dataset_dir, mesh, on_epoch_end))
  else:
    rows.append(train_and_evaluate_one(cfg, workdir, ds, dataset_dir, mesh,
                                       on_epoch_end))
  ks = tuple(cfg.eval.topk)
  metric = cfg.eval.select_metric
  shown = tuple(dict.fromkeys(
      [metric] + [f'ndcg@{k}' for k in ks if f'@{k}' in metric]))
  print(format_table(rows, shown), flush=True)
  return rows
