"""The model context: the non-trainable inputs every model reads.

`ModelContext` is a frozen pytree passed to `init`, `loss`, `embed`, `score`
and `fit` as a jit ARGUMENT, so graphs and features are never folded into the
compiled program as constants (the program's size does not grow with the
data; tests/train/loop_test.py checks it).

Features come from the feature store (`mmjax/data/store.py`) for
`features.sources = {modality: representation}` and are transformed here, on
the JAX side of the pipeline (`features.transform`: none | l2 | standardize |
pca:k); items the extractor failed on keep a zero row and `False` in `masks`.
What was done is returned as a record that the run info stores.

Controls (`features.control`: none | shuffle | noise, on the modalities in
`features.control_modalities`, all when empty) replace the real features by
ones that carry no item information, to show whether a model uses content:
`shuffle` permutes the rows among the items that have the modality (the same
values and the same missing items, attached to the wrong items); `noise`
draws each present row from a Gaussian with the real features' per-dimension
mean and standard deviation. Both happen before the transform and are seeded
by `seed` and the modality's name.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mmjax import types
from mmjax.data import dataset as dataset_lib
from mmjax.data import store
from mmjax.graph import sparse


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class ModelContext:
  """Non-trainable model inputs.

  Attributes:
    graph: the symmetric-normalised user-item graph on N = U + I nodes (items
      offset by U), built from TRAIN interactions only.
    features: modality -> float32 [I, F_m], in `sorted(sources)` order.
    masks: modality -> bool [I], False where the item lacks the modality.
    item_popularity: float32 [I], training interactions per item.
    extras: model name -> whatever the model's optional `prepare(ctx, cfg)`
      returned (frozen precomputed data such as kNN item graphs).
    num_users: U (static).
    num_items: I (static).
  """

  graph: sparse.Graph
  features: dict[str, Any]
  masks: dict[str, Any]
  item_popularity: Any
  extras: dict[str, Any]
  num_users: int = jax.tree.static()
  num_items: int = jax.tree.static()

  @property
  def modalities(self) -> tuple[str, ...]:
    return tuple(self.features)


def transform_features(
    values: np.ndarray, mask: np.ndarray, how: str | None
) -> tuple[np.ndarray, dict[str, Any]]:
  """Applies a feature transform, with statistics over the present items.

  Args:
    values: float [I, F].
    mask: bool [I]; masked rows stay zero and do not enter the statistics.
    how: 'none', 'l2', 'standardize' or 'pca:k'.

  Returns:
    (float32 [I, F'] transformed, a record of what was done).

  Raises:
    ValueError: an unknown transform or an impossible k.
  """
  x = np.asarray(values, np.float64)
  present = x[mask]
  how = how or 'none'
  if how == 'none':
    out, record = x, {'transform': 'none'}
  elif how == 'l2':
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    out, record = x / np.maximum(norm, 1e-12), {'transform': 'l2'}
  elif how == 'standardize':
    if not len(present):
      raise ValueError('standardize: no item has this feature.')
    mean, std = present.mean(0), present.std(0)
    # A constant column stays constant (0) instead of dividing by zero.
    out = (x - mean) / np.where(std > 1e-12, std, 1.0)
    record = {'transform': 'standardize'}
  elif how.startswith('pca:'):
    try:
      k = int(how.split(':', 1)[1])
    except ValueError as e:
      raise ValueError(
          f'features.transform {how!r}: expected pca:<int>.') from e
    if not 0 < k <= min(present.shape):
      raise ValueError(f'features.transform {how!r} needs 0 < k <= '
                       f'{min(present.shape)} (items x dims present).')
    mean = present.mean(0)
    _, s, vt = np.linalg.svd(present - mean, full_matrices=False)
    # Fix each component's sign (largest |loading| positive) so that the
    # result does not depend on the LAPACK build.
    signs = np.sign(vt[np.arange(k), np.abs(vt[:k]).argmax(1)])
    out = (x - mean) @ (vt[:k].T * signs)
    record = {'transform': how, 'explained_variance':
              float((s[:k] ** 2).sum() / max((s ** 2).sum(), 1e-30))}
  else:
    raise ValueError(f'unknown features.transform {how!r}; use none, l2, '
                     'standardize or pca:k.')
  out = np.where(mask[:, None], out, 0.0).astype(np.float32)
  return out, record


CONTROLS = ('none', 'shuffle', 'noise')


def control_features(values: np.ndarray, mask: np.ndarray, how: str,
                     seed: int, modality: str) -> np.ndarray:
  """A control in place of real features (module doc).

  Args:
    values: float [I, F], the real features.
    mask: bool [I], True where the item has the modality.
    how: 'none', 'shuffle' or 'noise'.
    seed: the run's seed.
    modality: the modality's name (each modality gets its own stream).

  Returns:
    float [I, F]; rows of items without the modality are unchanged.
  """
  if how == 'none':
    return values
  if how not in CONTROLS:
    raise ValueError(f'unknown features.control {how!r}; use one of '
                     f'{CONTROLS}.')
  stream = int.from_bytes(hashlib.sha256(modality.encode()).digest()[:4],
                          'little')
  rng = np.random.default_rng([seed, 0xC0417, stream])
  present = np.flatnonzero(mask)
  out = np.array(values, copy=True)
  if how == 'shuffle':
    out[present] = values[rng.permutation(present)]
  else:
    real = np.asarray(values[present], np.float64)
    noise = rng.standard_normal(real.shape)
    out[present] = real.mean(0) + noise * real.std(0)
  return out


def _sha256(path: str) -> str:
  with open(path, 'rb') as f:
    return hashlib.sha256(f.read()).hexdigest()


def make_context(
    ds: dataset_lib.Dataset,
    dataset_dir: str | None = None,
    features_cfg: Any = None,
    seed: int = 0,
) -> tuple[ModelContext, dict[str, Any]]:
  """Builds the context of a dataset on the host (numpy leaves).

  Args:
    ds: the dataset.
    dataset_dir: its directory (for the feature store); may be None when no
      feature is configured.
    features_cfg: the `features` config section or None.
    seed: seeds the feature controls (the run's `config.seed`).

  Returns:
    (context, record): the record maps each modality to its representation,
    store manifest hash, dim, failed items and transform.
  """
  users, items = ds.select(dataset_lib.TRAIN)
  graph = sparse.sym_normalize(
      sparse.bipartite(users, items, ds.num_users, ds.num_items))
  features, masks, record = {}, {}, {}
  sources = dict(features_cfg.sources or {}) if features_cfg else {}
  controlled = tuple(features_cfg.get('control_modalities') or ()
                     ) if features_cfg else ()
  if set(controlled) - set(sources):
    raise ValueError(f'features.control_modalities {controlled} names '
                     f'modalities that are not in features.sources '
                     f'{sorted(sources)}.')
  for modality, name in sorted(sources.items()):
    if not name:
      continue
    if dataset_dir is None:
      raise ValueError(f'features.sources.{modality}={name!r} needs a '
                       'dataset directory.')
    feat = store.load(dataset_dir, name, ds.item_ids)
    control = 'none'
    if modality in (controlled or sources):
      control = features_cfg.get('control') or 'none'
    raw = control_features(feat.values, feat.mask, control, seed, modality)
    values, rec = transform_features(raw, feat.mask, features_cfg.transform)
    features[modality] = values
    masks[modality] = feat.mask
    _, js = store.feature_paths(dataset_dir, name)
    record[modality] = {
        'representation': name,
        'manifest_sha256': _sha256(js),
        'extractor': feat.manifest.get('extractor'),
        'dim': int(values.shape[1]),
        'failed_items': int((~feat.mask).sum()),
        'control': control,
        **rec,
    }
  popularity = np.bincount(items, minlength=ds.num_items).astype(np.float32)
  ctx = ModelContext(
      graph=graph, features=features, masks=masks,
      item_popularity=popularity, extras={}, num_users=ds.num_users,
      num_items=ds.num_items)
  return ctx, record


def dot_scores(user_emb: types.Array, item_emb: types.Array,
               users: types.Array) -> types.Array:
  """[U_b, I] scores of a user block: u_emb[users] @ i_emb.T."""
  return user_emb[users] @ item_emb.T  # [U_b, D] @ [D, I]


def negatives_2d(neg: types.Array) -> types.Array:
  """Negatives as [B, k] whether the batch holds [B] or [B, k]."""
  return neg[:, None] if neg.ndim == 1 else neg


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


def _frobenius(x: types.Array) -> types.Array:
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
  total = jnp.zeros((), jnp.float32)
  for t in tensors:
    m = mask.reshape(mask.shape + (1,) * (t.ndim - 1))
    total = total + _frobenius(t * m)
  return total / jnp.maximum(mask.sum(), 1.0)
