"""What the models see of the item features: transforms and null controls.

Features are transformed on the JAX side of the pipeline
(`features.transform`: none | l2 | standardize | pca:k), with statistics over
the items that have the modality.

Controls (`features.control`: none | shuffle | noise, on the modalities in
`features.control_modalities`, all when empty) replace the real features by
ones that carry no item information, to show whether a model uses content:
`shuffle` permutes the rows among the items that have the modality (the same
values and the same missing items, attached to the wrong items); `noise`
draws each present row from a Gaussian with the real features' per-dimension
mean and standard deviation. Both happen before the transform and are seeded
by `seed` and the modality's name. `context.make_context` applies both; a
study or bench that rebuilds what a run's model saw calls them from here.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np


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
