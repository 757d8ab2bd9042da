"""Full-ranking evaluation on device, in user blocks of static size.

For each block of users: scores over all items [U_b, I], training items (and
validation items at test time when `mask_valid`) set to -inf by a scatter from
the block's slice of the history, the top K with exact ties in a seeded
random order (below), then per-user metric vectors on device. Only per-user
vectors and the top-K lists come back; averages are taken on the host in
float64.

One compile per Evaluator: the block size is static (the last block is padded
and masked), and the block's history and held-out slices are padded to a width
fixed once per split: the largest count among the evaluated users, rounded up
to a power of two. Trade-off: one heavy user makes every block carry that
width, so a block costs U_b * W ints (never U * W: only one block is built at a
time on the host); bucketing widths would save memory at the price of one
compile per bucket.

Ties: `lax.top_k` prefers lower indices, and ID-only, noise, MostPop and
cold-item scores tie a lot. Exact ties are ordered at random: a user's items
are ranked by (score descending, position ascending), where an item's
position is its place in one random permutation of the items per call
(`jax.random.permutation(key, I)`), cyclically shifted by a random offset
per user drawn from `fold_in(key, block)`. All-equal scores then give
Recall@K close to K / I, and tied users get different items. Scores that
differ are never reordered, and -0.0 counts as equal to 0.0. The order
depends only on the key and the block, not on the device count.

Three paths give that order, with identical results. On CPU, when the compiled
kernel is loaded and allowed (`mmjax.graph.kernel.topk.in_use`: the
propagation kernel's settings, MMJAX_KERNEL), both block functions select the
top K with it (`csrc/topk.cc`): a scan of each user's scores keeping only
the candidates that can still make the top K, by (score, position), each
device selecting its own rows, exact for every user, so there are no
candidates to overflow and no fallback; it also reads -0.0 as 0.0, so the
block skips that pass. At Amazon Baby's size on one thread a validation pass
took 3x less time than with the fast path below (bench/eval_speed.py).
Elsewhere (another backend, mode 'reference', no compiler) `lax.top_k` serves,
in two ways. The fast one (`block_fn`) takes `lax.top_k` of the raw scores
with C = K + K // 8 + 1 candidates and sorts those by (score, position); it is
exact for a user whenever the C-th candidate scores strictly below the K-th,
i.e. no tie crosses the candidate list's end. (XLA:CPU's top_k costs grow with
its k: 100 candidates cost about 1.5x 57 at K = 50.) A block where some user's
tie does cross (MostPop, kNN models with fewer than C non-zero scores) is
evaluated again by the exact path (`exact_block_fn`), which permutes the whole
item axis before `lax.top_k`; after the first block needs it, the remaining
blocks go to the exact path directly. The fast path saves the permuted gather
of [U_b, I] scores, which was 34% of an evaluation at Amazon Baby's size (7k
items).

Cold-item metrics ('recall@20/cold_items') rank all items as usual but count
only held-out items without a training interaction as relevant; they are
averaged over users with at least one such item (NaN for the others).

`exclude_items` removes items from every user's candidates (the
cold-items-only evaluator of mmjax/eval/evaluators.py removes the warm ones)
and counts, per user, the excluded items scored above the best remaining one.

Per-user vectors are saved with `save_per_user` as
`<workdir>/per_user_<split>.npz`, which `mmjax.eval.compare` reads.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable

import jax
from jax.experimental import multihost_utils
import jax.numpy as jnp
import ml_collections
import numpy as np

from mmjax import types
from mmjax.data import dataset as dataset_lib
from mmjax.eval import beyond
from mmjax.eval import metrics
from mmjax.graph.kernel import shuffle
from mmjax.graph.kernel import topk as topk_kernel
from mmjax.parallel import mesh as mesh_lib

Array = types.Array
P = jax.sharding.PartitionSpec
ScoreFn = Callable[[Any, Any, Array], Array]

COLD = '/cold_items'
BEYOND = ('arp', 'aplt', 'epc')


@dataclasses.dataclass(frozen=True, eq=False)
class EvalData:
  """Host-side evaluation data of one split, built once by `make_eval_data`.

  Attributes:
    split: dataset.VALID or dataset.TEST.
    num_users: U.
    num_items: I.
    mask_indptr: int64 [U + 1], CSR of the items masked per user: training
      items, plus validation items at test time when `mask_valid`.
    mask_indices: int32 [nnz_mask].
    held_indptr: int64 [U + 1], CSR of the relevant held-out items.
    held_indices: int32 [nnz_held], ascending within each user (the
      gains of a ranked list are looked up by binary search).
    held_graded: float32 [nnz_held], 2^(r - t + 1) - 1, or None when there is
      no relevance threshold.
    users: int32 [n_eval], users with >= 1 relevant held-out item, ascending.
    item_pop: int64 [I], distinct training users per item.
    user_train_counts: int64 [U], training interactions per user.
    cold_items: bool [I], items without a training interaction.
    long_tail: bool [I], see `beyond.long_tail_mask`.
    num_train_users: users with at least one training interaction.
    mask_valid: whether validation items are masked (test split only).
    relevance_threshold: t, or None (every held-out interaction relevant).
    split_hash: `dataset.split_hash` of the source dataset.
  """

  split: int
  num_users: int
  num_items: int
  mask_indptr: np.ndarray
  mask_indices: np.ndarray
  held_indptr: np.ndarray
  held_indices: np.ndarray
  held_graded: np.ndarray | None
  users: np.ndarray
  item_pop: np.ndarray
  user_train_counts: np.ndarray
  cold_items: np.ndarray
  long_tail: np.ndarray
  num_train_users: int
  mask_valid: bool
  relevance_threshold: float | None
  split_hash: str


def _csr(
    user: np.ndarray, item: np.ndarray, num_users: int, num_items: int,
    values: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
  """Deduplicated CSR (indptr int64 [U+1], indices int32, values or None).

  A repeated (user, item) pair keeps its largest value.
  """
  key = user.astype(np.int64) * num_items + item.astype(np.int64)
  if values is not None:
    # Sort by key, then value, so the last of each run is the largest.
    order = np.lexsort((values, key))
    key, values = key[order], values[order]
    last = np.ones(len(key), bool)
    last[:-1] = key[1:] != key[:-1]
    key, values = key[last], values[last]
  else:
    key = np.unique(key)
  rows = key // num_items
  indptr = np.zeros(num_users + 1, np.int64)
  np.cumsum(np.bincount(rows, minlength=num_users), out=indptr[1:])
  return indptr, (key % num_items).astype(np.int32), values


def make_eval_data(
    ds: dataset_lib.Dataset,
    split: int,
    *,
    mask_valid: bool,
    relevance_threshold: float | None,
    head_share: float = 0.8,
) -> EvalData:
  """Builds the evaluation data of `split` from a dataset.

  A repeated (user, item) pair counts once (the largest rating). A held-out
  item that is also in the user's training history stays relevant but is
  masked, so it can never be a hit (as in MMRec and Elliot); the
  preprocessing step `deduplicate` removes such pairs.

  Args:
    ds: the dataset.
    split: dataset.VALID or dataset.TEST.
    mask_valid: at test time, also mask validation items. MMRec masks only
      training items at test (its test loader's additional dataset is the
      training set), as the CIKM 2025 protocol does: False matches it, and
      is the default of `eval.mask_valid_at_test`. Ignored for the
      validation split.
    relevance_threshold: t; a held-out interaction is relevant when its rating
      is >= t. None: every held-out interaction is relevant.
    head_share: share of training interactions covered by the short head.

  Returns:
    The EvalData.

  Raises:
    ValueError: `split` is not VALID or TEST.
    DataError: a threshold is given but a held-out rating is missing.
  """
  if split not in (dataset_lib.VALID, dataset_lib.TEST):
    raise ValueError(f'split must be VALID (1) or TEST (2), got {split}.')
  u_n, i_n = ds.num_users, ds.num_items
  train = ds.split == dataset_lib.TRAIN
  masked = train.copy()
  if split == dataset_lib.TEST and mask_valid:
    masked |= ds.split == dataset_lib.VALID
  mask_indptr, mask_indices, _ = _csr(ds.user[masked], ds.item[masked], u_n,
                                      i_n)
  held = ds.split == split
  graded = None
  if relevance_threshold is not None:
    name = dataset_lib.SPLIT_NAMES[split]
    if ds.rating is None:
      raise dataset_lib.DataError(
          f'relevance_threshold={relevance_threshold} needs ratings, but the '
          'dataset has none (set eval.relevance_threshold to None).'
      )
    rating = ds.rating[held]
    if np.isnan(rating).any():
      bad = int(np.flatnonzero(held)[np.flatnonzero(np.isnan(rating))[0]])
      raise dataset_lib.DataError(
          f'{name} interaction {bad} (user {ds.user_ids[ds.user[bad]]}, item '
          f'{ds.item_ids[ds.item[bad]]}) has no rating; '
          f'relevance_threshold={relevance_threshold} needs one.'
      )
    held &= np.nan_to_num(ds.rating, nan=-np.inf) >= relevance_threshold
    graded = (2.0 ** (ds.rating[held] - relevance_threshold + 1) - 1).astype(
        np.float32
    )
  held_indptr, held_indices, graded = _csr(
      ds.user[held], ds.item[held], u_n, i_n, graded
  )
  users = np.flatnonzero(np.diff(held_indptr) > 0).astype(np.int32)
  pop = beyond.item_popularity(ds.user[train], ds.item[train], i_n)
  user_counts = np.bincount(ds.user[train], minlength=u_n).astype(np.int64)
  return EvalData(
      split=split,
      num_users=u_n,
      num_items=i_n,
      mask_indptr=mask_indptr,
      mask_indices=mask_indices,
      held_indptr=held_indptr,
      held_indices=held_indices,
      held_graded=graded,
      users=users,
      item_pop=pop,
      user_train_counts=user_counts,
      cold_items=pop == 0,
      long_tail=beyond.long_tail_mask(pop, head_share),
      num_train_users=int((user_counts > 0).sum()),
      mask_valid=bool(mask_valid),
      relevance_threshold=relevance_threshold,
      split_hash=dataset_lib.split_hash(ds),
  )


@dataclasses.dataclass
class EvalResult:
  """What one evaluation returns.

  Attributes:
    per_user: metric name -> float64 [n_eval] ('recall@20', 'arp@20',
      'recall@20/cold_items' with NaN for users without a cold relevant item).
    users: int32 [n_eval], the evaluated users, in the order of `per_user`.
    summary: metric name -> float: means over users, 'coverage@K', 'gini@K',
      per-group means 'recall@20/group=0-5', cold-item means, and the user
      counts 'num_users', 'num_users/group=...', 'num_users/cold_items'.
    top_items: int32 [n_eval, K_max], each user's ranked recommendations.
  """

  per_user: dict[str, np.ndarray]
  users: np.ndarray
  summary: dict[str, float]
  top_items: np.ndarray


def _pow2(n: int) -> int:
  return 1 << max(int(n) - 1, 0).bit_length()


def pad_rows(
    indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray, width: int,
    fill: Any, values: np.ndarray | None = None,
) -> np.ndarray:
  """[len(rows), width] slice of a CSR, padded with `fill`.

  Args:
    indptr: int64 [U + 1].
    indices: int32 [nnz].
    rows: int [n], the rows to take.
    width: W, at least the largest count among `rows` (longer rows are cut).
    fill: the padding value.
    values: [nnz] values to take instead of `indices`, or None.

  Returns:
    [n, W] of `indices`' (or `values`') dtype.
  """
  start = indptr[rows][:, None]
  count = (indptr[rows + 1] - indptr[rows])[:, None]
  col = np.arange(width)[None]
  src = values if values is not None else indices
  if len(src) == 0:
    return np.full((len(rows), width), fill, src.dtype)
  idx = np.minimum(start + col, len(src) - 1)
  return np.where(col < count, src[idx], fill).astype(src.dtype)


def _bin_name(lo: float, hi: float) -> str:
  def fmt(v):
    return 'inf' if math.isinf(v) else f'{v:g}'

  return f'group={fmt(lo)}-{fmt(hi)}'


def group_means(per_user: dict[str, np.ndarray], train_counts: np.ndarray,
                groups: tuple[float, ...]) -> dict[str, float]:
  """Means of per-user metrics per group of training-history length.

  Group [lo, hi) of consecutive `groups` edges holds the users with lo <=
  training interactions < hi; its metrics are named '<metric>/group=lo-hi'
  (e.g. 'recall@20/group=0-5' for 0 to 4 interactions), with the user count
  'num_users/group=lo-hi'. An empty group has only its count. Cold-item
  metrics (suffix '/cold_items') are left out.

  Args:
    per_user: metric name -> float64 [n], as `EvalResult.per_user`.
    train_counts: int [n], each evaluated user's training interactions.
    groups: increasing edges, e.g. (0, 6, inf).

  Returns:
    name -> float.
  """
  out = {}
  for lo, hi in zip(groups, groups[1:]):
    sel = (train_counts >= lo) & (train_counts < hi)
    g = _bin_name(lo, hi)
    out[f'num_users/{g}'] = float(sel.sum())
    if not sel.any():
      continue
    for name, v in per_user.items():
      if not name.endswith(COLD):
        out[f'{name}/{g}'] = float(v[sel].mean())
  return out


class Evaluator:
  """Full-ranking evaluator of one split (see the module docstring).

  Usage:
    evaluator = Evaluator(make_eval_data(ds, VALID, ...), cfg.eval, mesh,
                          score_fn)
    result = evaluator(params, ctx, jax.random.fold_in(root, STREAM_EVAL))
  """

  def __init__(
      self,
      eval_data: EvalData,
      cfg_eval: ml_collections.ConfigDict,
      mesh: jax.sharding.Mesh | None,
      score_fn: ScoreFn,
      exclude_items: np.ndarray | None = None,
  ):
    """Builds the jitted block function; compiles on the first call.

    Args:
      eval_data: from `make_eval_data`.
      cfg_eval: the `eval` config section (topk, batch_users, gain,
        convention, relevance_threshold, mask_valid_at_test, user_groups).
      mesh: a mesh with a 'data' axis, or None for one device.
      score_fn: static function (params, ctx, users int32 [U_b]) -> float
        [U_b, I]; params and ctx are arguments of the jitted function.
      exclude_items: bool [I], items removed from every ranking (scored
        -inf like masked ones), or None. With it, the per-user metric
        'excluded_above' counts the excluded, unmasked items scored strictly
        above the user's best remaining candidate (ties not counted): the
        cold-items-only evaluator removes the warm items this way.

    Raises:
      ValueError: an inconsistent config.
    """
    self.data = d = eval_data
    self.ks = tuple(int(k) for k in cfg_eval.topk)
    self.k_max = max(self.ks)
    if self.k_max > d.num_items:
      raise ValueError(f'eval.topk {self.ks} exceeds the {d.num_items} items.')
    self.convention = cfg_eval.get('convention', 'mmrec')
    if self.convention not in metrics.CONVENTIONS:
      raise ValueError(f'eval.convention must be one of {metrics.CONVENTIONS},'
                       f' got {self.convention!r}.')
    self.gain = cfg_eval.get('gain', 'binary')
    if self.gain not in ('binary', 'graded'):
      raise ValueError(f"eval.gain must be 'binary' or 'graded', got "
                       f'{self.gain!r}.')
    if self.gain == 'graded':
      if self.convention == 'mmrec':
        raise ValueError("eval.gain='graded' needs eval.convention='elliot' "
                         '(MMRec defines binary gains only).')
      if d.held_graded is None:
        raise ValueError("eval.gain='graded' needs eval.relevance_threshold.")
    t = cfg_eval.get('relevance_threshold', None)
    if t != d.relevance_threshold:
      raise ValueError(f'eval.relevance_threshold={t} but the EvalData was '
                       f'built with {d.relevance_threshold}.')
    mask_valid = bool(cfg_eval.get('mask_valid_at_test', False))
    if d.split == dataset_lib.TEST and mask_valid != d.mask_valid:
      raise ValueError('eval.mask_valid_at_test disagrees with the EvalData '
                       f'(mask_valid={d.mask_valid}).')
    groups = cfg_eval.get('user_groups', None)
    self.groups = tuple(float(g) for g in groups) if groups else None
    if self.groups and any(
        a >= b for a, b in zip(self.groups, self.groups[1:])):
      raise ValueError(f'eval.user_groups must increase, got {groups}.')

    self.mesh = mesh
    n_dev = mesh.size if mesh is not None else 1
    b = int(cfg_eval.get('batch_users', 1024))
    b = min(b, max(len(d.users), 1))
    self.block = -(-b // n_dev) * n_dev  # A multiple of the device count.
    def width(indptr):
      counts = indptr[d.users + 1] - indptr[d.users]
      return _pow2(max(int(counts.max(initial=0)), 1))

    self.mask_width = width(d.mask_indptr)
    self.held_width = width(d.held_indptr)

    if mesh is not None:
      self._rows = jax.sharding.NamedSharding(mesh, P(mesh_lib.AXIS))
      self._repl = jax.sharding.NamedSharding(mesh, P())
    else:
      # make_single_device_sharding: the class itself is deprecated from
      # JAX 0.12; the function exists from 0.10 on.
      self._rows = self._repl = jax.sharding.make_single_device_sharding(
          jax.devices()[0])
    self.exclude_items = exclude_items
    if exclude_items is not None:
      exclude_items = np.asarray(exclude_items, bool)
      if exclude_items.shape != (d.num_items,):
        raise ValueError(f'exclude_items has shape {exclude_items.shape}, '
                         f'expected ({d.num_items},).')
    self._item_stats = jax.device_put(
        (
            d.cold_items.astype(np.float32),
            d.item_pop.astype(np.float32),
            d.long_tail,
            beyond.novelty(d.item_pop, d.num_train_users),
            np.zeros(d.num_items, bool) if exclude_items is None
            else exclude_items,
        ),
        self._repl,
    )
    self._score_fn = score_fn
    self.block_fn = jax.jit(functools.partial(self._block, exact=False))
    self.exact_block_fn = jax.jit(functools.partial(self._block, exact=True))
    self._item_order = jax.jit(functools.partial(_item_order,
                                                 num_items=d.num_items),
                               out_shardings=(self._repl, self._repl))

  def _block(self, params, ctx, users, mask_items, held_items, held_gains,
             block_index, key, item_order, item_stats, *, exact):
    """Per-user metrics of one user block, on device.

    Args:
      params: model parameters (replicated).
      ctx: model context (replicated).
      users: int32 [U_b].
      mask_items: int32 [U_b, W_m], items to mask, padded with I.
      held_items: int32 [U_b, W_h], relevant held-out items, ascending,
        padded with I.
      held_gains: float32 [U_b, W_h], their gains, padded with 0.
      block_index: int32 [], folded into `key` for the tie-break order.
      key: the evaluation key.
      item_order: (perm, rank) int32 [I] each, the call's random item order
        and its inverse (`_item_order`).
      item_stats: (cold float32 [I], pop float32 [I], long tail bool [I],
        novelty float32 [I], excluded bool [I]).
      exact: static; True permutes every score (`_top_k_exact`), False takes
        the fast path (`_top_k_fast`), which may report that it was not
        exact for some users. Ignored when the top-K kernel serves
        (`topk_kernel.in_use()` at trace time): it is exact for every user.

    Returns:
      name -> float32 [U_b], plus 'top_items' int32 [U_b, K_max] and
      'fast_ok' bool [U_b] (True where the top K is the exact one).
    """
    cold, pop, tail, nov, excluded = item_stats
    n_items, ub = self.data.num_items, users.shape[0]
    scores = self._score_fn(params, ctx, users).astype(jnp.float32)
    assert scores.shape == (ub, n_items), scores.shape
    if self.mesh is not None:
      scores = jax.lax.with_sharding_constraint(scores, self._rows)
    rows = jnp.arange(ub)[:, None]
    # Padding entries hold item id I, out of range, and are dropped.
    scores = scores.at[rows, mask_items].set(-jnp.inf, mode='drop')
    use_kernel = topk_kernel.in_use()
    if not use_kernel:
      # top_k orders -0.0 below 0.0; here they tie, as they are equal. (The
      # kernel reads -0.0 as 0.0 itself: this pass's fresh [U_b, I] buffer
      # cost more than the kernel's selection, in page faults.)
      scores = jnp.where(scores == 0, 0.0, scores)
    if self.exclude_items is not None:
      kept = jnp.where(excluded[None], -jnp.inf, scores)  # [U_b, I]
      best_kept = kept.max(axis=1, keepdims=True)  # [U_b, 1]
      excluded_above = jnp.sum(excluded[None] & (scores > best_kept)
                               & (scores > -jnp.inf), axis=1)  # [U_b]
      scores = kept
    perm, rank = item_order
    shift = jax.random.randint(jax.random.fold_in(key, block_index), (ub,), 0,
                               n_items)
    if use_kernel:
      top_scores, top_items = topk_kernel.top_k(scores, self.k_max, perm, rank,
                                                shift, mesh=self.mesh)
      fast_ok = jnp.ones((ub,), bool)
    elif exact:
      top_scores, top_items = _top_k_exact(scores, self.k_max, perm, shift)
      fast_ok = jnp.ones((ub,), bool)
    else:
      top_scores, top_items, fast_ok = _top_k_fast(scores, self.k_max, rank,
                                                    shift)
    gains = _gains_of(top_items, held_items, held_gains)  # [U_b, K]
    # A masked item reaches the top K only when fewer than K remain.
    gains = jnp.where(top_scores > -jnp.inf, gains, 0.0)
    valid = held_items < n_items
    n_rel = valid.sum(axis=1)
    is_cold = cold[jnp.minimum(held_items, n_items - 1)] * valid  # [U_b, W_h]
    n_cold = is_cold.sum(axis=1)
    if self.gain == 'binary':
      # Every relevant gain is 1: the ideal list is n ones, no sort needed.
      slots = jnp.arange(held_gains.shape[1])[None]
      ideal = (slots < n_rel[:, None]).astype(jnp.float32)
      cold_ideal = (slots < n_cold[:, None]).astype(jnp.float32)
    else:
      ideal = -jnp.sort(-held_gains, axis=1)
      cold_ideal = -jnp.sort(-(held_gains * is_cold), axis=1)
    out = metrics.compute(gains, ideal, n_rel, self.ks, self.convention)
    cold_gains = gains * cold[top_items]
    for name, v in metrics.compute(cold_gains, cold_ideal, n_cold, self.ks,
                                   self.convention).items():
      out[name + COLD] = v
    out.update(beyond.compute(top_items, gains, pop, tail, nov, self.ks))
    if self.exclude_items is not None:
      out['excluded_above'] = excluded_above.astype(jnp.float32)
    out['num_relevant'] = n_rel.astype(jnp.float32)
    out['num_relevant' + COLD] = n_cold.astype(jnp.float32)
    out['top_items'] = top_items
    out['fast_ok'] = fast_ok
    return out

  def __call__(self, params, ctx, key) -> EvalResult:
    """Evaluates every user of the split.

    Args:
      params: model parameters (any pytree the score function takes).
      ctx: model context.
      key: a PRNG key for the tie-break order.

    Returns:
      The EvalResult.
    """
    d = self.data
    params, ctx, key = jax.device_put((params, ctx, key), self._repl)
    item_order = self._item_order(key)
    gains_src = d.held_graded if self.gain == 'graded' else None
    outs, sizes, fast, use_exact = [], [], [], False
    for bi, start in enumerate(range(0, len(d.users), self.block)):
      rows = d.users[start:start + self.block]
      sizes.append(len(rows))
      # Pad the last block with copies of its first user; dropped below.
      rows = np.concatenate(
          [rows, np.full(self.block - len(rows), rows[0], np.int32)])
      mask = pad_rows(d.mask_indptr, d.mask_indices, rows, self.mask_width,
                       d.num_items)
      held = pad_rows(d.held_indptr, d.held_indices, rows, self.held_width,
                       d.num_items)
      if gains_src is None:
        gains = (held < d.num_items).astype(np.float32)
      else:
        gains = pad_rows(d.held_indptr, d.held_indices, rows,
                          self.held_width, 0.0, gains_src)
      batch = jax.device_put((rows, mask, held, gains), self._rows)
      index = jax.device_put(np.int32(bi), self._repl)
      args = (params, ctx, *batch, index, key, item_order, self._item_stats)
      if not use_exact:
        out = self.block_fn(*args)
        # One sync: when the first block has ties across the candidates
        # (MostPop, kNN), the rest most likely do too.
        if bi == 0 and not _to_host(out['fast_ok']).all():
          use_exact = True
        else:
          fast.append((bi, args))
      if use_exact:
        out = self.exact_block_fn(*args)
      outs.append(out)
    # The fast path's results stand only where it was exact for every user.
    fast_ok = _to_host([outs[bi]['fast_ok'] for bi, _ in fast])
    for (bi, args), ok in zip(fast, fast_ok):
      if not ok.all():
        outs[bi] = self.exact_block_fn(*args)
    host = _to_host(outs)
    for o in host:
      del o['fast_ok']
    cat = {
        name: np.concatenate([o[name][:n] for o, n in zip(host, sizes)])
        for name in (host[0] if host else {})
    }
    return self._finish(cat)

  def _finish(self, cat: dict[str, np.ndarray]) -> EvalResult:
    """Host-side float64 means, groups, cold items, coverage and Gini."""
    d = self.data
    if not cat:
      return EvalResult({}, d.users, {'num_users': 0.0},
                        np.zeros((0, self.k_max), np.int32))
    top_items = cat.pop('top_items')
    cat.pop('num_relevant')
    n_cold = cat.pop('num_relevant' + COLD)
    per_user = {k: v.astype(np.float64) for k, v in cat.items()}
    has_cold = n_cold > 0
    for name in per_user:
      if name.endswith(COLD):
        per_user[name][~has_cold] = np.nan
    summary = {'num_users': float(len(d.users)),
               'num_users' + COLD: float(has_cold.sum())}
    for name, v in per_user.items():
      if name.endswith(COLD):
        summary[name] = (float(v[has_cold].mean()) if has_cold.any()
                         else math.nan)
      else:
        summary[name] = float(v.mean())
    for k in self.ks:
      summary[f'coverage@{k}'] = beyond.coverage(top_items, d.num_items, k)
      summary[f'gini@{k}'] = beyond.gini(top_items, d.num_items, k)
    if self.groups:
      summary.update(group_means(per_user, d.user_train_counts[d.users],
                                 self.groups))
    return EvalResult(per_user, d.users, summary, top_items)


def _item_order(key: Array, num_items: int) -> tuple[Array, Array]:
  """A random permutation of the items and its inverse, int32 [I] each.

  `jax.random.permutation`'s, sorted on the kernel where it serves
  (mmjax/graph/kernel/shuffle.py: bitwise the same, and no XLA sort to
  compile on a cold start).
  """
  perm = shuffle.permutation(key, num_items).astype(jnp.int32)
  rank = jnp.zeros_like(perm).at[perm].set(jnp.arange(num_items,
                                                      dtype=jnp.int32))
  return perm, rank


def _top_k_exact(scores: Array, k: int, perm: Array, shift: Array
                 ) -> tuple[Array, Array]:
  """Top k by (score descending, position ascending), for any ties.

  Each user's item axis is put in the order of `perm`, cyclically shifted by
  the user's `shift`, before `lax.top_k` (which prefers lower indices among
  equal values), and mapped back (`topk_kernel.reference`, the definition
  the kernel is tested against). Costs a gather of every score: about 3x a
  plain `top_k` on CPU (measured at [256, 10000], K = 50).

  Args:
    scores: float32 [U_b, I].
    k: the cut-off.
    perm: int32 [I], a random permutation of the items.
    shift: int32 [U_b], each user's offset into `perm`.

  Returns:
    (top scores float32 [U_b, k], top items int32 [U_b, k]).
  """
  return topk_kernel.reference(scores, k, perm, shift)


def _top_k_fast(scores: Array, k: int, rank: Array, shift: Array
                ) -> tuple[Array, Array, Array]:
  """`_top_k_exact`'s result from C candidates, where no tie crosses them.

  The C = k + k // 8 + 1 best scores (any order among equal ones) contain
  every item scoring at least the k-th best score t whenever the C-th scores
  strictly below t; sorting those candidates by (score descending, position
  ascending) then gives exactly `_top_k_exact`'s list. Position of item i
  for a user: (rank[i] - shift) mod I, its index in the user's shifted
  permuted order.

  Args:
    scores: float32 [U_b, I], no NaN; -0.0 already replaced by 0.0.
    k: the cut-off.
    rank: int32 [I], the inverse of `_top_k_exact`'s `perm`.
    shift: int32 [U_b], as in `_top_k_exact`.

  Returns:
    (top scores float32 [U_b, k], top items int32 [U_b, k], ok bool [U_b]:
    True where the list is exact).
  """
  n_items = scores.shape[1]
  n_cand = min(k + k // 8 + 1, n_items)
  cand_scores, cand_items = jax.lax.top_k(scores, n_cand)  # [U_b, C]
  pos = (rank[cand_items] - shift[:, None]) % n_items
  neg, _, items = jax.lax.sort((-cand_scores, pos, cand_items), dimension=1,
                               num_keys=2)
  # Reductions, not slices, of top_k's values: a slice makes XLA:CPU
  # replace top_k by a full sort of the row (about 50x slower).
  kth = jnp.min(jnp.where(jnp.arange(n_cand) < k, cand_scores, jnp.inf),
                axis=1)
  ok = (cand_scores.min(axis=1) < kth) | (n_cand == n_items)
  return -neg[:, :k], items[:, :k], ok


def _gains_of(top_items: Array, held_items: Array, held_gains: Array
              ) -> Array:
  """The gain of each ranked item, 0 where it is not held out.

  Args:
    top_items: int32 [U_b, K], each in [0, I).
    held_items: int32 [U_b, W_h], ascending per row, padded with I.
    held_gains: float32 [U_b, W_h].

  Returns:
    float32 [U_b, K].
  """
  at = jax.vmap(jnp.searchsorted)(held_items, top_items)
  at = jnp.minimum(at, held_items.shape[1] - 1)
  hit = jnp.take_along_axis(held_items, at, axis=1) == top_items
  return jnp.where(hit, jnp.take_along_axis(held_gains, at, axis=1), 0.0)


def _to_host(tree):
  """Device arrays to numpy; gathers across processes when multi-host."""

  def get(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
      # Each process holds only its devices' rows of a user block.
      return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(jax.device_get(x))

  return jax.tree.map(get, tree)


def embedding_score(params, ctx, users: Array) -> Array:
  """Score function of a dot-product model from precomputed embeddings.

  Pass `params=(user_emb [U, D], item_emb [I, D])` (the model's `embed`
  output, computed once per evaluation); the block function compiles once.

  Returns:
    float32 [U_b, I].
  """
  del ctx
  user_emb, item_emb = params
  return user_emb[users] @ item_emb.T  # [U_b, D] @ [D, I] -> [U_b, I]


def save_per_user(
    result: EvalResult, path: str, *, split_hash: str, split: str,
    name: str | None = None,
) -> None:
  """Writes per-user vectors to `path` (`<workdir>/per_user_<split>.npz`).

  The file holds 'users' int32 [n], 'metric_names' str [m], 'values' float64
  [m, n] (row j is metric_names[j]), 'split_hash' and 'split' (0-d str) and
  'name' (the run name, '' when None), so `compare` needs no other file.
  """
  names = sorted(result.per_user)
  values = (np.stack([result.per_user[n] for n in names]) if names
            else np.zeros((0, len(result.users))))
  np.savez(
      path,
      users=np.asarray(result.users, np.int32),
      metric_names=np.asarray(names, dtype=str),
      values=values.astype(np.float64),
      split_hash=np.asarray(split_hash),
      split=np.asarray(split),
      name=np.asarray(name or ''),
  )


def load_per_user(path: str) -> dict[str, Any]:
  """Reads a `save_per_user` file.

  Returns:
    {'users': int32 [n], 'per_user': name -> float64 [n], 'split_hash': str,
     'split': str, 'name': str}.

  Raises:
    DataError: the file lacks a field.
  """
  with np.load(path, allow_pickle=False) as z:
    missing = {'users', 'metric_names', 'values', 'split_hash',
               'split'} - set(z.files)
    if missing:
      raise dataset_lib.DataError(
          f'{path}: not a per-user metrics file (missing {sorted(missing)}).')
    names = [str(n) for n in z['metric_names']]
    values = z['values']
    return {
        'users': z['users'],
        'per_user': dict(zip(names, values)),
        'split_hash': str(z['split_hash']),
        'split': str(z['split']),
        'name': str(z['name']) if 'name' in z.files else '',
    }
