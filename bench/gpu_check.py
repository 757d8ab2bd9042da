r"""The GPU check: propagation paths and two models against MMRec, one command.

    # on one GPU, from the repository root (MMRec optional; estimated 3-5
    # minutes, not yet run on a GPU: the CPU run of these sizes took 9)
    python bench/gpu_check.py --mmrec_dir $MMREC_DIR
    # the CPU dry run at small sizes (known to work before a GPU exists)
    .venv/bin/python bench/gpu_check.py --cpu --small

Prints a header (device, versions, CUDA, date, the propagation path mmjax
picks here) and two Markdown tables, and writes them with every record to
`--out_dir/gpu_check.json` (and `.md`), section by section, so a run cut
short keeps what it measured.

1. Propagation `y = A x` on the graph of bench/propagate.py
   (`propagate.power_law_graph`: N=50k nodes, 2M non-zeros, D from `--dims`),
   forward and forward+backward (the loss vdot(A x, g) and its gradient
   with respect to x, so both passes run, as in torch),
   by each path: `jax.ops.segment_sum`, the sorted one (`indices_are_sorted`,
   mmjax's reference), `jax.experimental.sparse` BCSR (cuSPARSE on GPU,
   with `jax_bcoo_cusparse_lowering` on for that row only: it is off by
   default; the custom calls of each program are printed, so a fallback to
   XLA's own ops shows), `sparse.propagate` as a user gets it
   (whatever path mmjax chooses here), and `torch.sparse.mm` with a CSR
   tensor on the same device. Times are medians of `--repeats` runs after two
   warm-up runs (`propagate.measure`, wall clock), each synchronised
   (`block_until_ready`, `torch.cuda.synchronize`). Every path's output and
   gradient are compared with segment_sum's: the max abs diff columns make a
   wrong path visible.
2. LightGCN and FREEDOM at Amazon Baby's size (bench/README.md's synth160k:
   19,000 users x 7,000 items, 9 interactions drawn per user, written by
   bench/mmrec/export.py): epoch and validation-evaluation time with
   `model_speed.time_ours` (medians after the first, which compiles), and
   MMRec's (`model_speed.run_mmrec`, on the GPU through torch) when
   `--mmrec_dir` or $MMREC_DIR is a MMRec checkout.

`--cpu` forces the CPU (JAX's platform and torch's device); `--small` shrinks
the graph (5k nodes, 100k non-zeros) and the data (400 users x 200 items).
`--nodes`, `--nnz`, `--dims`, `--repeats` and `--seed` are bench/propagate.py's
own flags (this script imports it); `--small` changes their defaults only.
Without `--cpu` the script stops unless JAX sees a GPU, so CPU numbers are
never taken for GPU ones.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import time
from typing import Any, Callable, Iterator
import warnings

from absl import app
from absl import flags
import jax
from jax.experimental import sparse as jsparse
import jax.numpy as jnp
import numpy as np

_BENCH = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_BENCH, 'mmrec'))
sys.path.insert(0, _BENCH)
# pylint: disable=g-import-not-at-top,wrong-import-position
import export  # bench/mmrec/export.py  # noqa: E402
import model_speed  # noqa: E402
import patches  # bench/mmrec/patches.py  # noqa: E402
import propagate  # noqa: E402

from mmjax.graph import kernel  # noqa: E402
from mmjax.graph import sparse  # noqa: E402

# pylint: enable=g-import-not-at-top,wrong-import-position

_CPU = flags.DEFINE_bool(
    'cpu', False, 'Force the CPU device (JAX and torch): the dry run.')
_SMALL = flags.DEFINE_bool(
    'small', False, 'Small graph and data (for --cpu and the test).')
_MMREC_DIR = flags.DEFINE_string(
    'mmrec_dir', os.environ.get('MMREC_DIR'),
    'MMRec checkout (default $MMREC_DIR; empty: MMRec rows are skipped).')
_OUT_DIR = flags.DEFINE_string(
    'out_dir', '/tmp/mmjax_gpu_check', 'Data, records, JSON and table.')
_MODELS = flags.DEFINE_list(
    'models', ['LightGCN', 'FREEDOM'],
    'Models of model_speed.GRID to time (empty: propagation only).')
_EPOCHS = flags.DEFINE_integer(
    'epochs', 3, 'mmjax epochs per model (the first compiles).')
_EVALS = flags.DEFINE_integer(
    'evals', 3, 'mmjax validation passes per model (the first compiles).')
_MMREC_EPOCHS = flags.DEFINE_integer(
    'mmrec_epochs', 3, 'MMRec epochs per model, each with its evaluation.')

# Amazon Baby's size: bench/README.md's synth160k (export.py arguments).
_BABY = {'num_users': 19_000, 'num_items': 7_000, 'per_user': 9}
_TINY = {'num_users': 400, 'num_items': 200, 'per_user': 10}
# --small's defaults for bench/propagate.py's flags.
_SMALL_GRAPH = {'nodes': 5_000, 'nnz': 100_000, 'dims': ['32']}
# model_speed's defaults (its flags are defined only when run as a script).
_LR = 1e-3
_BATCH = 2048

_RESULT_FILE = 'gpu_check'


def sync_torch(torch, device: str) -> None:
  """Waits for torch's queued GPU work, so a timing covers it."""
  if device == 'cuda':
    torch.cuda.synchronize()


def header(torch_device: str) -> dict[str, Any]:
  """Device, versions and the propagation path mmjax picks on this device."""
  import jaxlib  # pylint: disable=g-import-not-at-top
  device = jax.devices()[0]
  out = {
      'date': datetime.datetime.now(datetime.timezone.utc).isoformat(
          timespec='seconds'),
      'host': platform.node(),
      'python': platform.python_version(),
      'jax': jax.__version__,
      'jaxlib': jaxlib.__version__,
      'backend': jax.default_backend(),
      'device': f'{device.platform}: {device.device_kind}',
      'device_count': jax.device_count(),
      # The CUDA runtime XLA reports on GPU ('cpu' on CPU).
      'jax_platform_version': getattr(getattr(device, 'client', None),
                                      'platform_version', '?'),
      'machine': model_speed.machine(),
      'load': os.getloadavg()[0],
      'dry_run': _CPU.value,
  }
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    out['torch'] = 'not installed'
  else:
    out['torch'] = torch.__version__
    out['torch_cuda'] = torch.version.cuda
    out['torch_device'] = (torch.cuda.get_device_name(0)
                           if torch_device == 'cuda' else 'cpu')
  try:
    out['nvidia_smi'] = subprocess.run(
        ['nvidia-smi', '--query-gpu=name,driver_version,memory.total',
         '--format=csv,noheader'], capture_output=True, text=True,
        timeout=20, check=True).stdout.strip()
  except (OSError, subprocess.SubprocessError):
    out['nvidia_smi'] = None
  # The path `propagate` takes for float32 [N, D] here, with the settings a
  # user gets without configuring anything (MMJAX_KERNEL unset: 'auto').
  tiny = sparse.from_edges(np.array([0, 1]), np.array([1, 0]), None, 2)
  tiny = jax.tree.map(jnp.asarray, tiny)
  out['mmjax_path'] = sparse.propagation_path(tiny, jnp.ones((2, 4)))
  out['kernel'] = kernel.status()
  return out


def _custom_calls(jitted, *args) -> str:
  """The custom-call targets of a jitted function's lowering (which library
  serves it), or '-' for XLA's own ops only."""
  text = jitted.lower(*args).as_text()
  return ','.join(sorted(set(re.findall(r'custom_call @(\w+)', text)))) or '-'


def jax_paths(g: sparse.Graph, x: np.ndarray, gy: np.ndarray, repeats: int
              ) -> dict[str, dict[str, Any]]:
  """Each JAX path's times and results: {name: {fwd_ms, both_ms, y, dx}}.

  The graph is a jit argument, as in a training step (a closed-over graph
  would be constant-folded at compile time).
  """
  gj = jax.tree.map(jnp.asarray, g)
  xj, gyj = jnp.asarray(x), jnp.asarray(gy)
  n = g.num_nodes

  def segment_sum(g, x):
    messages = x[g.senders] * g.weights[:, None]  # [E, D]
    return jax.ops.segment_sum(messages, g.receivers, num_segments=n)

  def bcsr(g, x):
    a = jsparse.BCSR((g.weights, g.senders, g.indptr), shape=(n, n),
                     indices_sorted=True, unique_indices=True)
    return a @ x

  paths: dict[str, Callable[[sparse.Graph, jax.Array], jax.Array]] = {
      'segment_sum': segment_sum,
      'segment_sum sorted': sparse.propagate_reference,
      'BCSR (jax.experimental.sparse)': bcsr,
      'mmjax propagate (default)': sparse.propagate,
  }
  out = {}
  for name, prop in paths.items():
    with _cusparse_lowering(name.startswith('BCSR')):
      out[name] = _jax_path(prop, gj, xj, gyj, repeats)
  if 'skipped' not in out['mmjax propagate (default)']:
    out['mmjax propagate (default)']['lowers_to'] += (
        f' [{sparse.propagation_path(gj, xj)}]')
  return out


@contextlib.contextmanager
def _cusparse_lowering(enable: bool) -> Iterator[None]:
  """BCSR and BCOO products lower to cuSPARSE only with this flag on.

  It is off by default (then BCSR lowers to XLA's gather and scatter); on
  CPU it changes nothing.
  """
  old = jax.config.jax_bcoo_cusparse_lowering
  jax.config.update('jax_bcoo_cusparse_lowering', enable or old)
  try:
    yield
  finally:
    jax.config.update('jax_bcoo_cusparse_lowering', old)


def _jax_path(prop, gj, xj, gyj, repeats: int) -> dict[str, Any]:
  """Times and results of one JAX path (see jax_paths)."""
  fwd = jax.jit(prop)
  # value_and_grad, not grad: the loss needs y = A x, so the forward runs
  # too (under grad alone XLA drops it, the gradient A^T g not needing y),
  # the same work as torch's forward + backward.
  both = jax.jit(jax.value_and_grad(lambda x, g: jnp.vdot(prop(g, x), gyj)))
  try:
    return {
        'fwd_ms': propagate.measure(
            lambda: fwd(gj, xj).block_until_ready(), repeats),
        'both_ms': propagate.measure(
            lambda: jax.block_until_ready(both(xj, gj)), repeats),
        'y': np.asarray(fwd(gj, xj)),
        'dx': np.asarray(both(xj, gj)[1]),
        'lowers_to': (f'{_custom_calls(fwd, gj, xj)} / '
                      f'{_custom_calls(both, xj, gj)}'),
    }
  except Exception as e:  # pylint: disable=broad-except
    # One path failing on a new device must not cost the other rows.
    return {'skipped': f'failed: {type(e).__name__}: {e}'[:300]}


def torch_path(g: sparse.Graph, x: np.ndarray, gy: np.ndarray, repeats: int,
               device: str) -> dict[str, Any]:
  """torch.sparse.mm with a CSR tensor on `device`, or why it was skipped."""
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    return {'skipped': 'torch not installed'}
  if device == 'cuda' and not torch.cuda.is_available():
    return {'skipped': f'torch {torch.__version__} sees no CUDA device'}
  # Quiet the beta-feature warnings of sparse CSR; they are not results.
  warnings.filterwarnings('ignore', category=UserWarning, module='torch')
  warnings.filterwarnings('ignore', message='.*[Ss]parse.*')
  try:
    return _torch_times(torch, g, x, gy, repeats, device)
  except RuntimeError as e:  # E.g. an unsupported sparse op on this build.
    return {'skipped': f'failed: {e}'[:300]}


def _torch_times(torch, g, x, gy, repeats, device) -> dict[str, Any]:
  n = g.num_nodes
  a = torch.sparse_csr_tensor(
      torch.from_numpy(np.asarray(g.indptr, np.int64)),
      torch.from_numpy(np.asarray(g.senders, np.int64)),
      torch.from_numpy(np.asarray(g.weights)), (n, n)).to(device)
  xt = torch.from_numpy(x).to(device)
  gt = torch.from_numpy(gy).to(device)

  def fwd():
    with torch.no_grad():
      y = torch.sparse.mm(a, xt)
    sync_torch(torch, device)
    return y

  def both():
    xg = xt.detach().requires_grad_(True)
    torch.sparse.mm(a, xg).backward(gt)
    sync_torch(torch, device)
    return xg.grad

  return {'fwd_ms': propagate.measure(fwd, repeats),
          'both_ms': propagate.measure(both, repeats),
          'y': fwd().cpu().numpy(), 'dx': both().cpu().numpy(),
          'lowers_to': f'torch {torch.__version__} {device}'}


def propagation(torch_device: str) -> list[dict[str, Any]]:
  """Rows of the propagation table, one per (D, path)."""
  f = flags.FLAGS
  g = propagate.power_law_graph(f.nodes, f.nnz, f.seed)
  rows = []
  for d in (int(v) for v in f.dims):
    rng = np.random.default_rng([f.seed, d])
    x = rng.standard_normal((g.num_nodes, d)).astype(np.float32)
    gy = rng.standard_normal((g.num_nodes, d)).astype(np.float32)
    results = jax_paths(g, x, gy, f.repeats)
    results['torch.sparse.mm CSR'] = torch_path(g, x, gy, f.repeats,
                                                torch_device)
    ref = results['segment_sum']
    for name, r in results.items():
      row = {'D': d, 'path': name, 'nodes': g.num_nodes,
             'nnz': g.num_edges}
      if 'skipped' in r:
        row['skipped'] = r['skipped']
      else:
        row.update(
            fwd_ms=r['fwd_ms'], both_ms=r['both_ms'],
            fwd_max_diff=float(np.abs(r['y'] - ref['y']).max()),
            grad_max_diff=float(np.abs(r['dx'] - ref['dx']).max()),
            lowers_to=r['lowers_to'])
      rows.append(row)
      print(propagation_table([row]).splitlines()[-1], flush=True)
  return rows


def propagation_table(rows: list[dict[str, Any]]) -> str:
  lines = ['| D | path | fwd ms | fwd+bwd ms | max abs diff fwd | '
           'max abs diff grad | custom calls (fwd / fwd+bwd) |',
           '|---|---|---|---|---|---|---|']
  for r in rows:
    if 'skipped' in r:
      lines.append(f"| {r['D']} | {r['path']} | {r['skipped']} | - | - | - "
                   '| - |')
      continue
    lines.append(
        f"| {r['D']} | {r['path']} | {r['fwd_ms']:.3f} | {r['both_ms']:.3f} "
        f"| {r['fwd_max_diff']:.2e} | {r['grad_max_diff']:.2e} | "
        f"{r['lowers_to']} |")
  return '\n'.join(lines)


def _mmrec_on(mmrec_dir: str, data_dir: str, model: str, out: str,
              use_gpu: bool) -> dict[str, Any]:
  """`model_speed.run_mmrec` with MMRec's device chosen by `use_gpu`.

  run_mmrec.py's config says use_gpu False unless an hparam overrides it,
  and model_speed.run_mmrec passes `GRID[model]['hparams']` only; so the
  flag rides in that dict for this call and is taken out again.
  """
  hparams = model_speed.GRID[model]['hparams']
  model_speed.GRID[model]['hparams'] = {**hparams, 'use_gpu': use_gpu}
  try:
    return model_speed.run_mmrec(mmrec_dir, data_dir, model,
                                 _MMREC_EPOCHS.value, _LR, _BATCH, 0, out)
  finally:
    model_speed.GRID[model]['hparams'] = hparams


def models(out_dir: str, use_gpu: bool) -> list[dict[str, Any]]:
  """Rows of the model table: mmjax, then MMRec (or why it is skipped)."""
  size = _TINY if _SMALL.value else _BABY
  name = 'synth_small' if _SMALL.value else 'synth160k'
  data_dir = os.path.join(out_dir, 'data', name)
  t0 = time.perf_counter()
  stats = export.export_synthetic(data_dir, name, seed=0, **size)
  ds_dir = model_speed.prepare_exported(data_dir, out_dir)
  print(f'# data {name}: {stats} ({time.perf_counter() - t0:.1f} s to '
        'generate and prepare)', flush=True)
  mmrec_reason = patches.check_mmrec_dir(_MMREC_DIR.value)
  rows = []
  for model in _MODELS.value:
    ours = model_speed.time_ours(ds_dir, model, _EPOCHS.value, _EVALS.value,
                                 _LR, _BATCH)
    row = {'model': model, 'data': name, 'stats': stats, 'mmjax': ours,
           'mmrec_device': 'cuda' if use_gpu else 'cpu'}
    if mmrec_reason:
      row['mmrec_skipped'] = f'MMRec skipped: {mmrec_reason}'
    else:
      try:
        row['mmrec'] = _mmrec_on(
            _MMREC_DIR.value, data_dir, model,
            os.path.join(out_dir, f'mmrec_{model}_{name}.json'), use_gpu)
      except RuntimeError as e:  # One failed MMRec model keeps the rest.
        row['mmrec_skipped'] = f'MMRec failed: {str(e)[-600:]}'
    rows.append(row)
    print('\n'.join(model_table([row]).splitlines()[2:]), flush=True)
  return rows


def _fmt(x, spec='.3f') -> str:
  return '-' if x is None else format(x, spec)


def _ratio(slow, fast) -> str:
  return '-' if not slow or not fast else f'{slow / fast:.1f}'


def model_table(rows: list[dict[str, Any]]) -> str:
  lines = ['| model | data | tool | device | epoch s | eval s | first epoch '
           's | first eval s | MMRec/mmjax epoch | MMRec/mmjax eval |',
           '|---|---|---|---|---|---|---|---|---|---|']
  for r in rows:
    o = r['mmjax']
    device = 'cpu' if _CPU.value else jax.default_backend()
    lines.append(
        f"| {r['model']} | {r['data']} | mmjax | {device} | "
        f"{_fmt(o['train_s_median'])} | {_fmt(o['eval_s_median'])} | "
        f"{_fmt(o['first_epoch_s'])} | {_fmt(o['first_eval_s'])} | - | - |")
    if 'mmrec' in r:
      m = model_speed.mmrec_medians(r['mmrec'])
      first = r['mmrec']['per_epoch'][0]
      lines.append(
          f"| {r['model']} | {r['data']} | MMRec | {r['mmrec_device']} | "
          f"{_fmt(m['train_s'])} | {_fmt(m['eval_s'])} | "
          f"{_fmt(first['train_s'])} | {_fmt(first.get('eval_s'))} | "
          f"{_ratio(m['train_s'], o['train_s_median'])} | "
          f"{_ratio(m['eval_s'], o['eval_s_median'])} |")
    else:
      lines.append(f"| {r['model']} | {r['data']} | MMRec | - | "
                   f"{r['mmrec_skipped']} | - | - | - | - | - |")
  return '\n'.join(lines)


def header_text(h: dict[str, Any]) -> str:
  kind = ('CPU DRY RUN (--cpu): not GPU numbers' if h['dry_run']
          else 'GPU check')
  return '\n'.join([
      f"# {kind}, {h['date']}, {h['host']}, {h['machine']}, "
      f"load {h['load']:.1f}",
      f"# device {h['device']} (x{h['device_count']}, "
      f"{h['jax_platform_version']}); nvidia-smi: {h['nvidia_smi']}",
      f"# python {h['python']}, jax {h['jax']}, jaxlib {h['jaxlib']}, "
      f"torch {h['torch']} (CUDA {h.get('torch_cuda')}, "
      f"device {h.get('torch_device', '-')})",
      f"# mmjax propagation path here: {h['mmjax_path']} (kernel mode "
      f"{h['kernel']['mode']} from {h['kernel']['settings_from']}: "
      f"{h['kernel']['reason']})",
  ])


def _write(out_dir: str, record: dict[str, Any]) -> None:
  with open(os.path.join(out_dir, _RESULT_FILE + '.json'), 'w',
            encoding='utf-8') as f:
    json.dump(record, f, indent=1, default=str)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Too many command-line arguments.')
  f = flags.FLAGS
  if f.clock != 'wall':
    raise app.UsageError('--clock cpu does not time a device; use wall.')
  if _SMALL.value:
    for key, value in _SMALL_GRAPH.items():
      if not f[key].present:
        setattr(f, key, value)
  # JAX takes 75% of the GPU's memory when it starts; half leaves room for
  # torch here and MMRec's process beside it (before the backend starts).
  os.environ.setdefault('XLA_PYTHON_CLIENT_MEM_FRACTION', '0.5')
  if _CPU.value:
    # Before anything touches a backend: JAX then never starts the GPU.
    jax.config.update('jax_platforms', 'cpu')
    os.environ['JAX_PLATFORMS'] = 'cpu'  # And any subprocess after it.
  elif jax.default_backend() != 'gpu':
    raise app.UsageError(
        f'JAX sees no GPU (devices: {jax.devices()}); install jax with CUDA, '
        'or pass --cpu for the CPU dry run.')
  torch_device = 'cpu' if _CPU.value else 'cuda'
  out_dir = os.path.abspath(_OUT_DIR.value)
  os.makedirs(out_dir, exist_ok=True)
  start = time.perf_counter()
  record = {'header': header(torch_device),
            'flags': {k: f[k].value for k in (
                'nodes', 'nnz', 'dims', 'repeats', 'seed', 'small', 'models',
                'epochs', 'evals', 'mmrec_epochs', 'mmrec_dir')}}
  text = header_text(record['header'])
  print(text, flush=True)
  _write(out_dir, record)

  print(f'\n## Propagation, N={f.nodes}, nnz~{f.nnz}, median of '
        f'{f.repeats} after 2 warm-up runs, ms', flush=True)
  print('\n'.join(propagation_table([]).splitlines()), flush=True)
  record['propagation'] = propagation(torch_device)
  record['propagation_s'] = time.perf_counter() - start
  _write(out_dir, record)

  if _MODELS.value:
    print('\n## Models: epoch and validation evaluation, s (medians after '
          'the first, which compiles)', flush=True)
    print(model_table([]), flush=True)
    record['models'] = models(out_dir, use_gpu=not _CPU.value)
  record['total_s'] = time.perf_counter() - start
  _write(out_dir, record)
  text = '\n\n'.join(
      [text, propagation_table(record['propagation'])]
      + ([model_table(record['models'])] if _MODELS.value else []))
  text += f"\n\n# total {record['total_s']:.0f} s"
  with open(os.path.join(out_dir, _RESULT_FILE + '.md'), 'w',
            encoding='utf-8') as fh:
    fh.write(text + '\n')
  print(f"\n# total {record['total_s']:.0f} s; records in {out_dir}/"
        f'{_RESULT_FILE}.json and .md', flush=True)


if __name__ == '__main__':
  app.run(main)
