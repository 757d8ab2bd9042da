r"""Full-ranking evaluation time: the top-K kernel and the two XLA paths.

  python bench/eval_speed.py                       # baby and large
  python bench/eval_speed.py --sizes=ml100k,baby --repeats=5
  MMJAX_KERNEL_THREADS=1 taskset -c 0 python bench/eval_speed.py  # 1 thread

`mmjax.eval.ranking.Evaluator` ranks every item for every evaluated user in
blocks and orders exact ties at random. Two paths give the same lists: the
exact one permutes every score before `lax.top_k`; the fast one takes the
K + K // 8 + 1 best raw scores and sorts only those, and hands a block back
to the exact path when a tie crosses its candidates (see ranking.py). The
compiled kernel (mmjax/graph/kernel/csrc/topk.cc) gives the same lists in
a scan of each user's scores and serves by default on CPU when loaded.
For each size this times, side by side in one process, one whole validation
pass (all blocks, metrics, host transfer) of:

  exact       the XLA exact path for every block (kernel mode 'reference')
  fast        the XLA fast path with its fallback (kernel mode 'reference':
              the default evaluator where the kernel is not loaded)
  kernel      the top-K kernel (kernel mode 'kernel': the default evaluator
              on CPU); 'n/a' when it cannot be loaded here
  scores      only the score blocks (matmul + masking), the floor a top-K
              method cannot go below

for an embedding model with distinct scores (random user and item vectors,
D=64), and for a popularity model, where every user's scores tie (so the
fast path falls back after its first block). Medians of --repeats passes
after one warm-up pass; one device; the same key for every pass, and the
top items of all paths are checked equal. The kernel uses
MMJAX_KERNEL_THREADS threads (default: every core) and XLA the cores the
process may run on: `taskset -c 0` with MMJAX_KERNEL_THREADS=1 compares one
thread against one thread.
"""

import datetime
import os
import time
from typing import Any

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mmjax.data import dataset as dataset_lib
from mmjax.eval import ranking
from mmjax.graph import kernel
from mmjax.utils import cpu

_SIZES = flags.DEFINE_list('sizes', ['baby', 'large'], 'Sizes: ' +
                           ', '.join(['ml100k', 'baby', 'large', 'tiny']))
_REPEATS = flags.DEFINE_integer('repeats', 3, 'Timed passes per cell.')
_BATCH = flags.DEFINE_integer('batch_users', 1024, 'eval.batch_users.')

# name -> (users, items, interactions per user): 'ml100k' is MovieLens
# 100K's size (943 x 1,682, 100k interactions), 'baby' Amazon Baby's
# (19,445 x 7,050, about 160k interactions).
SIZES = {
    'tiny': (2_000, 1_000, 15),
    'ml100k': (943, 1_682, 106),
    'baby': (19_445, 7_050, 8),
    'large': (20_000, 50_000, 20),
}
DIM = 64


def make_dataset(size: str) -> dataset_lib.Dataset:
  """Uniform random interactions, an 8:1:1 random split."""
  num_users, num_items, per_user = SIZES[size]
  rng = np.random.default_rng([0, num_users, num_items])
  user = np.repeat(np.arange(num_users), per_user)
  item = rng.integers(0, num_items, len(user))
  pairs = np.unique(user.astype(np.int64) * num_items + item)
  user = (pairs // num_items).astype(np.int32)
  item = (pairs % num_items).astype(np.int32)
  split = rng.choice(3, size=len(user), p=(0.8, 0.1, 0.1)).astype(np.int8)
  return dataset_lib.Dataset(
      user=user, item=item, split=split,
      user_ids=np.arange(num_users).astype(str),
      item_ids=np.arange(num_items).astype(str))


def embedding_scores(params, ctx, users):
  del ctx
  user_emb, item_emb = params
  return user_emb[users] @ item_emb.T


def popularity_scores(params, ctx, users):
  del ctx
  return jnp.broadcast_to(params, (users.shape[0], params.shape[0]))


def eval_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      topk=(10, 20, 50), batch_users=_BATCH.value, gain='binary',
      convention='mmrec', relevance_threshold=None, mask_valid_at_test=True,
      user_groups=None))


def median_time(fn, repeats: int) -> tuple[tuple[float, float], Any]:
  """((median wall s, median process-CPU s), last output) of `fn`.

  One warm-up call compiles first. CPU seconds count every XLA thread; on a
  shared machine they change less with the load than wall seconds do.
  """
  out = fn()
  wall, cpu = [], []
  for _ in range(repeats):
    start, start_cpu = time.perf_counter(), time.process_time()
    out = fn()
    wall.append(time.perf_counter() - start)
    cpu.append(time.process_time() - start_cpu)
  return (float(np.median(wall)), float(np.median(cpu))), out


def scores_only(evaluator: ranking.Evaluator, params, score_fn):
  """A function making one pass over the blocks: scores and masking only."""
  d = evaluator.data

  @jax.jit
  def block(params, users, mask):
    scores = score_fn(params, None, users)
    rows = jnp.arange(users.shape[0])[:, None]
    scores = scores.at[rows, mask].set(-jnp.inf, mode='drop')
    return scores.max(axis=1)  # Keeps the block from being optimised away.

  batches = []
  for start in range(0, len(d.users), evaluator.block):
    rows = d.users[start:start + evaluator.block]
    rows = np.concatenate(
        [rows, np.full(evaluator.block - len(rows), rows[0], np.int32)])
    mask = ranking.pad_rows(d.mask_indptr, d.mask_indices, rows,
                             evaluator.mask_width, d.num_items)
    batches.append((rows, mask))

  def one_pass():
    # Host-to-device copies of the blocks are part of the real pass too.
    return jax.block_until_ready([block(params, *b) for b in batches])

  return one_pass


def run_size(size: str) -> list[tuple]:
  ds = make_dataset(size)
  data = ranking.make_eval_data(ds, dataset_lib.VALID, mask_valid=True,
                                relevance_threshold=None)
  rng = np.random.default_rng(1)
  models = {
      'embedding': (embedding_scores, (
          jnp.asarray(rng.normal(size=(ds.num_users, DIM)), jnp.float32),
          jnp.asarray(rng.normal(size=(ds.num_items, DIM)), jnp.float32))),
      'popularity': (popularity_scores, jnp.asarray(
          data.item_pop, jnp.float32)),
  }
  key = jax.random.key(0)
  rows = []
  for name, (score_fn, params) in models.items():
    # The settings are read when a block function is traced, on its first
    # call: each evaluator keeps the path it was first called under.
    with kernel.configured('reference'):
      fast = ranking.Evaluator(data, eval_config(), None, score_fn)
      exact = ranking.Evaluator(data, eval_config(), None, score_fn)
      exact.block_fn = exact.exact_block_fn
      t_exact, want = median_time(lambda: exact(params, None, key),
                                  _REPEATS.value)
      t_fast, got = median_time(lambda: fast(params, None, key),
                                _REPEATS.value)
    same = np.array_equal(want.top_items, got.top_items)
    t_kernel = None
    if kernel.available():
      with kernel.configured('kernel'):
        kern = ranking.Evaluator(data, eval_config(), None, score_fn)
        t_kernel, got = median_time(lambda: kern(params, None, key),
                                    _REPEATS.value)
      same = same and np.array_equal(want.top_items, got.top_items)
    t_scores, _ = median_time(scores_only(fast, params, score_fn),
                              _REPEATS.value)
    rows.append(dict(size=size, shape=f'{ds.num_users}x{ds.num_items}',
                     model=name, users=len(data.users), exact=t_exact,
                     fast=t_fast, kernel=t_kernel, scores=t_scores,
                     same=same))
    print(f'# done {size} {name}', flush=True)
  return rows


def _pair(t) -> str:
  return 'n/a' if t is None else f'{t[0]:.3f}/{t[1]:.3f}'


def _ratio(a, b, i: int) -> str:
  return 'n/a' if a is None or b is None else f'{a[i] / b[i]:.2f}'


def machine() -> str:
  return (f'{cpu.name()}, {os.cpu_count()} cores, JAX '
          f'{jax.__version__} {jax.devices()[0].platform}')


def main(argv):
  del argv
  for size in _SIZES.value:
    if size not in SIZES:
      raise app.UsageError(f'--sizes: unknown {size!r}; one of {list(SIZES)}.')
  rows = []
  for size in _SIZES.value:
    rows.extend(run_size(size))
  load = os.getloadavg()[0]
  print(f'# eval_speed  {datetime.datetime.now():%Y-%m-%d %H:%M}  '
        f'{machine()}  load {load:.1f}')
  print(f'# top-K (10, 20, 50), batch_users {_BATCH.value}, D={DIM}, '
        f'median of {_REPEATS.value} validation passes, kernel threads '
        f'{kernel.num_threads()}, XLA cores {len(os.sched_getaffinity(0))}')
  print('| size | users x items | model | users evaluated | exact wall/CPU '
        '(s) | fast wall/CPU (s) | kernel wall/CPU (s) | scores only wall/CPU '
        '(s) | exact / fast wall | fast / kernel wall | fast / kernel CPU | '
        'users/s (kernel) | same top items |')
  print('|---|---|---|---|---|---|---|---|---|---|---|---|---|')
  for r in rows:
    best = r['kernel'] or r['fast']
    print(f"| {r['size']} | {r['shape']} | {r['model']} | {r['users']} | "
          f"{_pair(r['exact'])} | {_pair(r['fast'])} | {_pair(r['kernel'])} "
          f"| {_pair(r['scores'])} | {_ratio(r['exact'], r['fast'], 0)} | "
          f"{_ratio(r['fast'], r['kernel'], 0)} | "
          f"{_ratio(r['fast'], r['kernel'], 1)} | "
          f"{r['users'] / best[0]:,.0f} | {r['same']} |")


if __name__ == '__main__':
  app.run(main)
