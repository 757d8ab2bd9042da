"""Propagation speed: the compiled kernel against JAX, scipy and PyTorch.

    .venv/bin/python bench/propagate.py [--nodes 50000 --nnz 2000000
        --dims 32,64,128 --repeats 10]

A LightGCN-style graph: a power-law bipartite user-item graph (Zipf item
popularity, lognormal user activity), made symmetric and normalised
D^-1/2 A D^-1/2. Times are medians over `--repeats` runs after two warm-up
runs, in milliseconds, one device, the same process and graph for every
column. Forward is `y = A x`; forward+backward adds the gradient with respect
to x (`A^T g`) as every framework computes it for a fixed graph; `ours+dw`
also computes the edge-value gradient.

Floor: the bytes a propagation must move at the least, over the memory
bandwidth measured here (a large numpy copy): the CSR arrays once (indptr 4N,
cols 4E, values 4E), x read once and y written once (2 * 4ND). Reading x once
assumes its rows stay in cache (x is 12.8 MB at N=50k, D=64; L3 is 32 MB
here); a gather from memory per edge would be 4ED instead. Forward+backward
is twice that.
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import time
import warnings

from absl import app
from absl import flags
import jax
from jax.experimental import sparse as jsparse
import jax.numpy as jnp
import numpy as np
import scipy.sparse

from mmjax.graph import kernel
from mmjax.graph import sparse
from mmjax.utils import cpu

_NODES = flags.DEFINE_integer('nodes', 50_000, 'Users + items.')
_NNZ = flags.DEFINE_integer('nnz', 2_000_000, 'Non-zeros (both directions).')
_DIMS = flags.DEFINE_list('dims', ['32', '64', '128'], 'Embedding sizes.')
_REPEATS = flags.DEFINE_integer('repeats', 10, 'Timed runs per cell.')
_SEED = flags.DEFINE_integer('seed', 0, 'Graph and input seed.')
_SKIP = flags.DEFINE_list('skip', [], 'Columns to skip (e.g. bcoo,reference).')
_CLOCK = flags.DEFINE_enum(
    'clock', 'wall', ['wall', 'cpu'],
    'wall: elapsed time; cpu: process CPU time, which a loaded machine '
    'disturbs less (meaningful with --threads 1: spinning worker threads '
    'would count too).',
)
_THREADS = flags.DEFINE_integer(
    'threads', 0, 'Threads for our kernel and torch (0: the kernel default).'
)


def power_law_graph(nodes: int, nnz: int, seed: int) -> sparse.Graph:
  """Symmetric normalised bipartite graph with about `nnz` non-zeros."""
  rng = np.random.default_rng([seed, 0])
  num_users = int(nodes * 0.7)
  num_items = nodes - num_users
  pairs = nnz // 2
  # Heavy tails on both sides, as in review data.
  item_p = 1.0 / np.arange(1, num_items + 1) ** 0.8
  item_p /= item_p.sum()
  user_w = rng.lognormal(0.0, 1.0, num_users)
  user_w /= user_w.sum()
  # Draw more than needed, drop duplicates, keep the first `pairs`.
  users = rng.choice(num_users, size=int(pairs * 1.3), p=user_w)
  items = rng.permutation(num_items)[
      rng.choice(num_items, size=len(users), p=item_p)
  ]
  code = users.astype(np.int64) * num_items + items
  _, first = np.unique(code, return_index=True)
  keep = np.sort(first)[:pairs]
  g = sparse.bipartite(users[keep], items[keep], num_users, num_items)
  return sparse.sym_normalize(g)


def measure(fn, repeats: int) -> float:
  """Median milliseconds of fn() after two warm-up calls (see --clock)."""
  clock = time.process_time if _CLOCK.value == 'cpu' else time.perf_counter
  for _ in range(2):
    fn()
  times = []
  for _ in range(repeats):
    t = clock()
    fn()
    times.append(clock() - t)
  return 1e3 * statistics.median(times)


def jax_columns(g: sparse.Graph, x: np.ndarray, gy: np.ndarray, repeats):
  """Times of our kernel, the reference and BCOO: {name: (fwd, fwd+bwd)}.

  The graph is a jit argument, as in a training step (a closed-over graph
  would be constant-folded at compile time).
  """
  xj, gyj = jnp.asarray(x), jnp.asarray(gy)
  gj = jax.tree.map(jnp.asarray, g)
  out = {}

  def pair(prop, with_dw=False):
    fwd = jax.jit(lambda g, x: prop(g, g.weights, x))

    def loss(w, x, g):
      return jnp.vdot(prop(g, w, x), gyj)

    # value_and_grad, not grad: the gradient of a linear map needs no
    # forward, so under grad alone XLA drops it and the column would time
    # the backward only, against torch's forward + backward.
    bwd = jax.jit(jax.value_and_grad(loss, argnums=(0, 1) if with_dw else 1))
    return (
        measure(lambda: fwd(gj, xj).block_until_ready(), repeats),
        measure(lambda: jax.block_until_ready(bwd(gj.weights, xj, gj)),
                repeats),
    )

  if kernel.available():
    def ours(g, w, x):
      return sparse.propagate(g.with_weights(w), x)

    out['ours'] = pair(ours)
    out['ours+dw'] = (out['ours'][0], pair(ours, with_dw=True)[1])
  if 'reference' not in _SKIP.value:
    out['segment_sum'] = pair(
        lambda g, w, x: sparse.propagate_reference(g.with_weights(w), x)
    )
  if 'bcoo' not in _SKIP.value:
    def bcoo(g, w, x):
      idx = jnp.stack([g.receivers, g.senders], axis=1)
      a = jsparse.BCOO((w, idx), shape=(g.num_nodes, g.num_nodes),
                       indices_sorted=True)
      return a @ x

    out['bcoo'] = pair(bcoo)
  return out


def scipy_column(g, x, gy, repeats):
  a = scipy.sparse.csr_matrix(
      (np.asarray(g.weights), np.asarray(g.senders), np.asarray(g.indptr)),
      shape=(g.num_nodes, g.num_nodes),
  )
  at = a.T  # a CSC view: no copy, as torch's backward needs none either
  fwd = measure(lambda: a @ x, repeats)
  both = measure(lambda: (a @ x, at @ gy), repeats)
  return {'scipy_csr': (fwd, both)}


def torch_columns(g, x, gy, repeats):
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    print('torch is not installed: PyTorch columns skipped.')
    return {}
  torch.set_num_threads(max(kernel.num_threads(), 1))
  # Quiet the beta-feature warnings; they are not results.
  warnings.filterwarnings('ignore', module='torch')
  warnings.filterwarnings('ignore', category=UserWarning)
  n = g.num_nodes
  w = torch.from_numpy(np.asarray(g.weights))
  coo = torch.sparse_coo_tensor(
      torch.from_numpy(np.stack([np.asarray(g.receivers),
                                 np.asarray(g.senders)]).astype(np.int64)),
      w, (n, n),
  ).coalesce()
  csr = coo.to_sparse_csr()
  xt = torch.from_numpy(x)
  gt = torch.from_numpy(gy)
  out = {}
  for name, a in (('torch_csr', csr), ('torch_coo', coo)):
    def fwd(a=a):
      with torch.no_grad():
        torch.sparse.mm(a, xt)

    def both(a=a):
      xg = xt.detach().requires_grad_(True)
      torch.sparse.mm(a, xg).backward(gt)

    out[name] = (measure(fwd, repeats), measure(both, repeats))
  return out


def main(argv):
  del argv
  if _THREADS.value:
    kernel.set_num_threads(_THREADS.value)
  g = power_law_graph(_NODES.value, _NNZ.value, _SEED.value)
  n, e = g.num_nodes, g.num_edges
  bw = cpu.copy_bandwidth()
  threads = kernel.num_threads()
  print(f'# propagation, {datetime.date.today()}, {platform.node()}, '
        f'{platform.processor() or platform.machine()}, '
        f'{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, '
        f'{_CLOCK.value} clock')
  print(f'# jax {jax.__version__}; kernel {kernel.status()["reason"]}, '
        f'{threads} threads; N={n}, nnz={e}, '
        f'copy bandwidth {bw / 1e9:.1f} GB/s')
  print()
  print('| D | pass | ' + ' | '.join(
      ['ours', 'ours+dw', 'segment_sum', 'bcoo', 'scipy_csr', 'torch_csr',
       'torch_coo']) + ' | floor | ours/torch_csr |')
  print('|---|---|' + '---|' * 9)
  for d in (int(v) for v in _DIMS.value):
    rng = np.random.default_rng([_SEED.value, d])
    x = rng.standard_normal((n, d)).astype(np.float32)
    gy = rng.standard_normal((n, d)).astype(np.float32)
    cols = {}
    cols.update(jax_columns(g, x, gy, _REPEATS.value))
    cols.update(scipy_column(g, x, gy, _REPEATS.value))
    cols.update(torch_columns(g, x, gy, _REPEATS.value))
    floor = 1e3 * (4 * n + 8 * e + 2 * 4 * n * d) / bw
    for p, label in ((0, 'fwd'), (1, 'fwd+bwd')):
      cells = []
      for name in ('ours', 'ours+dw', 'segment_sum', 'bcoo', 'scipy_csr',
                   'torch_csr', 'torch_coo'):
        cells.append(f'{cols[name][p]:.1f}' if name in cols else '-')
      ratio = (f'{cols["ours"][p] / cols["torch_csr"][p]:.2f}'
               if 'ours' in cols and 'torch_csr' in cols else '-')
      print(f'| {d} | {label} | ' + ' | '.join(cells) +
            f' | {floor * (p + 1):.1f} | {ratio} |', flush=True)


if __name__ == '__main__':
  app.run(main)
