"""Losses and regularisers shared by the models.

Every function takes a padded batch's `mask` (float32 [B], 1 for real rows,
0 for the padding of the last batch) and averages over the real rows only,
so a padded batch gives the loss of its real rows. Each docstring names the
reference formula it reproduces (MMRec's `common/loss.py`, the models' own
losses, Elliot's regularisers).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from mmjax import types


def negatives_2d(neg: types.Array) -> types.Array:
  """Negatives as [B, k] whether the batch holds [B] or [B, k]."""
  return neg[:, None] if neg.ndim == 1 else neg


def _zero_padding(t: types.Array, mask: types.Array) -> types.Array:
  """[B, ...] t with the padded rows (mask 0) zeroed."""
  return t * mask.reshape(mask.shape + (1,) * (t.ndim - 1))


def weighted_mean(x: types.Array, weight: types.Array) -> types.Array:
  """sum(w x) / max(sum(w), 1): the mean over real (unpadded) rows."""
  return jnp.sum(weight * x) / jnp.maximum(weight.sum(), 1.0)


def fold_onto_table(rows: types.Array, weight: types.Array | None,
                    num_rows: int) -> tuple[types.Array | None, Any]:
  """Where a batch has more rows than its table, its weights per table row.

  A batch's sum of weight_j f(table[rows_j]) equals the table's sum of
  c_t f(table[t]), c_t the summed weight of the rows drawn as t: cheaper
  where the table has fewer rows than the batch (ML-100K's 938 users under a
  batch of 2048), and the same gradient, since duplicates' gradients add up
  either way. MGCN's and LGMRec's contrastive terms, and BM3's predictor,
  take that path.

  Args:
    rows: int [B], the batch's rows of the table.
    weight: [B] the rows' weights (e.g. the batch's mask), or None.
    num_rows: T, the table's number of rows (static).

  Returns:
    (take, weight): `take` is None where T < B, and `weight` then the [T]
    summed weights (None if none were given): use every table row. Otherwise
    `take` is `rows` and `weight` as given: gather the batch's rows.
  """
  if num_rows >= rows.shape[0]:
    return rows, weight
  if weight is None:
    return None, None
  return None, jnp.zeros(num_rows, weight.dtype).at[rows].add(weight)


def bpr_loss(pos: types.Array, neg: types.Array,
             mask: types.Array) -> types.Array:
  """MMRec's BPRLoss, mean of -log(1e-10 + sigmoid(pos - neg)).

  Each (u, i, j) triple is one term; padded rows (mask 0) weigh nothing.

  Args:
    pos: [B] positive scores.
    neg: [B, k] negative scores (k negatives per positive).
    mask: float32 [B], 1 for real examples.

  Returns:
    float32 [].
  """
  per = -jnp.log(1e-10 + jax.nn.sigmoid(pos[:, None] - neg))  # [B, k]
  return jnp.sum(per.mean(axis=1) * mask) / jnp.maximum(mask.sum(), 1.0)


def bpr_logsigmoid(
    s_pos: types.Array, s_neg: types.Array, mask: types.Array
) -> types.Array:
  """-log sigmoid(s_pos - s_neg), mean over the k negatives, then the rows.

  FREEDOM's and LATTICE's own `bpr_loss` (no 1e-10 inside the log).

  Args:
    s_pos: [B] positive scores.
    s_neg: [B, k] negative scores.
    mask: float32 [B], 1 for real rows.

  Returns:
    float32 [].
  """
  per = -jax.nn.log_sigmoid(s_pos[:, None] - s_neg).mean(axis=1)
  return weighted_mean(per, mask)


def neg_scores(u: types.Array, items: types.Array) -> types.Array:
  """Scores [B, k] of users u [B, D] against their negatives items [B, k, D].

  An einsum, not `sum(u[:, None] * items, -1)`: XLA:CPU runs that broadcast
  product and reduction as one slow fused reduction (0.6-0.8 ms against
  0.25 ms forward and backward at B=2048, k=1, D=64-128, one thread); the
  values agree to float32 rounding.
  """
  return jnp.einsum('bd,bkd->bk', u, items)


def bpr_dot(user_emb: types.Array, item_emb: types.Array, batch: dict
            ) -> types.Array:
  """`bpr_loss` of a batch scored by dot products of final embeddings.

  Args:
    user_emb: [U, D].
    item_emb: [I, D].
    batch: 'users' [B], 'pos' [B], 'neg' [B] or [B, k], 'mask' [B].

  Returns:
    float32 [].
  """
  neg = negatives_2d(batch['neg'])
  u = user_emb[batch['users']]  # [B, D]
  pos_s = jnp.sum(u * item_emb[batch['pos']], -1)  # [B]
  neg_s = neg_scores(u, item_emb[neg])  # [B, k]
  return bpr_loss(pos_s, neg_s, batch['mask'])


def frobenius(x: types.Array) -> types.Array:
  """||x||_F (torch.norm(x, p=2) of a whole tensor), zero-safe in grad."""
  sq = jnp.sum(x * x)
  # sqrt'(0) is infinite: keep the gradient of an all-zero tensor at 0.
  safe = jnp.where(sq > 0, sq, 1.0)
  return jnp.where(sq > 0, jnp.sqrt(safe), 0.0)


def emb_loss(mask: types.Array, *tensors: types.Array) -> types.Array:
  """MMRec's EmbLoss on a padded batch: sum of Frobenius norms / batch size.

  The norms are not squared (`torch.norm(x, p=2)` of a matrix), as in MMRec's
  `common/loss.py`; padded rows are zeroed and not counted in the size.

  Args:
    mask: float32 [B], 1 for real examples.
    *tensors: [B, ...] embeddings of the batch (e.g. negatives [B, k, D]).

  Returns:
    float32 [].
  """
  total = sum(frobenius(_zero_padding(t, mask)) for t in tensors)
  return total / jnp.maximum(mask.sum(), 1.0)


def ego_emb_loss(user_table: types.Array, item_table: types.Array,
                 batch: dict) -> types.Array:
  """`emb_loss` of the batch's rows of the ID tables (MMRec's BPR, LightGCN).

  Args:
    user_table: [U, D].
    item_table: [I, D].
    batch: 'users' [B], 'pos' [B], 'neg' [B] or [B, k], 'mask' [B].

  Returns:
    float32 [].
  """
  neg = negatives_2d(batch['neg'])
  return emb_loss(batch['mask'], user_table[batch['users']],
                  item_table[batch['pos']], item_table[neg])


def bpr_ego_reg(user_emb: types.Array, item_emb: types.Array,
                user_table: types.Array, item_table: types.Array,
                batch: dict, reg_weight: float
                ) -> tuple[types.Array, dict[str, types.Array]]:
  """MMRec's BPR-MF / LightGCN loss: `bpr_dot` + reg_weight `ego_emb_loss`.

  Args:
    user_emb: final user embeddings [U, D] (the scores' side).
    item_emb: final item embeddings [I, D].
    user_table: the ID table [U, D] the regulariser reads (layer 0).
    item_table: the ID table [I, D].
    batch: 'users' [B], 'pos' [B], 'neg' [B] or [B, k], 'mask' [B].
    reg_weight: the regulariser's weight.

  Returns:
    (total [], {'bpr': [], 'reg': []}).
  """
  mf = bpr_dot(user_emb, item_emb, batch)
  reg = ego_emb_loss(user_table, item_table, batch)
  return mf + reg_weight * reg, {'bpr': mf, 'reg': reg}


def row_sq_norms(t: types.Array) -> types.Array:
  """|t_r|^2 of every row along the last axis: [..., D] -> [...]."""
  return jnp.sum(t * t, axis=-1)


def squared_rows(mask: types.Array, *tensors: types.Array) -> types.Array:
  """Sum of |t|^2 over the real rows of [B, ...] tensors, divided by B.

  Elliot's `tf.nn.l2_loss`-style regulariser (the 1/2 is the caller's).

  Args:
    mask: float32 [B], 1 for real rows.
    *tensors: [B, ...] batch tensors.

  Returns:
    float32 [].
  """
  total = sum(jnp.sum(_zero_padding(t, mask) * t) for t in tensors)
  return total / jnp.maximum(mask.sum(), 1.0)
