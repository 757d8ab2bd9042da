r"""Per-model epoch and full-ranking evaluation time, ours against MMRec.

  # one cell: ours, then MMRec, back to back, on a folder from
  # bench/mmrec/export.py; JSON records and a Markdown table in --out_dir
  .venv/bin/python bench/model_speed.py --data_dir /tmp/mmrec_data/synth30k \
      --models LightGCN,VBPR,FREEDOM,BM3,LATTICE --mmrec_dir $MMREC_DIR \
      --out_dir /tmp/speed
  # 5 seeds x 50 epochs on both sides, validation Recall@20 at the end
  # (outcome parity: bench/mmrec/outcome.py --dir /tmp/outcome)
  .venv/bin/python bench/model_speed.py --mode outcome \
      --data_dir /tmp/mmrec_data/outcome --models VBPR --seeds 0,1,2,3,4 \
      --epochs 50 --lr 0.01 --batch_size 1024 --out_dir /tmp/outcome
  # the same as two processes (ours, MMRec) on the same --out_dir: add
  # --skip_mmrec to one and --skip_ours to the other
  # whole runs, start to exit (time to first result): per model ours with a
  # cold then a warm compilation cache, MMRec's first and second run
  .venv/bin/python bench/model_speed.py --mode process \
      --data_dir /tmp/mmrec_data/ml100k --models LightGCN,VBPR \
      --epochs 10 --threads 1 --mmrec_dir $MMREC_DIR --out_dir /tmp/process

Our side reads the exported MMRec folder through our own pipeline (the
`mmrec` reader, split `fixed` from its `x_label`, no k-core, our feature
store), so both tools train on the same users, items, splits and features.
Each model runs with the hyper-parameters of `GRID` (one point of MMRec's
yaml grid, the same on both sides) at MMRec's default batch 2048.

Timing (ours): `Trainer.run_epoch` of the training loop (one compiled
program per epoch: shuffling, negative sampling, forward, backward, Adam,
FREEDOM's pruning), and the validation evaluation of `Trainer.evaluate`
(embeddings, scores of all items for every validation user, training items
masked, top-k metrics). The first epoch and the first evaluation compile
and are left out of the medians. MMRec: `bench/mmrec/run_mmrec.py` (its
`Trainer` pieces; the epoch's median after the first epoch, its validation
pass). Wall and process-CPU seconds, peak RSS of each process (each model
runs in its own process on each side), and the 1-minute load average
before each run are recorded. `--threads` sets torch.set_num_threads,
our kernel's threads and XLA's intra-op threads alike (0: every core).

Floor (speed mode): beside each time, the least time our epoch and our
validation pass could take on this machine, so that the distance left is
visible: max(FLOPs / peak matmul FLOP/s, bytes / copy bandwidth), with the
FLOPs and bytes of our compiled programs (XLA's cost analysis, every scan
at its length, gathers and scatters at their rows, plus the propagation
kernel's custom calls, which XLA cannot see) and both rates measured in our
process after the timings (`FLOOR_LEGEND`, `program_cost`). It bounds
our programs as compiled (every intermediate they write counts), not the
least work the model needs. The record keeps the counts (GFLOP, MB, and
their parts) under 'floor'.

Process mode times what a user waits for: `mmjax.run.run` (what `python -m
mmjax.launch` calls) in a fresh process, validation and test every epoch,
from start to exit, split into start-up and imports, data and set-up, the
first epoch and evaluation (which compile when the cache is cold), the rest
and exit; with the programs compiled and read from the persistent cache
(runinfo.json). MMRec: run_mmrec.py with the same epochs and schedule.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from typing import Any

from absl import app
from absl import flags

from mmjax.utils import cpu  # The standard library only: no JAX here.

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_RUN_MMREC = os.path.join(_REPO, 'bench', 'mmrec', 'run_mmrec.py')

# One grid point per model, identical on both sides: MMRec's yaml keys
# (`hparams`, passed to run_mmrec.py) and ours (`model`, `optim`). Feature
# modalities are named as MMRec names them, so FREEDOM's weights map by name.
GRID = {
    'LightGCN': dict(
        ours='lightgcn', features=False,
        hparams={'n_layers': 2, 'reg_weight': 1e-4},
        model={'num_layers': 2, 'reg_weight': 1e-4}),
    'VBPR': dict(
        ours='vbpr', features=True,
        hparams={'reg_weight': 0.01},
        model={'reg_weight': 0.01, 'convention': 'mmrec'}),
    'FREEDOM': dict(
        ours='freedom', features=True,
        hparams={'dropout': 0.8, 'reg_weight': 0.0, 'knn_k': 10,
                 'n_mm_layers': 1, 'n_ui_layers': 2, 'mm_image_weight': 0.1},
        model={'dropout': 0.8, 'reg_weight': 0.0, 'knn_k': 10,
               'num_mm_layers': 1, 'num_layers': 2,
               'mm_weights': {'image': 0.1, 'text': 0.9},
               'train_features': True, 'convention': 'mmrec'}),
    'BM3': dict(
        ours='bm3', features=True,
        hparams={'n_layers': 1, 'reg_weight': 0.1, 'dropout': 0.3,
                 'cl_weight': 2.0},
        model={'num_layers': 1, 'reg_weight': 0.1, 'dropout': 0.3,
               'cl_weight': 2.0, 'train_features': True}),
    'LATTICE': dict(
        ours='lattice', features=True,
        hparams={'reg_weight': 1e-3, 'knn_k': 10, 'lambda_coeff': 0.9,
                 'n_layers': 1, 'cf_model': 'lightgcn'},
        model={'reg_weight': 1e-3, 'knn_k': 10, 'lambda_coeff': 0.9,
               'num_mm_layers': 1, 'num_layers': 2, 'train_features': True,
               'convention': 'mmrec'},
        # MMRec's LATTICE.yaml: learning_rate_scheduler [0.96, 50].
        optim={'schedule': 'mmrec', 'lr_decay': (0.96, 50.0)}),
    'MGCN': dict(
        ours='mgcn', features=True,
        hparams={'n_ui_layers': 2, 'n_layers': 1, 'knn_k': 10,
                 'lambda_coeff': 0.9, 'reg_weight': 1e-4, 'cl_loss': 0.01},
        # MMRec's MGCN.yaml has lambda_coeff too, which its MGCN never reads.
        model={'num_layers': 2, 'num_mm_layers': 1, 'knn_k': 10,
               'reg_weight': 1e-4, 'cl_weight': 0.01},
        optim={'schedule': 'mmrec', 'lr_decay': (0.96, 50.0)}),
    # MMRec's GRCN.yaml: n_layers 3 (routings), latent_embedding 64; reg
    # 1e-3 is the grid point of the earlier 20-epoch outcome run. Edge
    # dropout is 0 (hard-coded in MMRec); MMRec also regularises its
    # visual ('image') preference table over all users.
    'GRCN': dict(
        ours='grcn', features=True,
        hparams={'reg_weight': 1e-3, 'n_layers': 3, 'latent_embedding': 64},
        model={'reg_weight': 1e-3, 'content_dim': 64, 'num_layers': 2,
               'num_routings': 3, 'routing': 'mmrec', 'weight_mode': 'confid',
               'pruning': True, 'fusion': 'concat', 'dropout': 0.0,
               'full_preference_reg': 'image'}),
    # MMRec's LGMRec.yaml 'baby' point, Gumbel noise and hyperedge dropout
    # on (as MMRec trains; ours fixes one noise draw for evaluation).
    'LGMRec': dict(
        ours='lgmrec', features=True,
        hparams={'cf_model': 'lightgcn', 'n_ui_layers': 2, 'n_mm_layers': 2,
                 'n_hyper_layer': 1, 'hyper_num': 4, 'keep_rate': 0.5,
                 'alpha': 0.3, 'cl_weight': 1e-4, 'reg_weight': 1e-6},
        model={'cf_model': 'lightgcn', 'num_layers': 2, 'num_mm_layers': 2,
               'num_hyper_layers': 1, 'hyper_num': 4, 'keep_rate': 0.5,
               'alpha': 0.3, 'cl_weight': 1e-4, 'reg_weight': 1e-6,
               'tau': 0.2, 'gumbel': True, 'eval_gumbel': True}),
}


def set_threads(threads: int) -> None:
  """Caps XLA's intra-op threads and our kernel's (before JAX starts)."""
  if threads > 0:
    os.environ['XLA_FLAGS'] = (
        os.environ.get('XLA_FLAGS', '') +
        f' --xla_cpu_multi_thread_eigen={"true" if threads > 1 else "false"}'
        f' intra_op_parallelism_threads={threads}').strip()
    os.environ['MMJAX_KERNEL_THREADS'] = str(threads)


def export_stats(data_dir: str) -> dict[str, int]:
  """The counts the export recorded for the folder (train/valid/test...).

  bench/mmrec/export.py records them as 'stats', `python -m
  mmjax.data.export` (a prepared dataset, e.g. ML-100K) as 'counts'.
  """
  path = os.path.join(data_dir, 'export.json')
  if not os.path.exists(path):
    return {}
  with open(path, encoding='utf-8') as f:
    record = json.load(f)
  return record.get('stats') or record.get('counts') or {}


def exported_data_section(data_dir: str, root: str):
  """A training config's `data` section reading an exported MMRec folder.

  The `mmrec` reader, split `fixed` from `x_label`, no k-core, prepared
  under `root` (where a whole run, `mmjax.run.run`, finds it as any
  user's run would).
  """
  from mmjax.data import datasets  # pylint: disable=g-import-not-at-top
  name = os.path.basename(os.path.abspath(data_dir).rstrip('/'))
  section = datasets.training_section(f'mmrec_{name}')
  section.format = 'mmrec'
  section.path = os.path.abspath(data_dir)
  section.reader_name = name
  section.split = 'fixed'
  section.min_user = section.min_item = 0
  section.root = os.path.abspath(root)
  return section


def prepare_exported(data_dir: str, out_dir: str) -> str:
  """Our dataset directory for an exported MMRec folder (always rebuilt).

  Raises:
    DataError: our preparation does not keep exactly the exported
      interactions of each split (the comparison would be on other data).
  """
  # pylint: disable=g-import-not-at-top
  from mmjax.data import datasets
  from mmjax.data import prepare
  # pylint: enable=g-import-not-at-top
  name = os.path.basename(os.path.abspath(data_dir).rstrip('/'))
  cfg = datasets.resolve_training_data(
      exported_data_section(data_dir, out_dir))
  ds_dir = prepare.prepare(cfg, os.path.join(out_dir, f'dataset_{name}'),
                           quiet=True)
  check_export_counts(ds_dir, data_dir)
  return ds_dir


def check_export_counts(ds_dir: str, data_dir: str) -> None:
  """Raises DataError where our dataset and the export's counts differ."""
  # pylint: disable=g-import-not-at-top
  import numpy as np

  from mmjax.data import dataset as dataset_lib
  # pylint: enable=g-import-not-at-top
  ds = dataset_lib.load(ds_dir)
  counts = np.bincount(ds.split, minlength=3)
  got = {'users': ds.num_users, 'items': ds.num_items,
         'train': int(counts[0]), 'valid': int(counts[1]),
         'test': int(counts[2])}
  want = export_stats(data_dir)
  diff = {k: (got[k], want[k]) for k in got if k in want and got[k] != want[k]}
  if diff:
    raise dataset_lib.DataError(
        f'{data_dir}: our preparation of the MMRec folder differs from '
        f'export.json (ours, exported): {diff}.')


def our_config(model: str, lr: float, batch_size: int, seed: int = 0,
               data=None):
  """Our training config for `GRID[model]` (one device).

  `data` (`exported_data_section`) is needed only by a whole run; the
  timing modes build the trainer on a dataset directory directly.
  """
  # pylint: disable=g-import-not-at-top
  import ml_collections

  from mmjax.models import options
  from mmjax.train import defaults
  # pylint: enable=g-import-not-at-top
  spec = GRID[model]
  c = defaults.base_config()
  c.seed = seed
  c.model = options.section(spec['ours'], embed_dim=64, **spec['model'])
  if spec['features']:
    c.features.sources = ml_collections.ConfigDict(
        {'image': 'image', 'text': 'text'})
  c.optim.lr = lr
  for key, value in spec.get('optim', {}).items():
    c.optim[key] = value
  c.train.batch_size = batch_size
  c.mesh.data = 1
  if data is not None:
    c.data = data
  return c


def _median(xs):
  import numpy as np  # pylint: disable=g-import-not-at-top
  return float(np.median(xs)) if len(xs) else None


def _peak_rss_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# The physical floor (issue 15): the least time a program could take on this
# machine, max(FLOPs / peak matmul rate, bytes / copy bandwidth), with both
# rates measured in the same process and threads as the timings. XLA's cost
# analysis gives the FLOPs and bytes accessed of a compiled program, but it
# counts a while loop's body once (a scan over the epoch's steps would count
# one step) and cannot see custom calls (our propagation kernel), so
# `program_cost` adds both from the program's jaxpr.

# Per FFI target of mmjax/graph/kernel/ops.py: (FLOPs, bytes) from the graph's
# N nodes, E edges and the embedding width D. One propagation is E*D
# multiply-adds and moves the CSR arrays once (indptr 4N, cols 4E, values
# 4E), x read once and y written once (8ND): bench/propagate.py's floor.
# The fused backward (A^T g and the edge gradient dw) is two such sweeps'
# multiply-adds over one read of the pattern, g and x, writing dx and dw.
_KERNEL_COSTS = {
    'mmjax_spmm': lambda n, e, d: (2 * e * d, 4 * n + 8 * e + 8 * n * d),
    'mmjax_spmm_t_dw': lambda n, e, d: (4 * e * d,
                                        4 * n + 12 * e + 12 * n * d),
    'mmjax_edge_dot': lambda n, e, d: (2 * e * d, 4 * n + 8 * e + 8 * n * d),
}
# The operand positions of (indptr, cols, x) in each target's call.
_KERNEL_OPERANDS = {'mmjax_spmm': (0, 1, 4), 'mmjax_spmm_t_dw': (0, 1, 5),
                    'mmjax_edge_dot': (0, 1, 3)}
_COST_KEYS = ('flops', 'bytes', 'transcendentals')


def xla_cost(compiled) -> dict[str, float]:
  """FLOPs, bytes accessed and transcendentals XLA counts in a program.

  JAX 0.10 returns one dict ('flops', 'bytes accessed', 'transcendentals'
  when there are any, and per-operand entries); older versions a list of
  one dict per module.
  """
  ca = compiled.cost_analysis() or {}
  if isinstance(ca, (list, tuple)):
    ca = ca[0] if ca else {}
  return {'flops': max(float(ca.get('flops', 0.0)), 0.0),
          'bytes': max(float(ca.get('bytes accessed', 0.0)), 0.0),
          'transcendentals': max(float(ca.get('transcendentals', 0.0)), 0.0)}


def _kernel_cost(eqn) -> tuple[float, float] | None:
  """(FLOPs, bytes) of one call of our propagation kernel, else None."""
  target = eqn.params.get('target_name')
  if target not in _KERNEL_COSTS:
    return None
  i_ptr, i_cols, i_x = _KERNEL_OPERANDS[target]
  shapes = [v.aval.shape for v in eqn.invars]
  n, e = shapes[i_ptr][0] - 1, shapes[i_cols][0]
  d = shapes[i_x][1] if len(shapes[i_x]) > 1 else 1
  return _KERNEL_COSTS[target](n, e, d)


def _nbytes(var) -> int:
  aval = var.aval
  return int(math.prod(aval.shape)) * getattr(aval.dtype, 'itemsize', 4)


def _table_bytes(eqn) -> int:
  """Bytes XLA counts beyond the rows that an indexed op touches.

  XLA's CPU cost analysis counts a gather as reading its whole operand (a
  2048-row lookup in a 256 MB table counts 256 MB, fused or not), and a
  scatter or dynamic-update-slice as reading and writing its whole operand,
  though the rows gathered, or updated in place, are all that must move.
  """
  name = eqn.primitive.name
  if name == 'gather':
    return max(_nbytes(eqn.invars[0]) - _nbytes(eqn.outvars[0]), 0)
  if name.startswith('scatter'):
    return 2 * max(_nbytes(eqn.invars[0]) - _nbytes(eqn.invars[2]), 0)
  if name == 'dynamic_update_slice':
    return 2 * max(_nbytes(eqn.invars[0]) - _nbytes(eqn.invars[1]), 0)
  return 0


def _new_tally() -> dict[str, float]:
  return {'loop_flops': 0.0, 'loop_bytes': 0.0, 'loop_transcendentals': 0.0,
          'table_bytes': 0.0, 'kernel_flops': 0.0, 'kernel_bytes': 0.0,
          'kernel_calls': 0, 'other_custom_calls': 0, 'uncounted_loops': 0}


def _walk(jaxpr, times: int, tally: dict[str, float], body_cost) -> None:
  """Adds to `tally` what XLA's count of `jaxpr` (run `times` times) misses.

  A scan of length L whose body XLA holds u times (u = the unroll factor,
  usually 1) runs L bodies, XLA counts u: (L - u) bodies' XLA cost are
  added (`body_cost`, the body compiled alone). Kernel calls are counted
  with the product of the enclosing scans' lengths. A while loop of unknown
  trip count is counted once, as XLA does, and reported in
  'uncounted_loops'; of a cond's branches, the one with the most work.
  'table_bytes' is what XLA counts of whole tables for indexed ops
  (`_table_bytes`), to be taken off its bytes.
  """
  from jax.extend import core as jex_core  # pylint: disable=g-import-not-at-top
  for eqn in jaxpr.eqns:
    name = eqn.primitive.name
    tally['table_bytes'] += times * _table_bytes(eqn)
    if name == 'ffi_call':
      cost = _kernel_cost(eqn)
      if cost is None:
        tally['other_custom_calls'] += times
      else:
        tally['kernel_flops'] += times * cost[0]
        tally['kernel_bytes'] += times * cost[1]
        tally['kernel_calls'] += times
    elif name == 'scan':
      closed, length = eqn.params['jaxpr'], int(eqn.params['length'])
      unroll = eqn.params.get('unroll', 1)
      copies = (length if unroll is True or int(unroll) >= length
                else max(int(unroll), 1))
      if length > copies:
        cost = body_cost(closed)
        if cost is None:
          tally['uncounted_loops'] += times
        else:
          for key in _COST_KEYS:
            tally[f'loop_{key}'] += times * (length - copies) * cost[key]
      _walk(closed.jaxpr, times * length, tally, body_cost)
    elif name == 'cond':
      branches = []
      for branch in eqn.params['branches']:
        branches.append(_new_tally())
        _walk(branch.jaxpr, times, branches[-1], body_cost)
      if branches:
        most = max(branches, key=lambda t: t['kernel_flops'] + t['loop_flops'])
        for key, value in most.items():
          tally[key] += value
    else:
      if name == 'while':
        tally['uncounted_loops'] += times
      for sub in jex_core.jaxprs_in_params(eqn.params):
        _walk(sub, times, tally, body_cost)


def program_cost(jitted, *args) -> dict[str, float]:
  """What one call of `jitted(*args)` computes and moves, at the least.

  'flops' and 'bytes' are XLA's cost analysis of the compiled program, with
  every scan counted at its length ('loop_*': what XLA's count of a loop
  body once missed), less the whole tables XLA counts for gathers and
  scatters beyond the rows they touch ('table_bytes', from the jaxpr: an
  indexed op XLA removed or rewrote is taken off too, which errs low, as
  a floor may), plus our propagation kernel's calls ('kernel_*', see
  `_KERNEL_COSTS`). Other custom calls (XLA's TopK on CPU) stay
  uncounted ('other_custom_calls').
  Trace under the mesh the program runs under (the kernel reads it).
  """
  # pylint: disable=g-import-not-at-top
  import jax
  from jax.extend import core as jex_core
  # pylint: enable=g-import-not-at-top
  traced = jitted.trace(*args)
  xla = xla_cost(traced.lower().compile())
  bodies = {}

  def body_cost(closed):
    if id(closed) not in bodies:
      avals = [jax.ShapeDtypeStruct(a.shape, a.dtype)
               for a in closed.in_avals]
      try:
        fn = jax.jit(jex_core.jaxpr_as_fun(closed))
        bodies[id(closed)] = xla_cost(fn.lower(*avals).compile())
      except Exception:  # pylint: disable=broad-except
        bodies[id(closed)] = None  # Counted once, as XLA counts it.
    return bodies[id(closed)]

  tally = _new_tally()
  _walk(traced.jaxpr.jaxpr, 1, tally, body_cost)
  out = {f'xla_{key}': value for key, value in xla.items()}
  out.update(tally)
  out['flops'] = xla['flops'] + tally['loop_flops'] + tally['kernel_flops']
  out['bytes'] = max(xla['bytes'] + tally['loop_bytes'] - tally['table_bytes'],
                     0.0) + tally['kernel_bytes']
  return out


def add_costs(costs: list[dict[str, float]]) -> dict[str, float]:
  """The sum of `program_cost` records, key by key."""
  out = {}
  for cost in costs:
    for key, value in cost.items():
      out[key] = out.get(key, 0) + value
  return out


def machine_rates(repeats: int = 5) -> dict[str, float]:
  """This process's peak matmul FLOP/s and copy bandwidth (bytes/s).

  The matmul is XLA's float32 [2048, 2048] @ [2048, 2048] under the
  process's thread settings (`set_threads`), the median of `repeats` runs
  after a compiling one; the bandwidth is `cpu.copy_bandwidth` (as in
  bench/propagate.py), the best of five 256 MB numpy copies.
  """
  # pylint: disable=g-import-not-at-top
  import jax
  import jax.numpy as jnp
  # pylint: enable=g-import-not-at-top
  n = 2048
  a, b = jax.random.normal(jax.random.key(0), (2, n, n), jnp.float32)
  matmul = jax.jit(jnp.matmul)
  matmul(a, b).block_until_ready()
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    matmul(a, b).block_until_ready()
    times.append(time.perf_counter() - t0)
  return {'matmul_flops_per_s': 2 * n**3 / _median(times),
          'copy_bytes_per_s': cpu.copy_bandwidth()}


def floor_of(cost: dict[str, float], rates: dict[str, float]
             ) -> dict[str, Any]:
  """The floor of one program's cost: max(FLOPs / peak, bytes / bandwidth).

  'bound' names the larger term ('flop' or 'memory').
  """
  compute = cost['flops'] / rates['matmul_flops_per_s']
  memory = cost['bytes'] / rates['copy_bytes_per_s']
  return dict(cost, flops_g=cost['flops'] / 1e9, bytes_mb=cost['bytes'] / 1e6,
              floor_s=max(compute, memory), compute_s=compute,
              memory_s=memory,
              bound='flop' if compute >= memory else 'memory')


def _is_jitted(fn) -> bool:
  return callable(fn) and hasattr(fn, 'trace') and hasattr(fn, 'lower')


def eval_cost(trainer, params, key) -> dict[str, float]:
  """`program_cost` of one validation pass as `time_ours` times it.

  The model's embeddings (`Trainer.eval_params`: `embed`, jitted as the
  trainer jits it; nothing for a model with its own `score`), then every
  call the evaluator makes to its jitted functions (the item order, one
  block program per user block, the exact path where ties need it),
  counted on one pass run with counting wrappers around them and costed
  once per distinct argument shape.
  """
  import jax  # pylint: disable=g-import-not-at-top
  evaluator = trainer.evaluators['val']
  costs = []
  if not hasattr(trainer.model, 'score'):
    embed = jax.jit(lambda p, c: trainer.model.embed(p, c, trainer.cfg.model))
    costs.append(program_cost(embed, params, trainer.ctx))
  eval_params = trainer.eval_params(params)
  originals = {name: fn for name, fn in vars(evaluator).items()
               if _is_jitted(fn)}
  calls = {}

  def counting(name, fn):
    def call(*args):
      leaves, tree = jax.tree.flatten(args)
      sig = (name, str(tree), tuple(
          (getattr(x, 'shape', ()), str(getattr(x, 'dtype', type(x))))
          for x in leaves))
      calls.setdefault(sig, [0, fn, args])[0] += 1
      return fn(*args)
    return call

  try:
    for name, fn in originals.items():
      setattr(evaluator, name, counting(name, fn))
    evaluator(eval_params, trainer.ctx, key)
  finally:
    for name, fn in originals.items():
      setattr(evaluator, name, fn)
  for count, fn, args in calls.values():
    cost = program_cost(fn, *args)
    costs.append({k: count * v for k, v in cost.items()})
  out = add_costs(costs)
  out['programs'] = {sig[0]: count for sig, (count, _, _) in calls.items()}
  return out


def floor_ours(trainer, state, key) -> dict[str, Any]:
  """The floors of one epoch and one validation pass (`floor_of`).

  Measures the machine's rates, then costs the compiled epoch program
  (`Trainer.epoch_fn` on the trained state) and one validation pass
  (`eval_cost`), under the trainer's mesh as `run_epoch` traces them.
  """
  # pylint: disable=g-import-not-at-top
  import jax
  import numpy as np
  # pylint: enable=g-import-not-at-top
  rates = machine_rates()
  epoch = jax.device_put(np.int32(1), trainer.repl)
  with jax.set_mesh(trainer.mesh):
    epoch_cost = program_cost(trainer.epoch_fn, state, trainer.ctx,
                              trainer.td, epoch, trainer.data_key,
                              trainer.train_key)
    evaluation = eval_cost(trainer, state.params, key)
  programs = evaluation.pop('programs')
  return {'rates': rates, 'epoch': floor_of(epoch_cost, rates),
          'eval': dict(floor_of(evaluation, rates), programs=programs)}


def time_ours(ds_dir: str, model: str, epochs: int, evals: int, lr: float,
              batch_size: int, seed: int = 0) -> dict[str, Any]:
  """Builds our trainer, times `epochs` epochs and `evals` validations."""
  # pylint: disable=g-import-not-at-top
  import jax

  from mmjax.data import dataset as dataset_lib
  from mmjax.graph import kernel
  from mmjax.parallel import mesh as mesh_lib
  from mmjax.train import loop
  from mmjax.utils import seeds
  # pylint: enable=g-import-not-at-top
  cfg = our_config(model, lr, batch_size, seed)
  ds = dataset_lib.load(ds_dir)
  t0 = time.perf_counter()
  trainer = loop.Trainer(cfg, ds, ds_dir, mesh_lib.make_mesh(1))
  state = trainer.init_state()
  jax.block_until_ready(state)
  setup_s = time.perf_counter() - t0
  per_epoch = []
  for epoch in range(1, epochs + 1):
    t0, c0 = time.perf_counter(), time.process_time()
    state, metrics = trainer.run_epoch(state, epoch)  # host floats: synced
    per_epoch.append({'epoch': epoch, 'train_s': time.perf_counter() - t0,
                      'train_cpu_s': time.process_time() - c0,
                      'loss': metrics['train/loss']})
  evaluator = trainer.evaluators['val']
  key = seeds.stream(cfg.seed, seeds.STREAM_EVAL)
  per_eval = []
  for k in range(evals):
    t0, c0 = time.perf_counter(), time.process_time()
    with jax.set_mesh(trainer.mesh):
      # pylint: disable-next=protected-access
      result = evaluator(trainer.eval_params(state.params), trainer.ctx,
                         jax.random.fold_in(key, k))
    per_eval.append({'eval_s': time.perf_counter() - t0,
                     'eval_cpu_s': time.process_time() - c0,
                     'recall@20': float(result.summary['recall@20'])})
  t0 = time.perf_counter()
  try:
    floor = floor_ours(trainer, state, jax.random.fold_in(key, 0))
  except Exception as e:  # pylint: disable=broad-except
    # The timings stand without it; the record says why it is missing.
    floor = {'error': f'{type(e).__name__}: {e}'}
    print(f'floor of {model} not counted: {floor["error"]}', file=sys.stderr)
  floor['cost_s'] = time.perf_counter() - t0
  timed, timed_eval = per_epoch[1:], per_eval[1:]
  return {
      'tool': 'mmjax', 'model': model, 'ours': cfg.model.name,
      'dataset_dir': ds_dir, 'users': ds.num_users, 'items': ds.num_items,
      'train_interactions': trainer.num_train,
      'valid_users': int(len(evaluator.data.users)),
      'batch_size': batch_size, 'lr': lr, 'seed': seed,
      'steps_per_epoch': trainer.steps_per_epoch,
      'model_config': cfg.model.to_dict(), 'optim': cfg.optim.to_dict(),
      'setup_s': setup_s,
      'first_epoch_s': per_epoch[0]['train_s'],
      'first_eval_s': per_eval[0]['eval_s'],
      'train_s_median': _median([r['train_s'] for r in timed]),
      'train_cpu_s_median': _median([r['train_cpu_s'] for r in timed]),
      'eval_s_median': _median([r['eval_s'] for r in timed_eval]),
      'eval_cpu_s_median': _median([r['eval_cpu_s'] for r in timed_eval]),
      'per_epoch': per_epoch, 'per_eval': per_eval,
      'peak_rss_mb': _peak_rss_mb(), 'floor': floor,
      'kernel': kernel.status(),
      'versions': {'python': platform.python_version(),
                   'jax': jax.__version__},
      'devices': str(jax.devices()),
  }


def outcome_ours(ds_dir: str, model: str, epochs: int, lr: float,
                 batch_size: int, seed: int) -> dict[str, Any]:
  """Trains `epochs` epochs, then validation (and test) Recall@20 / NDCG@20.

  The record has run_mmrec.py's 'final' layout, so outcome.py reads both.
  """
  # pylint: disable=g-import-not-at-top
  from mmjax.data import dataset as dataset_lib
  from mmjax.parallel import mesh as mesh_lib
  from mmjax.train import loop
  # pylint: enable=g-import-not-at-top
  cfg = our_config(model, lr, batch_size, seed)
  ds = dataset_lib.load(ds_dir)
  trainer = loop.Trainer(cfg, ds, ds_dir, mesh_lib.make_mesh(1))
  state = trainer.init_state()
  losses = []
  t0 = time.perf_counter()
  for epoch in range(1, epochs + 1):
    state, metrics = trainer.run_epoch(state, epoch)
    losses.append(metrics['train/loss'])
  train_s = time.perf_counter() - t0
  results = trainer.evaluate(state.params, epochs)
  keys = ('recall@20', 'ndcg@20', 'recall@10', 'ndcg@10')
  final = {split: {k: float(results[name].summary[k]) for k in keys
                   if k in results[name].summary}
           for name, split in (('val', 'valid'), ('test', 'test'))}
  return {'tool': 'mmjax', 'model': model, 'ours': cfg.model.name,
          'seed': seed, 'epochs': epochs, 'lr': lr,
          'batch_size': batch_size, 'model_config': cfg.model.to_dict(),
          'optim': cfg.optim.to_dict(), 'dataset_dir': ds_dir,
          'split_hash': trainer.split_hash, 'loss': losses,
          'train_s': train_s, 'final': final}


# Profile categories, by the jax primitive in an HLO op's metadata op_name
# (first match wins).
_CATEGORIES = (
    ('propagation (CSR kernel)', ('ffi_call',)),
    ('propagation (scatter/segment_sum)', ('scatter', 'segment_sum')),
    ('shuffle and sampling', ('_shuffle', '_bernoulli', '_uniform',
                              'randint', 'sampler', 'threefry')),
    ('dense matmul', ('dot_general',)),
    ('gather', ('gather', 'dynamic_slice')),
    ('reductions', ('reduce_', 'argmax', 'top_k', 'sort')),
)


def _op_metadata(hlo_text: str) -> dict[str, tuple[str, str]]:
  """HLO instruction name -> (metadata op_name, 'source_file:line')."""
  import re  # pylint: disable=g-import-not-at-top
  out = {}
  for line in hlo_text.splitlines():
    m = re.match(r'\s*(?:ROOT )?%?([\w.\-]+) = .*?metadata=\{([^}]*)\}',
                 line)
    if m:
      op = re.search(r'op_name="([^"]*)"', m.group(2))
      file = re.search(r'source_file="([^"]*)"', m.group(2))
      num = re.search(r'source_line=(\d+)', m.group(2))
      where = (f'{os.path.basename(file.group(1))}:{num.group(1)}'
               if file and num else '')
      out[m.group(1)] = (op.group(1) if op else '', where)
  return out


def category(op_name: str) -> str:
  """The profile category of an HLO op (see _CATEGORIES)."""
  sampling = dict(_CATEGORIES)['shuffle and sampling']
  if any(k in op_name for k in sampling):
    return 'shuffle and sampling'
  if ('while/body' in op_name and 'jvp' not in op_name
      and 'transpose' not in op_name):
    # Inside the step but outside value_and_grad: the optimiser update,
    # the batch's assembly and the step's metrics.
    return 'optimiser (Adam) and step bookkeeping'
  for name, keys in _CATEGORIES:
    if any(k in op_name for k in keys):
      return name
  return 'elementwise and other fusions'


_EVAL_CATEGORIES = (
    ('scores (embeddings x items matmul)', ('dot_general',)),
    ('top-k', ('top_k',)),
    ('masking and relevance (scatter)', ('scatter',)),
    ('tie-break gather and take', ('gather', 'take_along_axis')),
    ('sorts (ideal gains)', ('sort',)),
)


def _trace_ops(trace_dir: str, meta: dict[str, tuple[str, str]],
               categorize) -> tuple[dict[str, float], list[list[Any]]]:
  """Seconds per category and the top ops of the newest trace in a folder."""
  # pylint: disable=g-import-not-at-top
  import collections
  import glob
  import gzip
  # pylint: enable=g-import-not-at-top
  path = sorted(glob.glob(os.path.join(trace_dir, '**', '*.trace.json.gz'),
                          recursive=True), key=os.path.getmtime)[-1]
  with gzip.open(path, 'rt', encoding='utf-8') as f:
    events = json.load(f)
  events = events['traceEvents'] if isinstance(events, dict) else events
  by_cat, by_op = collections.Counter(), collections.Counter()
  for e in events:
    if e.get('ph') != 'X' or e.get('name') not in meta:
      continue
    # Leaf thunks only: a loop's or call's time is its body's ops.
    if e['name'].startswith(('while', 'call', 'conditional')):
      continue
    op_name, where = meta[e['name']]
    sec = e.get('dur', 0) / 1e6
    by_cat[categorize(op_name)] += sec
    by_op[(e['name'], op_name.rsplit('/', 1)[-1], where)] += sec
  return dict(by_cat.most_common()), [
      [n, op, where, t] for (n, op, where), t in by_op.most_common(15)]


def _eval_category(op_name: str) -> str:
  for name, keys in _EVAL_CATEGORIES:
    if any(k in op_name for k in keys):
      return name
  return 'metrics, elementwise and other fusions'


def profile_ours(ds_dir: str, model: str, lr: float, batch_size: int,
                 trace_dir: str) -> dict[str, Any]:
  """Where one epoch's and one evaluation's time goes (jax profiler).

  The epoch program is compiled once, run twice, then traced once; each HLO
  op's time is attributed by the primitive in its metadata (`category`).
  The validation evaluation is run once, then traced once
  (`_eval_category`; its per-block programs are the evaluator's own).
  'host, dispatch and waits' is the wall time minus the time inside the
  compiled programs.
  """
  # pylint: disable=g-import-not-at-top
  import jax

  from mmjax.data import dataset as dataset_lib
  from mmjax.parallel import mesh as mesh_lib
  from mmjax.train import loop
  from mmjax.utils import seeds
  # pylint: enable=g-import-not-at-top
  cfg = our_config(model, lr, batch_size)
  ds = dataset_lib.load(ds_dir)
  trainer = loop.Trainer(cfg, ds, ds_dir, mesh_lib.make_mesh(1))
  state = trainer.init_state()
  # pylint: disable-next=protected-access
  keys = (trainer.data_key, trainer.train_key)
  args = lambda e: (trainer.ctx, trainer.td, jax.numpy.int32(e),  # noqa: E731
                    *keys)
  compiled = trainer.epoch_fn.lower(state, *args(1)).compile()
  meta = _op_metadata(compiled.as_text())
  for epoch in (1, 2):
    state, _ = compiled(state, *args(epoch))
  jax.block_until_ready(state)
  epoch_dir = os.path.join(trace_dir, 'epoch')
  jax.profiler.start_trace(epoch_dir, create_perfetto_trace=True)
  t0 = time.perf_counter()
  state, metrics = compiled(state, *args(3))
  jax.block_until_ready((state, metrics))
  wall = time.perf_counter() - t0
  jax.profiler.stop_trace()
  cats, top = _trace_ops(epoch_dir, meta, category)
  cats['host, dispatch and waits'] = max(wall - sum(cats.values()), 0.0)
  out = {'model': model, 'epoch_wall_s': wall,
         'steps': trainer.steps_per_epoch, 'categories': cats,
         'top_ops': top}

  evaluator = trainer.evaluators['val']
  block_fn, eval_meta = evaluator.block_fn, {}

  def block_with_metadata(*block_args):
    if not eval_meta:
      eval_meta.update(_op_metadata(
          block_fn.lower(*block_args).compile().as_text()))
    return block_fn(*block_args)

  evaluator.block_fn = block_with_metadata
  key = seeds.stream(0, seeds.STREAM_EVAL)

  def evaluate():
    with jax.set_mesh(trainer.mesh):
      # pylint: disable-next=protected-access
      return evaluator(trainer.eval_params(state.params), trainer.ctx, key)

  evaluate()
  eval_dir = os.path.join(trace_dir, 'eval')
  jax.profiler.start_trace(eval_dir, create_perfetto_trace=True)
  t0 = time.perf_counter()
  evaluate()
  eval_wall = time.perf_counter() - t0
  jax.profiler.stop_trace()
  cats, top = _trace_ops(eval_dir, eval_meta, _eval_category)
  cats['embed, host side and waits'] = max(eval_wall - sum(cats.values()),
                                           0.0)
  out.update(eval_wall_s=eval_wall, eval_users=int(len(evaluator.data.users)),
             eval_categories=cats, eval_top_ops=top)
  return out


def _subprocess_json(cmd: list[str], env: dict[str, str] | None = None
                     ) -> dict[str, Any]:
  """Runs a command whose last stdout line starting with RESULT is JSON."""
  proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                        env=env)
  lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('RESULT ')]
  if proc.returncode or not lines:
    raise RuntimeError(f'{" ".join(cmd)} failed (exit {proc.returncode}):\n'
                       f'{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}')
  return json.loads(lines[-1][len('RESULT '):])


def run_mmrec(mmrec_dir: str, data_dir: str, model: str, epochs: int,
              lr: float, batch_size: int, threads: int, out: str,
              seed: int = 0, eval_every: int = 1) -> dict[str, Any]:
  """MMRec's run of `GRID[model]` through run_mmrec.py; its JSON record."""
  cmd = [sys.executable, _RUN_MMREC, '--mmrec_dir', mmrec_dir, '--data_dir',
         data_dir, '--model', model, '--epochs', str(epochs), '--seed',
         str(seed), '--threads', str(threads or os.cpu_count()),
         '--eval_every', str(eval_every),
         '--out', out, '--hparams', f'learning_rate={lr}',
         '--hparams', f'train_batch_size={batch_size}']
  for key, value in GRID[model]['hparams'].items():
    cmd += ['--hparams', f'{key}={value}']
  proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
  if proc.returncode or not os.path.exists(out):
    raise RuntimeError(f'MMRec {model} failed (exit {proc.returncode}):\n'
                       f'{proc.stderr[-4000:]}')
  with open(out, encoding='utf-8') as f:
    return json.load(f)


# Whole-process time (--mode process): what a user waits for, from the
# command to its exit, on our side with a cold and then a warm persistent
# compilation cache, and MMRec's first and second run (its item-graph
# caches, `*.pt` in the data folder, written by the first).


def whole_run_child(data_dir: str, root: str, workdir: str, model: str,
                    epochs: int, lr: float, batch_size: int, seed: int
                    ) -> dict[str, float]:
  """In the child process: one whole run of `GRID[model]` (`mmjax.run.run`).

  `epochs` epochs with validation and test after every one (MMRec's
  schedule), no early stop, checkpoints as the defaults write them.
  The training stack is imported first so that the parent can tell
  start-up and imports from the run; returns those wall-clock marks.
  """
  # The training stack, imported here only to time it apart from the run.
  # pylint: disable=g-import-not-at-top,unused-import
  import jax  # noqa: F401

  from mmjax import run as run_lib
  from mmjax.train import loop  # noqa: F401
  # pylint: enable=g-import-not-at-top,unused-import
  imported = time.time()
  cfg = our_config(model, lr, batch_size, seed,
                   data=exported_data_section(data_dir, root))
  cfg.train.num_epochs = epochs
  cfg.train.eval_every_epochs = 1
  cfg.train.patience = 0  # Never stop early: both sides train `epochs`.
  run_lib.run(cfg, workdir)
  return {'imported': imported, 'done': time.time()}


def _read_jsonl(path: str) -> list[dict[str, Any]]:
  with open(path, encoding='utf-8') as f:
    return [json.loads(line) for line in f if line.strip()]


def time_whole_run(data_dir: str, root: str, workdir: str, model: str,
                   cache_dir: str, threads: int, epochs: int, lr: float,
                   batch_size: int, seed: int = 0) -> dict[str, Any]:
  """Wall time of our whole run in a fresh process, and where it went.

  The child reads its persistent compilation cache from `cache_dir`
  (MMJAX_COMPILE_CACHE; JAX's own variables are cleared so that they do not
  override it). The phases: start-up and imports (Python, JAX, flax, ours),
  the epochs and evaluations as metrics.jsonl times them (the first of each
  compiles its programs when the cache is cold), data and set-up (the rest
  of the run: dataset and features loaded, model context and graphs, state
  initialised, checkpoints, runinfo) and exit.
  """
  if os.path.exists(workdir):
    shutil.rmtree(workdir)
  env = dict(os.environ, PYTHONPATH=_REPO, MMJAX_COMPILE_CACHE=cache_dir)
  for name in ('JAX_COMPILATION_CACHE_DIR',
               'JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS'):
    env.pop(name, None)
  cmd = [sys.executable, os.path.abspath(__file__), '--child=process',
         f'--data_dir={data_dir}', f'--out_dir={root}', f'--workdir={workdir}',
         f'--models={model}', f'--seed={seed}', f'--epochs={epochs}',
         f'--lr={lr}', f'--batch_size={batch_size}', f'--threads={threads}']
  load = os.getloadavg()[0]
  start = time.time()
  marks = _subprocess_json(cmd, env)
  end = time.time()
  with open(os.path.join(workdir, 'runinfo.json'), encoding='utf-8') as f:
    cache = json.load(f)['compilation_cache']
  lines = _read_jsonl(os.path.join(workdir, 'metrics.jsonl'))
  epoch_s = [r['perf/epoch_time_s'] for r in lines
             if 'perf/epoch_time_s' in r]
  eval_s = [r['perf/eval_time_s'] for r in lines if 'perf/eval_time_s' in r]
  run_s = marks['done'] - marks['imported']
  final = [r for r in lines if r.get('final')][-1]
  return {
      'wall_s': end - start, 'load': load, 'compilation_cache': cache,
      'startup_imports_s': marks['imported'] - start,
      'data_setup_s': run_s - sum(epoch_s) - sum(eval_s),
      'epoch_s': epoch_s, 'eval_s': eval_s,
      'exit_s': end - marks['done'],
      'epochs': len(epoch_s), 'evaluations': len(eval_s),
      'best_valid_recall@20': final.get('best/val/recall@20'),
      'workdir': workdir,
  }


def time_mmrec_run(mmrec_dir: str, data_dir: str, model: str, epochs: int,
                   lr: float, batch_size: int, threads: int, out: str,
                   first: bool, seed: int = 0) -> dict[str, Any]:
  """Wall time of MMRec's whole run (run_mmrec.py, a fresh process).

  Validation and test after every epoch, as ours. `first` removes MMRec's
  item-graph caches from the data folder beforehand (its first run builds
  them); the second run of a model reads what the first wrote.
  """
  if first:
    for file in os.listdir(data_dir):
      if file.endswith('.pt'):
        os.remove(os.path.join(data_dir, file))
  load = os.getloadavg()[0]
  start = time.time()
  rec = run_mmrec(mmrec_dir, data_dir, model, epochs, lr, batch_size,
                  threads, out, seed, eval_every=1)
  wall = time.time() - start
  rows = rec['per_epoch']
  epoch_s = [r['train_s'] for r in rows]
  eval_s = [r['eval_s'] for r in rows if 'eval_s' in r]
  return {
      'wall_s': wall, 'load': load, 'data_s': rec['load_s'],
      'model_setup_s': rec['setup_s'], 'epoch_s': epoch_s, 'eval_s': eval_s,
      # run_mmrec.py times the validation pass only: the rest is start-up,
      # imports (torch, pandas, MMRec), the test passes and exit.
      'other_s': (wall - rec['load_s'] - rec['setup_s'] - sum(epoch_s)
                  - sum(eval_s)),
      'epochs': len(rows),
      'best_valid_recall@20': (rec.get('best') or {}).get(
          'valid', {}).get('recall@20'),
      'record': out,
  }


def _cached(run: dict[str, Any]) -> str:
  cache = run['compilation_cache']
  return f"{cache.get('compiled', '-')}/{cache.get('from_cache', '-')}"


def _phases(run: dict[str, Any]) -> str:
  epochs, evals = run['epoch_s'], run['eval_s']
  rest = sum(epochs[1:]) + sum(evals[1:])
  return '/'.join(f'{x:.1f}' for x in (
      run['startup_imports_s'], run['data_setup_s'], epochs[0], evals[0],
      rest, run['exit_s']))


def process_table(cells: list[dict[str, Any]]) -> str:
  """Markdown: one row per model, whole-process seconds and MMRec/ours."""
  lines = [
      '| model | MMRec 1st s | MMRec 2nd s | ours cold s | ours warm s | '
      'MMRec 1st / ours cold | MMRec 2nd / ours warm | compiled/cached '
      'cold | compiled/cached warm | ours cold: imports/set-up/epoch 1/'
      'eval 1/rest/exit s | ours warm: same | load before each run |',
      '|' + '---|' * 12]
  for c in cells:
    cold, warm = c['ours_cold'], c['ours_warm']
    first, second = c.get('mmrec_first'), c.get('mmrec_second')
    wall = lambda r: r['wall_s'] if r else None  # noqa: E731
    loads = [r['load'] for r in (cold, warm, first, second) if r]
    lines.append(
        f"| {c['model']} | {_fmt(wall(first), '.1f')} | "
        f"{_fmt(wall(second), '.1f')} | {cold['wall_s']:.1f} | "
        f"{warm['wall_s']:.1f} | {_ratio(wall(first), cold['wall_s'])} | "
        f"{_ratio(wall(second), warm['wall_s'])} | {_cached(cold)} | "
        f"{_cached(warm)} | {_phases(cold)} | {_phases(warm)} | "
        f"{'/'.join(f'{x:.1f}' for x in loads)} |")
  return '\n'.join(lines)


def process_mode(data_dir: str, out_dir: str, models: list[str],
                 mmrec_dir: str | None, epochs: int, lr: float,
                 batch_size: int, threads: int) -> list[dict[str, Any]]:
  """Per model, back to back: ours cold, ours warm, MMRec 1st, MMRec 2nd.

  Writes `process_<model>_<data>.json` per model and `process_<data>.md`
  into `out_dir`; returns the cells.
  """
  from mmjax.data import prepare  # pylint: disable=g-import-not-at-top
  name = os.path.basename(data_dir.rstrip('/'))
  root = os.path.join(out_dir, 'data')
  # Prepared once, before any timing, as MMRec's folder is: both sides'
  # runs then read a dataset that exists.
  ds_dir = prepare.ensure_dataset(exported_data_section(data_dir, root))
  check_export_counts(ds_dir, data_dir)
  if mmrec_dir:
    sys.path.insert(0, os.path.dirname(_RUN_MMREC))
    import patches  # pylint: disable=g-import-not-at-top
    reason = patches.check_mmrec_dir(mmrec_dir)
  else:
    reason = 'no --mmrec_dir (or $MMREC_DIR) given, or --skip_mmrec'
  if reason:
    print(f'MMRec columns skipped: {reason}.', flush=True)
  date = datetime.datetime.now(datetime.timezone.utc).isoformat(
      timespec='seconds')
  threads = threads or os.cpu_count()
  cells = []
  for model in models:
    cache_dir = os.path.join(out_dir, 'jax_cache', model)
    if os.path.exists(cache_dir):
      shutil.rmtree(cache_dir)  # A cold cache: no program of an earlier run.
    cell = {'dataset': name, 'model': model, 'machine': machine(),
            'date': date, 'threads': threads, 'epochs': epochs,
            'eval_every_epochs': 1, 'lr': lr, 'batch_size': batch_size,
            'data_dir': data_dir, 'cache_dir': cache_dir}
    for kind in ('cold', 'warm'):
      cell[f'ours_{kind}'] = time_whole_run(
          data_dir, root, os.path.join(out_dir, 'runs', f'{model}_{kind}'),
          model, cache_dir, threads, epochs, lr, batch_size)
    if not reason:
      try:
        for kind in ('first', 'second'):
          cell[f'mmrec_{kind}'] = time_mmrec_run(
              mmrec_dir, data_dir, model, epochs, lr, batch_size, threads,
              os.path.join(out_dir, f'mmrec_{model}_{name}_{kind}.json'),
              first=kind == 'first')
      except RuntimeError as e:  # One model's failure leaves the others.
        cell['mmrec_error'] = str(e)[-2000:]
        print(f'MMRec {model} skipped: {e}', flush=True)
    with open(os.path.join(out_dir, f'process_{model}_{name}.json'), 'w',
              encoding='utf-8') as f:
      json.dump(cell, f, indent=1)
    cells.append(cell)
    print(process_table([cell]).splitlines()[-1], flush=True)
  text = (f'# whole-process time, {date}, {machine()}, threads {threads}, '
          f'{epochs} epochs, validation and test every epoch, load '
          f'{os.getloadavg()[0]:.1f} at the end\n' + process_table(cells))
  with open(os.path.join(out_dir, f'process_{name}.md'), 'w',
            encoding='utf-8') as f:
    f.write(text + '\n')
  print(text)
  return cells


def mmrec_medians(record: dict[str, Any]) -> dict[str, float | None]:
  """MMRec's medians over the epochs after the first (as ours)."""
  rows = record['per_epoch']
  timed = rows[1:] if len(rows) > 1 else rows
  evals = [r for r in rows if 'eval_s' in r]
  timed_eval = evals[1:] if len(evals) > 1 else evals
  return {'train_s': _median([r['train_s'] for r in timed]),
          'train_cpu_s': _median([r['train_cpu_s'] for r in timed]),
          'eval_s': _median([r['eval_s'] for r in timed_eval]),
          'eval_cpu_s': _median([r['eval_cpu_s'] for r in timed_eval])}


def _fmt(x, spec='.3f'):
  return '-' if x is None else format(x, spec)


def _ratio(a, b):
  return '-' if not a or not b else f'{a / b:.1f}'


FLOOR_LEGEND = (
    'floor s: max(FLOPs / peak matmul FLOP/s, bytes / copy bandwidth), both '
    'rates measured in our process with its threads (an XLA float32 2048^3 '
    'matmul, the best 256 MB numpy copy), then the bound that binds (flop, '
    'mem); ours/floor and MMRec/floor: each time over it. FLOPs and bytes: '
    'XLA\'s cost analysis of our compiled epoch program and of one '
    'validation pass (embeddings, item order, every user block), with every '
    'scan counted at its length (XLA counts a loop body once), gathers and '
    'scatters at the rows they touch (XLA counts their whole table), plus '
    'our propagation kernel, a custom call XLA cannot see, at 2ED FLOPs and '
    '4N + 8E + 8ND bytes per propagation (bench/propagate.py). Not counted: '
    'Python, dispatch and host work, other custom calls (XLA\'s TopK), '
    'while loops past one trip (JSON: other_custom_calls, uncounted_loops); '
    'XLA counts each fused op\'s operands once, as if cache held the rest. '
    'It is the floor of our programs as compiled, their intermediates '
    'included, not of the least work the model needs; MMRec runs other '
    'programs: its ratio is to our floor of the same work.')


def _floor_cells(o: dict[str, Any], mm: dict[str, Any], what: str,
                 ours_s: float | None) -> str:
  """'floor s | ours/floor | MMRec/floor' of the epoch or the evaluation."""
  f = (o.get('floor') or {}).get(what)
  if not f:
    return '- | - | -'
  bound = 'flop' if f['bound'] == 'flop' else 'mem'
  mmrec_s = mm.get({'epoch': 'train_s', 'eval': 'eval_s'}[what])
  return (f"{f['floor_s']:.4f} {bound} | {_ratio(ours_s, f['floor_s'])} | "
          f"{_ratio(mmrec_s, f['floor_s'])}")


def table(cells: list[dict[str, Any]]) -> str:
  """Markdown: one row per (dataset, model), MMRec/ours ratios.

  Beside each time, the floor of our program (`FLOOR_LEGEND`) and each
  tool's time over it; '-' where a record has no floor.
  """
  lines = [
      '| data | train inter. | model | ours epoch s | MMRec epoch s | '
      'epoch x | epoch floor s | ours/floor | MMRec/floor | ours eval s | '
      'MMRec eval s | eval x | eval floor s | ours/floor | MMRec/floor | '
      'GFLOP/MB epoch; eval | ours CPU-s epoch/eval | MMRec CPU-s '
      'epoch/eval | RSS MB ours/MMRec | load |',
      '|' + '---|' * 20]
  for c in cells:
    o, m = c['ours'], c.get('mmrec')
    mm = mmrec_medians(m) if m else {}
    floor = o.get('floor') or {}
    sizes = '; '.join(
        f"{floor[w]['flops_g']:.1f}/{floor[w]['bytes_mb']:.0f}"
        if w in floor else '-' for w in ('epoch', 'eval'))
    lines.append(
        f"| {c['dataset']} | {o['train_interactions']:,} | {c['model']} | "
        f"{_fmt(o['train_s_median'])} | {_fmt(mm.get('train_s'))} | "
        f"{_ratio(mm.get('train_s'), o['train_s_median'])} | "
        f"{_floor_cells(o, mm, 'epoch', o['train_s_median'])} | "
        f"{_fmt(o['eval_s_median'])} | {_fmt(mm.get('eval_s'))} | "
        f"{_ratio(mm.get('eval_s'), o['eval_s_median'])} | "
        f"{_floor_cells(o, mm, 'eval', o['eval_s_median'])} | {sizes} | "
        f"{_fmt(o['train_cpu_s_median'], '.2f')}/"
        f"{_fmt(o['eval_cpu_s_median'], '.2f')} | "
        f"{_fmt(mm.get('train_cpu_s'), '.2f')}/"
        f"{_fmt(mm.get('eval_cpu_s'), '.2f')} | "
        f"{o['peak_rss_mb']:.0f}/"
        f"{_fmt(m.get('peak_rss_mb') if m else None, '.0f')} | "
        f"{c['load_ours']:.1f}/{_fmt(c.get('load_mmrec'), '.1f')} |")
  return '\n'.join(lines)


def machine() -> str:
  return f'{cpu.name()}, {os.cpu_count()} cores'


def _child_cmd(mode: str, ds_dir: str, model: str, seed: int) -> list[str]:
  return [sys.executable, os.path.abspath(__file__), f'--child={mode}',
          f'--dataset_dir={ds_dir}', f'--models={model}', f'--seed={seed}',
          f'--epochs={_EPOCHS.value}', f'--evals={_EVALS.value}',
          f'--lr={_LR.value}', f'--batch_size={_BATCH.value}',
          f'--threads={_THREADS.value}']


def main(argv):
  del argv
  if _CHILD.value:
    set_threads(_THREADS.value)
    sys.path.insert(0, _REPO)
    model = _MODELS.value[0]
    if _CHILD.value == 'speed':
      out = time_ours(_DATASET_DIR.value, model, _EPOCHS.value, _EVALS.value,
                      _LR.value, _BATCH.value, _SEED.value)
    elif _CHILD.value == 'process':
      out = whole_run_child(_DATA_DIR.value, _OUT_DIR.value, _WORKDIR.value,
                            model, _EPOCHS.value, _LR.value, _BATCH.value,
                            _SEED.value)
    elif _CHILD.value == 'profile':
      out = profile_ours(_DATASET_DIR.value, model, _LR.value, _BATCH.value,
                         os.path.join(_OUT_DIR.value, f'trace_{model}'))
    else:
      out = outcome_ours(_DATASET_DIR.value, model, _EPOCHS.value, _LR.value,
                         _BATCH.value, _SEED.value)
    print('RESULT ' + json.dumps(out), flush=True)
    return
  if not _DATA_DIR.value or not os.path.isdir(_DATA_DIR.value):
    raise app.UsageError(f'--data_dir {_DATA_DIR.value!r}: not a folder.')
  data_dir = os.path.abspath(_DATA_DIR.value)
  name = os.path.basename(data_dir.rstrip('/'))
  out_dir = os.path.abspath(_OUT_DIR.value)
  os.makedirs(out_dir, exist_ok=True)
  if _MODE.value == 'process':
    process_mode(data_dir, out_dir, _MODELS.value,
                 None if _SKIP_MMREC.value else _MMREC_DIR.value,
                 _EPOCHS.value, _LR.value, _BATCH.value, _THREADS.value)
    return
  env_repo = dict(os.environ, PYTHONPATH=_REPO)
  # An MMRec-only outcome run (beside an ours-only one on the same folder)
  # needs no dataset of ours, and must not rebuild the one the other uses.
  mmrec_only = _MODE.value == 'outcome' and _SKIP_OURS.value
  ds_dir = None if mmrec_only else prepare_exported(data_dir, out_dir)
  date = datetime.datetime.now(datetime.timezone.utc).isoformat(
      timespec='seconds')
  if _MODE.value == 'profile':
    for model in _MODELS.value:
      cmd = _child_cmd('profile', ds_dir, model, 0) + [
          f'--out_dir={out_dir}']
      rec = _subprocess_json(cmd, env_repo)
      rec.update(date=date, machine=machine(), data=name,
                 threads=_THREADS.value or os.cpu_count(),
                 load=os.getloadavg()[0])
      with open(os.path.join(out_dir, f'profile_{model}_{name}.json'), 'w',
                encoding='utf-8') as f:
        json.dump(rec, f, indent=1)
      for what, wall, cats in (
          (f"epoch ({rec['steps']} steps)", rec['epoch_wall_s'],
           rec['categories']),
          (f"evaluation ({rec['eval_users']} users)", rec['eval_wall_s'],
           rec['eval_categories'])):
        print(f'## {model} on {name}: {what} {wall:.3f} s')
        for cat, sec in sorted(cats.items(), key=lambda x: -x[1]):
          print(f'  {cat:40s} {sec:8.3f} s {100 * sec / max(wall, 1e-9):5.1f}%')
    return
  if _MODE.value == 'outcome':
    # Per model and seed: ours, then MMRec (unless skipped), the same
    # epochs and hyper-parameters; bench/mmrec/outcome.py --dir compares.
    # Seeds differ only in jit arguments (keys), so a persistent compilation
    # cache spares every seed after the first its compilation.
    env_repo.update(
        JAX_COMPILATION_CACHE_DIR=os.path.join(out_dir, 'jax_cache'),
        JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0')
    for model in _MODELS.value:
      for seed in map(int, _SEEDS.value):
        path = os.path.join(out_dir, f'ours_{model}_s{seed}.json')
        if not mmrec_only and not os.path.exists(path):
          rec = _subprocess_json(
              _child_cmd('outcome', ds_dir, model, seed), env_repo)
          rec.update(date=date, machine=machine(), data_dir=data_dir)
          with open(path, 'w', encoding='utf-8') as f:
            json.dump(rec, f, indent=1)
        mm_path = os.path.join(out_dir, f'mmrec_{model}_s{seed}.json')
        if (_MMREC_DIR.value and not _SKIP_MMREC.value
            and not os.path.exists(mm_path)):
          run_mmrec(_MMREC_DIR.value, data_dir, model, _EPOCHS.value,
                    _LR.value, _BATCH.value, _THREADS.value, mm_path, seed,
                    eval_every=_EPOCHS.value)
        print(f'outcome {model} seed {seed} done', flush=True)
    return
  cells = []
  for model in _MODELS.value:
    cell = {'dataset': name, 'model': model, 'machine': machine(),
            'date': date, 'threads': _THREADS.value or os.cpu_count()}
    cell['load_ours'] = os.getloadavg()[0]
    cell['ours'] = _subprocess_json(_child_cmd('speed', ds_dir, model, 0),
                                    env_repo)
    if _MMREC_DIR.value and not _SKIP_MMREC.value:
      cell['load_mmrec'] = os.getloadavg()[0]
      cell['mmrec'] = run_mmrec(
          _MMREC_DIR.value, data_dir, model, _MMREC_EPOCHS.value, _LR.value,
          _BATCH.value, _THREADS.value,
          os.path.join(out_dir, f'mmrec_{model}_{name}.json'))
    path = os.path.join(out_dir, f'speed_{model}_{name}.json')
    with open(path, 'w', encoding='utf-8') as f:
      json.dump(cell, f, indent=1)
    cells.append(cell)
    print(table([cell]).splitlines()[-1], flush=True)
  text = (f'# model speed, {date}, {machine()}, threads '
          f'{_THREADS.value or os.cpu_count()}\n' + table(cells) +
          f'\n\n{FLOOR_LEGEND}')
  with open(os.path.join(out_dir, f'table_{name}.md'), 'w',
            encoding='utf-8') as f:
    f.write(text + '\n')
  print(text)


if __name__ == '__main__':
  _DATA_DIR = flags.DEFINE_string('data_dir', None,
                                  'MMRec folder from bench/mmrec/export.py.')
  _OUT_DIR = flags.DEFINE_string('out_dir', '/tmp/mmjax_model_speed',
                                 'Records, tables and our prepared dataset.')
  _MODELS = flags.DEFINE_list('models', ['LightGCN'],
                              f'MMRec model names: {sorted(GRID)}.')
  _MODE = flags.DEFINE_enum('mode', 'speed',
                            ['speed', 'outcome', 'profile', 'process'],
                            'speed: time both tools; outcome: train both '
                            'over --seeds and record Recall@20; profile: '
                            'where our epoch time goes; process: whole '
                            'runs of --epochs, start to exit, ours with a '
                            'cold then a warm compilation cache, MMRec '
                            'twice.')
  _MMREC_DIR = flags.DEFINE_string('mmrec_dir', os.environ.get('MMREC_DIR'),
                                   'MMRec checkout (empty: ours only).')
  _SKIP_MMREC = flags.DEFINE_bool('skip_mmrec', False, 'Time ours only.')
  _SKIP_OURS = flags.DEFINE_bool(
      'skip_ours', False, 'Outcome mode: MMRec only (to run the two sides '
      'as two processes on the same --out_dir).')
  _EPOCHS = flags.DEFINE_integer('epochs', 5, 'Our epochs (the first '
                                 'compiles and is not in the median); '
                                 'process mode: both sides\' epochs.')
  _EVALS = flags.DEFINE_integer('evals', 4, 'Our validation passes (the '
                                'first compiles).')
  _MMREC_EPOCHS = flags.DEFINE_integer('mmrec_epochs', 3, 'MMRec epochs, '
                                       'each followed by an evaluation.')
  _LR = flags.DEFINE_float('lr', 1e-3, 'Learning rate (both sides).')
  _BATCH = flags.DEFINE_integer('batch_size', 2048, 'Batch (both sides).')
  _THREADS = flags.DEFINE_integer('threads', 0, 'Threads for both tools '
                                  '(0: every core).')
  _SEEDS = flags.DEFINE_list('seeds', ['0'], 'Seeds (outcome mode).')
  _SEED = flags.DEFINE_integer('seed', 0, 'Internal (child process).')
  _CHILD = flags.DEFINE_string('child', None, 'Internal: speed | outcome | '
                               'profile | process.')
  _WORKDIR = flags.DEFINE_string('workdir', None,
                                 'Internal: the workdir of a whole run.')
  _DATASET_DIR = flags.DEFINE_string('dataset_dir', None,
                                     'Internal: our prepared dataset.')
  app.run(main)
