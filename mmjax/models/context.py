"""The model context: the non-trainable inputs every model reads.

`ModelContext` is a frozen pytree passed to `init`, `loss`, `embed`, `score`
and `fit` as a jit ARGUMENT, so graphs and features are never folded into the
compiled program as constants (the program's size does not grow with the
data; tests/train/loop_test.py checks it).

Features come from the feature store (`mmjax/data/store.py`) for
`features.sources = {modality: representation}`; the controls and the
transform (`mmjax/models/controls.py`) are applied here; items the extractor
failed on keep a zero row and `False` in `masks`. What was done is returned
as a record that the run info stores.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import jax
import numpy as np

from mmjax.data import dataset as dataset_lib
from mmjax.data import store
from mmjax.graph import sparse
from mmjax.models import controls


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
    raw = controls.control_features(feat.values, feat.mask, control, seed,
                                    modality)
    values, rec = controls.transform_features(raw, feat.mask,
                                              features_cfg.transform)
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


def prepared(ctx: ModelContext, cfg: Any, prepare: Any) -> Any:
  """The model's `prepare(ctx, cfg)` output, from the context if it is there.

  The loop puts it in `extras[cfg.name]`; tests and callers that build
  a bare context get it computed now.

  Args:
    ctx: the context.
    cfg: the model's config section (its `name` keys the extras).
    prepare: the model's `prepare` function.

  Returns:
    What `prepare(ctx, cfg)` returns.
  """
  extras = getattr(ctx, 'extras', None) or {}
  if cfg.name in extras:
    return extras[cfg.name]
  return prepare(ctx, cfg)
