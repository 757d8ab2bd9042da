"""Step parity: MMRec's and mmjax's loss and gradients from the same weights.

    .venv/bin/python bench/mmrec/step_parity.py --mmrec_dir /work/mmrec \
        --data_dir /tmp/mmrec_data/synth30k --models LightGCN,VBPR \
        --out_dir /tmp/parity

For each model: MMRec builds its model on the dataset folder (export.py),
with its own initialisation and seed; one fixed batch (users, positives,
negatives drawn by a seeded numpy generator, negatives outside the user's
training items) goes through MMRec's `calculate_loss` and torch autograd.
The initial weights, the gradients, the batch, the training interactions
and the features are saved to `<out_dir>/<model>.npz` (keys `param/<name>`,
`grad/<name>`, `batch/users|pos|neg`, `train/users|items`,
`feat/image|text`, `loss`, `num_users`, `num_items`). `compare` then loads
the weights into our parameters through the model's name mapping, builds
our context from the same training interactions and features, and compares
our `loss` and `jax.grad` with MMRec's: the table gives the absolute loss
error and, per parameter, the largest absolute gradient error and that
error relative to the largest MMRec gradient entry. The target is 1e-4.

Dropout: a spec with `dropout_order` (e.g. 'BM3-dropout', MMRec's BM3 at
dropout 0.3) records the mask of each of MMRec's `F.dropout` calls (MMRec's
own dropout runs unchanged) and, for the comparison only, replaces our
module's dropout function by one that applies those masks. `--steps N`
then also trains N Adam steps on both sides from the same weights (MMRec's
Trainer optimiser; our optax Adam), on N more seeded batches with each
step's masks replayed, and compares the final weights.

Dropout statistics (`--dropout_draws N`, for the same specs): replayed
masks check the arithmetic, not our own masks. So both sides also compute
the loss and gradient N times from the initial weights on the first batch,
each time with their own fresh dropout (MMRec's torch RNG, our JAX keys),
and `compare_dropout_draws` compares what does not depend on the RNG: the
mean loss (in standard errors of the difference), the mean gradient (its
distance against the distance Monte Carlo noise alone gives, about 1 when
the two gradient distributions agree), and per dropout call the kept
fraction of the non-zero inputs and the scaling of the kept ones.

`--side mmrec` only writes the .npz files (no JAX needed); `--side ours`
only compares existing files (no torch or MMRec needed); the default does
both in one process.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib
import json
import os
import sys
from typing import Any, Callable

from absl import app
from absl import flags
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import patches  # pylint: disable=g-import-not-at-top,wrong-import-position

TOLERANCE = 1e-4
# The dropout statistics check (`compare_dropout_draws`): draws per side, and
# its limits: the mean losses and each call's mean kept fraction within
# DRAWS_Z standard errors of their difference, the mean gradients' distance
# within DRAWS_GRAD_RATIO times the Monte Carlo distance (about 1 for equal
# distributions: a sum over thousands of gradient entries), and the scaling
# of the kept entries within DRAWS_SCALE_TOL of each other.
DROPOUT_DRAWS = 100
DRAWS_Z = 4.0
DRAWS_GRAD_RATIO = 1.5
DRAWS_SCALE_TOL = 1e-5


def _identity(x: np.ndarray, npz) -> np.ndarray:
  del npz
  return x


def _linear_text_image(w: np.ndarray, npz) -> np.ndarray:
  """MMRec VBPR's item_linear.weight [D, F_t + F_v] -> our proj_w [F, D].

  MMRec concatenates text then image features; our context orders
  modalities by name (image, text), so the row blocks swap.
  """
  f_t = npz['feat/text'].shape[1]
  wt = w.T  # [F_t + F_v, D]
  return np.concatenate([wt[f_t:], wt[:f_t]], axis=0)


def _transpose(x: np.ndarray, npz) -> np.ndarray:
  """torch Linear weight [out, in] -> our [in, out]."""
  del npz
  return x.T


@dataclasses.dataclass(frozen=True)
class Spec:
  """How one MMRec model maps onto ours.

  Attributes:
    module: our model module (init/loss/embed); None for a model whose
      MMRec side is written (the reference .npz for whoever writes ours)
      but not compared yet.
    hparams: MMRec config overrides for the parity run (one grid point).
    model_cfg: our `cfg.model` fields for the same point.
    params: MMRec parameter name -> (our parameter path: a key, or a tuple
      of keys and list indices into nested params, and a function turning
      MMRec's array (weights or gradients alike: it only reindexes) into
      ours, given the .npz).
    features: whether the model reads the item features.
  """
  module: str | None
  hparams: dict[str, Any]
  model_cfg: dict[str, Any] | None = None
  params: dict[str, tuple[Any, Callable[..., np.ndarray]]] | None = None
  features: bool = False
  # Applied around MMRec's step: patches MMRec's side (e.g. LGMRec's Gumbel
  # noise off) and returns the function that undoes it.
  mmrec_patch: Callable[[], Callable[[], None]] | None = None
  # MMRec's model class when the key of SPECS is a variant of it (e.g.
  # 'BM3-dropout' runs MMRec's BM3); None: the key itself.
  mmrec_model: str | None = None
  # Dropout replayed from MMRec (see record_dropout / replay_dropout): for
  # each call of our `dropout_fn` (the dotted path of the dropout our models
  # call), in our call order, the index of MMRec's `F.dropout` call whose
  # mask it reuses. None: no replay.
  dropout_order: tuple[int, ...] | None = None
  dropout_fn: str = 'mmjax.models.layers.dropout'


# FREEDOM, BM3 and LATTICE share MMRec's names for the ID tables, the
# trainable feature tables and their projections (image first, as our sorted
# modality order).
_TRAINED_FEATURE_PARAMS = {
    'user_embedding.weight': ('user', _identity),
    'item_id_embedding.weight': ('item', _identity),
    'image_embedding.weight': (('features', 0), _identity),
    'text_embedding.weight': (('features', 1), _identity),
    'image_trs.weight': (('proj', 0, 'w'), _transpose),
    'image_trs.bias': (('proj', 0, 'b'), _identity),
    'text_trs.weight': (('proj', 1, 'w'), _transpose),
    'text_trs.bias': (('proj', 1, 'b'), _identity),
}

SPECS = {
    'LightGCN': Spec(
        module='mmjax.models.lightgcn',
        hparams={'n_layers': 2, 'reg_weight': 1e-2, 'embedding_size': 64},
        model_cfg={'embed_dim': 64, 'num_layers': 2, 'reg_weight': 1e-2},
        params={'embedding_dict.user_emb': ('user_emb', _identity),
                'embedding_dict.item_emb': ('item_emb', _identity)}),
    'VBPR': Spec(
        module='mmjax.models.vbpr',
        hparams={'reg_weight': 0.1, 'embedding_size': 64},
        model_cfg={'embed_dim': 64, 'reg_weight': 0.1,
                   'convention': 'mmrec'},
        params={'u_embedding': ('user', _identity),
                'i_embedding': ('item', _identity),
                'item_linear.weight': ('proj_w', _linear_text_image),
                'item_linear.bias': ('proj_b', _identity)},
        features=True),
    # Edge dropout off (MMRec then trains on its full normalised graph, ours
    # on the symmetric normalisation of the same edges), so the step is
    # deterministic on both sides.
    'FREEDOM': Spec(
        module='mmjax.models.freedom',
        hparams={'embedding_size': 64, 'feat_embed_dim': 64, 'knn_k': 10,
                 'n_mm_layers': 1, 'n_ui_layers': 2, 'mm_image_weight': 0.1,
                 'dropout': 0.0, 'reg_weight': 0.1},
        model_cfg={'name': 'freedom', 'embed_dim': 64, 'knn_k': 10,
                   'num_mm_layers': 1, 'num_layers': 2,
                   'mm_weights': {'image': 0.1, 'text': 0.9},
                   'dropout': 0.0, 'reg_weight': 0.1,
                   'train_features': True, 'convention': 'mmrec'},
        params=_TRAINED_FEATURE_PARAMS,
        features=True),
    # Target dropout off: MMRec's F.dropout and ours draw different masks.
    'BM3': Spec(
        module='mmjax.models.bm3',
        hparams={'embedding_size': 64, 'feat_embed_dim': 64, 'n_layers': 1,
                 'dropout': 0.0, 'reg_weight': 0.1, 'cl_weight': 2.0},
        model_cfg={'name': 'bm3', 'embed_dim': 64, 'num_layers': 1,
                   'dropout': 0.0, 'reg_weight': 0.1, 'cl_weight': 2.0,
                   'train_features': True},
        params={**_TRAINED_FEATURE_PARAMS,
                'predictor.weight': (('predictor', 'w'), _transpose),
                'predictor.bias': (('predictor', 'b'), _identity)},
        features=True),
    # MMRec divides LATTICE's regulariser by the configured batch size,
    # ours by the batch's rows: mmrec_step sets train_batch_size to the
    # parity batch's size, so both divide by the same number.
    'LATTICE': Spec(
        module='mmjax.models.lattice',
        hparams={'embedding_size': 64, 'feat_embed_dim': 64, 'knn_k': 10,
                 'lambda_coeff': 0.9, 'n_layers': 1, 'reg_weight': 1e-3,
                 'learning_rate': 1e-3, 'cf_model': 'lightgcn'},
        model_cfg={'name': 'lattice', 'embed_dim': 64, 'knn_k': 10,
                   'lambda_coeff': 0.9, 'num_mm_layers': 1, 'num_layers': 2,
                   'reg_weight': 1e-3, 'convention': 'mmrec',
                   'train_features': True},
        params={**_TRAINED_FEATURE_PARAMS,
                'modal_weight': ('modal_weight', _identity)},
        features=True),
}

# BM3 with its target dropout ON (MMRec's grid point 0.3): MMRec's own
# F.dropout draws the masks (recorded, not changed), ours replays them.
# MMRec drops u, i, then t (text), then v (image); ours u, i, then the
# modalities in sorted order (image, text).
SPECS['BM3-dropout'] = dataclasses.replace(
    SPECS['BM3'], mmrec_model='BM3',
    hparams={**SPECS['BM3'].hparams, 'dropout': 0.3,
             'learning_rate': 1e-2},  # the outcome runs' (--steps)
    model_cfg={**SPECS['BM3'].model_cfg, 'dropout': 0.3},
    dropout_order=(0, 1, 3, 2))


TRANSFORMS = {'identity': _identity, 'transpose': _transpose,
              'linear_text_image': _linear_text_image}


def _load_spec_files() -> None:
  """Adds the specs of `parity_specs/<model>.py` (one file per model).

  Each file defines `NAME` (MMRec's model name) and `SPEC`, a dict of
  `Spec`'s fields whose parameter transforms may be names of TRANSFORMS.
  A file's spec replaces a same-named one above.
  """
  folder = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        'parity_specs')
  for filename in sorted(os.listdir(folder)):
    if not filename.endswith('.py') or filename.startswith('_'):
      continue
    module = importlib.import_module(f'parity_specs.{filename[:-3]}')
    fields = dict(module.SPEC)
    fields['params'] = {
        name: (ours, TRANSFORMS[fn] if isinstance(fn, str) else fn)
        for name, (ours, fn) in (fields.get('params') or {}).items()}
    if hasattr(module, 'mmrec_patch'):
      fields['mmrec_patch'] = module.mmrec_patch
    SPECS[module.NAME] = Spec(**fields)


_load_spec_files()


def _path(ours) -> tuple:
  return ours if isinstance(ours, tuple) else (ours,)


def _nest(flat: dict[tuple, Any]) -> Any:
  """{path: leaf} -> nested dicts, with int-keyed levels as lists."""
  tree: dict[Any, Any] = {}
  for path, leaf in flat.items():
    node = tree
    for key in path[:-1]:
      node = node.setdefault(key, {})
    node[path[-1]] = leaf

  def lists(node):
    if not isinstance(node, dict):
      return node
    if node and all(isinstance(k, int) for k in node):
      return [lists(node[k]) for k in sorted(node)]
    return {k: lists(v) for k, v in node.items()}

  return lists(tree)


def _get(tree: Any, ours) -> Any:
  for key in _path(ours):
    tree = tree[key]
  return tree


def fixed_batch(users: np.ndarray, items: np.ndarray, num_items: int,
                size: int, seed: int) -> dict[str, np.ndarray]:
  """A seeded batch of training pairs with one negative each.

  Negatives are uniform over all items and redrawn while they are among the
  user's training items (MMRec's sampler does the same over the items seen
  in training).
  """
  rng = np.random.default_rng([seed, 0x5EED])
  pick = rng.choice(len(users), size=min(size, len(users)), replace=False)
  seen = set(zip(users.tolist(), items.tolist()))
  neg = rng.integers(0, num_items, len(pick))
  for k, u in enumerate(users[pick].tolist()):
    while (u, int(neg[k])) in seen:
      neg[k] = rng.integers(0, num_items)
  return {'users': users[pick].astype(np.int64),
          'pos': items[pick].astype(np.int64), 'neg': neg.astype(np.int64)}


def record_dropout(masks: list[np.ndarray]) -> Callable[[], None]:
  """Records the keep mask of every `torch.nn.functional.dropout` call.

  MMRec's own dropout still runs (same RNG, same outputs); each call's mask
  (output != 0; where the input is 0 the mask does not matter) is appended
  to `masks`. MMRec's models call `F.dropout` through the module attribute,
  so replacing it there reaches them.

  Returns:
    The function that restores torch's dropout.
  """
  from torch.nn import functional  # pylint: disable=g-import-not-at-top
  original = functional.dropout

  def recording(input, p=0.5, training=True, inplace=False):  # pylint: disable=redefined-builtin
    out = original(input, p, training, inplace)
    if training and p > 0:
      masks.append((out != 0).detach().numpy().copy())
    return out

  def undo():
    functional.dropout = original

  functional.dropout = recording
  return undo


def _dropout_owner(spec: 'Spec') -> tuple[Any, str]:
  """(module, attribute) of `spec.dropout_fn`, e.g. (layers, 'dropout')."""
  owner, name = spec.dropout_fn.rsplit('.', 1)
  return importlib.import_module(owner), name


def replay_dropout(module: Any, spec: 'Spec', npz, prefix: str = 'dropout'
                   ) -> Callable[[], None]:
  """Makes our module's dropout apply MMRec's recorded masks.

  Our `spec.dropout_fn(key, x, rate)` (the shared dropout) is replaced,
  for the comparison only, by x * keep / (1 - rate) with the mask of
  MMRec's call `spec.dropout_order[k]` at our k-th call (the loss is traced
  once).

  Returns:
    The function that restores our module's dropout.

  Raises:
    ValueError: a mask's shape differs from the array it should drop.
  """
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  del module  # The models call the shared dropout of `spec.dropout_fn`.
  owner, name = _dropout_owner(spec)
  original = getattr(owner, name)
  masks = [npz[f'{prefix}/{k}'] for k in spec.dropout_order]
  calls = []

  def replay(key, x, rate):
    del key
    if rate <= 0.0:
      return x
    k = len(calls) % len(masks)
    calls.append(k)
    if masks[k].shape != x.shape:
      raise ValueError(f'dropout call {k}: MMRec mask '
                       f'{spec.dropout_order[k]} has shape '
                       f'{masks[k].shape}, our array {x.shape}.')
    return jnp.where(jnp.asarray(masks[k]), x / (1.0 - rate), 0.0)

  def undo():
    setattr(owner, name, original)

  setattr(owner, name, replay)
  return undo


def keep_and_scale(x, out) -> tuple[Any, Any]:
  """(kept fraction, scaling) of one dropout call, numpy or jax.numpy.

  Only non-zero inputs count: a zero input stays zero whatever the mask, so
  it says nothing about it. The scaling is the largest out / x over the kept
  entries: inverted dropout scales every kept entry by 1 / (1 - p), so the
  largest ratio is that factor up to an ulp, where a float32 mean over a
  whole table would add its summation error (1e-5 and more).
  """
  xp = np if isinstance(x, np.ndarray) else _jnp()
  nonzero = x != 0
  kept = nonzero & (out != 0)
  ratio = xp.where(kept, out / xp.where(kept, x, 1), -xp.inf)
  return kept.sum() / xp.maximum(nonzero.sum(), 1), ratio.max()


def _jnp():
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  return jnp


def record_dropout_stats(stats: list[tuple[float, float]]
                         ) -> Callable[[], None]:
  """Records each `F.dropout` call's (kept fraction, scaling).

  As `record_dropout`, MMRec's own dropout runs unchanged; `keep_and_scale`
  of its input and output is appended to `stats`.

  Returns:
    The function that restores torch's dropout.
  """
  from torch.nn import functional  # pylint: disable=g-import-not-at-top
  original = functional.dropout

  def recording(input, p=0.5, training=True, inplace=False):  # pylint: disable=redefined-builtin
    x = input.detach().numpy().copy()  # Before an in-place call changes it.
    out = original(input, p, training, inplace)
    if training and p > 0:
      keep, scale = keep_and_scale(x, out.detach().numpy())
      stats.append((float(keep), float(scale)))
    return out

  def undo():
    functional.dropout = original

  functional.dropout = recording
  return undo


def _draws_record(losses, keep, scale, total, total_sq, draws: int
                  ) -> dict[str, np.ndarray]:
  """The .npz entries of `draws` dropout draws (see `mmrec_dropout_draws`).

  Gradients are summarised by their mean and the sum over entries of their
  unbiased variance (the trace of the covariance), which is what the Monte
  Carlo error of the mean needs.
  """
  out = {'draws/loss': np.asarray(losses, np.float64),
         'draws/keep': np.asarray(keep, np.float64).reshape(draws, -1),
         'draws/scale': np.asarray(scale, np.float64).reshape(draws, -1)}
  for name, g in total.items():
    mean = g / draws
    var = (total_sq[name] / draws - mean * mean) * draws / max(draws - 1, 1)
    out[f'draws/grad_mean/{name}'] = mean
    out[f'draws/grad_trvar/{name}'] = np.float64(np.maximum(var, 0.0).sum())
  return out


def mmrec_dropout_draws(model: Any, interaction: Any, draws: int
                        ) -> dict[str, np.ndarray]:
  """MMRec's loss and gradients `draws` times, each with fresh dropout.

  From the model's current weights on one batch, in train mode. Returns
  `draws/loss` [N], `draws/keep` and `draws/scale` [N, calls] (MMRec's call
  order), `draws/grad_mean/<name>` (MMRec's layout) and
  `draws/grad_trvar/<name>`.
  """
  losses, keep, scale = [], [], []
  total: dict[str, np.ndarray] = {}
  total_sq: dict[str, np.ndarray] = {}
  for _ in range(draws):
    stats: list[tuple[float, float]] = []
    undo = record_dropout_stats(stats)
    try:
      model.zero_grad()
      loss = model.calculate_loss(interaction)
      if isinstance(loss, tuple):
        loss = sum(loss)
      loss = loss.reshape(())
      loss.backward()
    finally:
      undo()
    losses.append(loss.item())
    keep.append([k for k, _ in stats])
    scale.append([c for _, c in stats])
    for name, p in model.named_parameters():
      if p.grad is not None:
        g = p.grad.numpy().astype(np.float64)
        total[name] = total.get(name, 0.0) + g
        total_sq[name] = total_sq.get(name, 0.0) + g * g
  model.zero_grad()
  return _draws_record(losses, keep, scale, total, total_sq, draws)


def our_dropout_draws(module: Any, spec: 'Spec', params: Any, ctx: Any,
                      batch: Any, cfg: Any, draws: int, seed: int = 0
                      ) -> dict[str, np.ndarray]:
  """Our loss and gradients `draws` times, with our own dropout.

  Step k uses the key `jax.random.key(seed + k)`; `spec.dropout_fn` is
  wrapped (during tracing only) to record `keep_and_scale` of each call, in
  our call order. Gradient entries are keyed by MMRec's parameter names but
  in our layout.
  """
  import jax  # pylint: disable=g-import-not-at-top
  jnp = _jnp()
  owner, name = _dropout_owner(spec)
  original = getattr(owner, name)

  def loss_fn(p, ctx, batch, key):
    seen = []

    def recording(k, x, rate):
      out = original(k, x, rate)
      if rate > 0:
        seen.append(jnp.stack(keep_and_scale(x, out)))
      return out

    setattr(owner, name, recording)
    try:
      loss = module.loss(p, batch, ctx, key, cfg)[0]
    finally:
      setattr(owner, name, original)
    return loss, jnp.stack(seen) if seen else jnp.zeros((0, 2))

  step = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
  losses, keep, scale = [], [], []
  total: dict[str, np.ndarray] = {}
  total_sq: dict[str, np.ndarray] = {}
  for k in range(draws):
    (loss, stats), grads = step(params, ctx, batch, jax.random.key(seed + k))
    stats = np.asarray(stats, np.float64)
    losses.append(float(loss))
    keep.append(stats[:, 0])
    scale.append(stats[:, 1])
    for name, (ours, _) in spec.params.items():
      g = np.asarray(_get(grads, ours), np.float64)
      total[name] = total.get(name, 0.0) + g
      total_sq[name] = total_sq.get(name, 0.0) + g * g
  return _draws_record(losses, keep, scale, total, total_sq, draws)


def moment_gap(mean_a: Any, var_a: float, n_a: int, mean_b: Any,
               var_b: float, n_b: int) -> float:
  """|mean_a - mean_b| / sqrt(var_a / n_a + var_b / n_b).

  For scalars, the difference of two sample means in standard errors; for
  arrays (var the trace of the covariance), the distance between the mean
  vectors against the one Monte Carlo noise alone gives: its square averages
  1 when both samples come from one distribution.
  """
  diff = np.asarray(mean_a, np.float64) - np.asarray(mean_b, np.float64)
  noise = var_a / n_a + var_b / n_b
  dist = float(np.sqrt(np.sum(diff * diff)))
  if noise <= 0:
    return 0.0 if dist == 0 else float('inf')
  return dist / float(np.sqrt(noise))


def compare_dropout_draws(npz_path: str, model_name: str,
                          draws: int | None = None, seed: int = 0
                          ) -> dict[str, Any]:
  """Our dropout's statistics against MMRec's (see the module docstring).

  Args:
    npz_path: written by `mmrec_step` with `draws` > 0 (`draws/...`).
    model_name: a key of SPECS with a `dropout_order`.
    draws: our draws; None: as many as MMRec's.
    seed: our first key.

  Returns:
    `draws_row` of our draws (`our_dropout_draws` from MMRec's initial
    weights and first batch) against MMRec's.
  """
  spec = SPECS[model_name]
  module = importlib.import_module(spec.module)
  npz = np.load(npz_path)
  ctx, cfg, params = _our_setup(npz, spec, module)
  jnp = _jnp()
  batch = {'users': jnp.asarray(npz['batch/users'], jnp.int32),
           'pos': jnp.asarray(npz['batch/pos'], jnp.int32),
           'neg': jnp.asarray(npz['batch/neg'], jnp.int32),
           'mask': jnp.ones(len(npz['batch/users']), jnp.float32)}
  ours = our_dropout_draws(module, spec, params, ctx, batch, cfg,
                           draws or len(npz['draws/loss']), seed)
  return draws_row(model_name, ours, npz, npz)


def draws_row(model_name: str, ours: Any, ref: Any, npz: Any
              ) -> dict[str, Any]:
  """Compares two `draws/...` records: ours against MMRec's (`ref`).

  Args:
    model_name: a key of SPECS with a `dropout_order`.
    ours: `our_dropout_draws`'s record (gradients in our layout).
    ref: MMRec's record (`mmrec_dropout_draws`, gradients in its layout).
    npz: the parity file, for the spec's parameter transforms.

  Returns:
    A row: draws per side, mean losses and their gap in standard errors,
    the mean gradients' gap against Monte Carlo noise (all parameters, and
    per parameter), per dropout call (our order) the mean kept fraction and
    scaling on both sides, and `ok` against DRAWS_Z, DRAWS_GRAD_RATIO and
    DRAWS_SCALE_TOL.
  """
  spec = SPECS[model_name]
  n, n_ref = len(ours['draws/loss']), len(ref['draws/loss'])

  def loss_var(rec):
    return float(np.var(rec['draws/loss'], ddof=1))

  row = {'model': model_name, 'draws': {'mmrec': n_ref, 'ours': n},
         'mmrec_loss_mean': float(np.mean(ref['draws/loss'])),
         'our_loss_mean': float(np.mean(ours['draws/loss'])),
         'loss_z': moment_gap(np.mean(ours['draws/loss']), loss_var(ours), n,
                              np.mean(ref['draws/loss']), loss_var(ref),
                              n_ref),
         'grads': {}, 'calls': []}
  diff_sq = noise = 0.0
  for name, (_, fn) in spec.params.items():
    if f'draws/grad_mean/{name}' not in ref:
      continue
    ref_mean = fn(ref[f'draws/grad_mean/{name}'], npz)
    ref_var = float(ref[f'draws/grad_trvar/{name}'])
    our_mean = ours[f'draws/grad_mean/{name}']
    our_var = float(ours[f'draws/grad_trvar/{name}'])
    row['grads'][name] = moment_gap(our_mean, our_var, n, ref_mean, ref_var,
                                    n_ref)
    diff_sq += float(np.sum((our_mean - ref_mean) ** 2))
    noise += our_var / n + ref_var / n_ref
  row['grad_ratio'] = (float(np.sqrt(diff_sq / noise)) if noise > 0
                       else 0.0)
  for k, j in enumerate(spec.dropout_order):
    call = {}
    for side, rec, col in (('ours', ours, k), ('mmrec', ref, j)):
      keep = rec['draws/keep'][:, col]
      call[side] = {'keep': float(np.mean(keep)),
                    'keep_var': float(np.var(keep, ddof=1)),
                    'scale': float(np.mean(rec['draws/scale'][:, col]))}
    call['keep_z'] = moment_gap(
        call['ours']['keep'], call['ours']['keep_var'], n,
        call['mmrec']['keep'], call['mmrec']['keep_var'], n_ref)
    call['scale_err'] = abs(call['ours']['scale'] - call['mmrec']['scale'])
    row['calls'].append(call)
  row['ok'] = bool(
      row['loss_z'] <= DRAWS_Z and row['grad_ratio'] <= DRAWS_GRAD_RATIO
      and all(c['keep_z'] <= DRAWS_Z and c['scale_err'] <= DRAWS_SCALE_TOL
              for c in row['calls']))
  return row


def format_draws(row: dict[str, Any]) -> str:
  """One line of `compare_dropout_draws`'s row."""
  keep = ', '.join(f"{c['ours']['keep']:.4f}/{c['mmrec']['keep']:.4f}"
                   for c in row['calls'])
  scale = ', '.join(f"{c['ours']['scale']:.6f}/{c['mmrec']['scale']:.6f}"
                    for c in row['calls'])
  return (f"{row['model']}: dropout draws {row['draws']['ours']}/"
          f"{row['draws']['mmrec']} (ours/MMRec): mean loss "
          f"{row['our_loss_mean']:.6f}/{row['mmrec_loss_mean']:.6f} "
          f"({row['loss_z']:.2f} SE), mean gradient gap "
          f"{row['grad_ratio']:.3f} x Monte Carlo noise, kept fraction "
          f"{keep}, scaling {scale}: {'ok' if row['ok'] else 'DIFFERENT'}")


def mmrec_step(mmrec_dir: str, data_dir: str, dataset: str, model_name: str,
               batch_size: int, seed: int, out_path: str,
               steps: int = 0, draws: int = 0) -> float:
  """Runs MMRec's loss and backward on one fixed batch; writes the .npz.

  With `steps` > 0 it then trains `steps` steps from the initial weights
  with the optimiser of MMRec's own `Trainer` (Adam at the spec's
  `learning_rate`), step k on `fixed_batch(..., seed + 1 + k)`, and also
  saves each step's batch (`traj/<k>/users|pos|neg`), its dropout masks
  (`traj/<k>/dropout/<j>`), its loss (`traj/<k>/loss`) and the final
  weights (`final/<name>`): `compare_steps` replays the same steps.

  With `draws` > 0 and a spec with `dropout_order`, it also records
  `mmrec_dropout_draws` from the initial weights on the first batch
  (`draws/...`), after everything above, so the recorded masks are the
  same with or without it.

  Returns:
    MMRec's loss.
  """
  spec = SPECS[model_name]
  mmrec_model = spec.mmrec_model or model_name
  cwd = os.getcwd()
  data_path = patches.enter(mmrec_dir, os.path.join(
      os.path.dirname(os.path.abspath(out_path)), 'mmrec_run'),
                            os.path.abspath(data_dir), dataset)
  undo = None
  undo_dropout = None
  dropout_masks: list[np.ndarray] = []
  try:
    # pylint: disable=g-import-not-at-top,import-error
    import torch
    from utils import configurator
    from utils import dataloader
    from utils import dataset as mmrec_dataset
    from utils import utils as mmrec_utils
    # pylint: enable=g-import-not-at-top,import-error
    config = configurator.Config(mmrec_model, dataset, {
        'gpu_id': 0, 'use_gpu': False, 'data_path': data_path,
        'seed': seed, 'train_batch_size': batch_size, **spec.hparams})
    patches.resolve_grid(config, spec.hparams)
    ds = mmrec_dataset.RecDataset(config)
    train_ds, _, _ = ds.split()
    for part in (ds, train_ds):
      str(part)  # Sets inter_num, as quick_start's logging does.
    train_data = dataloader.TrainDataLoader(
        config, train_ds, batch_size=config['train_batch_size'],
        shuffle=False)
    mmrec_utils.init_seed(seed)
    model = mmrec_utils.get_model(mmrec_model)(config, train_data)
    model.train()
    df = train_ds.df
    users = df[config['USER_ID_FIELD']].values.astype(np.int64)
    items = df[config['ITEM_ID_FIELD']].values.astype(np.int64)
    batch = fixed_batch(users, items, ds.get_item_num(), batch_size, seed)
    params = {name: p.detach().numpy().copy()
              for name, p in model.named_parameters()}
    interaction = torch.as_tensor(np.stack(
        [batch['users'], batch['pos'], batch['neg']]))
    model.zero_grad()
    model.pre_epoch_processing()  # As Trainer.fit does before each epoch.
    if spec.mmrec_patch is not None:
      undo = spec.mmrec_patch()
    if spec.dropout_order is not None:
      undo_dropout = record_dropout(dropout_masks)
    loss = model.calculate_loss(interaction)
    if isinstance(loss, tuple):
      loss = sum(loss)
    loss = loss.reshape(())
    loss.backward()
    arrays = {f'param/{n}': v for n, v in params.items()}
    arrays.update({f'grad/{n}': p.grad.numpy() for n, p in
                   model.named_parameters() if p.grad is not None})
    arrays.update({f'batch/{k}': v for k, v in batch.items()})
    arrays.update({f'dropout/{k}': m for k, m in enumerate(dropout_masks)})
    arrays.update({'hparams': np.array(json.dumps(spec.hparams)),
                   'train/users': users, 'train/items': items,
                   'loss': np.float64(loss.item()),
                   'num_users': ds.get_user_num(),
                   'num_items': ds.get_item_num()})
    for key, attr in (('image', 'v_feat'), ('text', 't_feat')):
      value = getattr(model, attr, None)
      if value is not None:
        arrays[f'feat/{key}'] = value.numpy()
    if steps:
      # Step 1's masks are kept above; the trajectory records its own.
      if undo_dropout is not None:
        undo_dropout()
        undo_dropout = None
      model.load_state_dict({n: torch.as_tensor(v) for n, v in
                             params.items()}, strict=False)
      optimizer = mmrec_utils.get_trainer()(config, model, False).optimizer
      for k in range(steps):
        step_batch = fixed_batch(users, items, ds.get_item_num(), batch_size,
                                 seed + 1 + k)
        masks: list[np.ndarray] = []
        if spec.dropout_order is not None:
          undo_dropout = record_dropout(masks)
        optimizer.zero_grad()
        step_loss = model.calculate_loss(torch.as_tensor(np.stack(
            [step_batch['users'], step_batch['pos'], step_batch['neg']])))
        if isinstance(step_loss, tuple):
          step_loss = sum(step_loss)
        step_loss = step_loss.reshape(())
        step_loss.backward()
        optimizer.step()
        if undo_dropout is not None:
          undo_dropout()
          undo_dropout = None
        arrays.update({f'traj/{k}/{b}': v for b, v in step_batch.items()})
        arrays.update({f'traj/{k}/dropout/{j}': m
                       for j, m in enumerate(masks)})
        arrays[f'traj/{k}/loss'] = np.float64(step_loss.item())
      arrays['steps'] = steps
      arrays['learning_rate'] = float(config['learning_rate'])
      arrays.update({f'final/{n}': p.detach().numpy().copy()
                     for n, p in model.named_parameters()})
    if draws and spec.dropout_order is not None:
      if undo_dropout is not None:
        undo_dropout()
        undo_dropout = None
      model.load_state_dict({n: torch.as_tensor(v) for n, v in
                             params.items()}, strict=False)
      arrays.update(mmrec_dropout_draws(model, interaction, draws))
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    np.savez(out_path, **arrays)
    return float(loss.item())
  finally:
    if undo is not None:
      undo()
    if undo_dropout is not None:
      undo_dropout()
    os.chdir(cwd)


def our_params(npz, spec: Spec) -> dict[str, np.ndarray]:
  """MMRec's initial weights as our parameter dict."""
  return _nest({_path(ours): fn(npz[f'param/{name}'], npz)
                for name, (ours, fn) in spec.params.items()})


def compare(npz_path: str, model_name: str,
            param_map: dict[str, tuple[str, Callable[..., np.ndarray]]]
            | None = None) -> dict[str, Any]:
  """Our loss and gradients from MMRec's weights and batch, against MMRec's.

  Args:
    npz_path: written by `mmrec_step`.
    model_name: a key of SPECS.
    param_map: overrides the spec's MMRec name -> (our key, transform)
      mapping, for a model whose parameter names changed.

  Returns:
    A row: model, MMRec's and our loss, the absolute loss error, per
    parameter the max absolute and relative gradient errors, the worst of
    them and whether everything is within TOLERANCE.
  """
  # pylint: disable=g-import-not-at-top
  import jax
  import jax.numpy as jnp
  # pylint: enable=g-import-not-at-top
  spec = SPECS[model_name]
  if param_map is not None:
    spec = dataclasses.replace(spec, params=param_map)
  if spec.module is None or not spec.params:
    raise NotImplementedError(
        f'{model_name}: no mapping onto our model yet; give SPECS'
        f"['{model_name}'] a module, model_cfg and params (or pass "
        'param_map).')
  module = importlib.import_module(spec.module)
  npz = np.load(npz_path)
  ctx, cfg, params = _our_setup(npz, spec, module)
  batch = {'users': jnp.asarray(npz['batch/users'], jnp.int32),
           'pos': jnp.asarray(npz['batch/pos'], jnp.int32),
           'neg': jnp.asarray(npz['batch/neg'], jnp.int32),
           'mask': jnp.ones(len(npz['batch/users']), jnp.float32)}

  def loss_fn(p, ctx, batch):
    return module.loss(p, batch, ctx, jax.random.key(0), cfg)[0]

  # ctx and batch are arguments, not closed-over constants (XLA would
  # constant-fold the graph work at compile time).
  undo = (replay_dropout(module, spec, npz)
          if spec.dropout_order is not None else None)
  try:
    loss, grads = jax.jit(jax.value_and_grad(loss_fn))(params, ctx, batch)
  finally:
    if undo is not None:
      undo()
  ref_loss = float(npz['loss'])
  row = {'model': model_name, 'mmrec_loss': ref_loss,
         'our_loss': float(loss), 'loss_abs_err': abs(float(loss) - ref_loss),
         'grads': {}}
  for name, (ours, fn) in spec.params.items():
    ref = fn(npz[f'grad/{name}'], npz) if f'grad/{name}' in npz else None
    if ref is None:
      continue
    got = np.asarray(_get(grads, ours))
    err = float(np.max(np.abs(got - ref))) if ref.size else 0.0
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    row['grads'][name] = {'ours': '/'.join(map(str, _path(ours))),
                          'max_abs_err': err,
                          # None where MMRec's gradient is zero up to
                          # rounding (a bias that cancels in s_pos - s_neg).
                          'rel_err': err / scale if scale > 1e-9 else None,
                          'max_abs_grad': scale}
  row['max_grad_abs_err'] = max(
      (g['max_abs_err'] for g in row['grads'].values()), default=0.0)
  row['ok'] = bool(row['loss_abs_err'] <= TOLERANCE
                   and row['max_grad_abs_err'] <= TOLERANCE)
  return row


def _our_setup(npz, spec: Spec, module: Any) -> tuple[Any, Any, Any]:
  """(our context, config, MMRec's initial weights as our params)."""
  # pylint: disable=g-import-not-at-top
  import jax
  import jax.numpy as jnp

  from mmjax.graph import sparse
  from mmjax.models import context as ctx_lib
  # pylint: enable=g-import-not-at-top
  num_users, num_items = int(npz['num_users']), int(npz['num_items'])
  users, items = npz['train/users'], npz['train/items']
  graph = sparse.sym_normalize(
      sparse.bipartite(users, items, num_users, num_items))
  features, masks = {}, {}
  if spec.features:
    for key in ('image', 'text'):  # Sorted, as make_context orders them.
      if f'feat/{key}' in npz:
        features[key] = npz[f'feat/{key}']
        masks[key] = np.ones(num_items, bool)
  ctx = ctx_lib.ModelContext(
      graph=graph, features=features, masks=masks,
      item_popularity=np.bincount(items, minlength=num_items).astype(
          np.float32),
      extras={}, num_users=num_users, num_items=num_items)
  ctx = jax.tree.map(jnp.asarray, ctx)  # Device arrays, as the engine has.
  if hasattr(module, 'prepare'):
    ctx = dataclasses.replace(ctx, extras={
        spec.module.rsplit('.', 1)[1]: module.prepare(ctx, cfg_of(spec))})
  cfg = cfg_of(spec)
  params = jax.tree.map(jnp.asarray, our_params(npz, spec))
  return ctx, cfg, params


def compare_steps(npz_path: str, model_name: str) -> dict[str, Any]:
  """Replays MMRec's recorded Adam steps on our side; compares weights.

  Our loss and `jax.grad`, and optax Adam through our own optimiser config
  (`mmjax.train.optim`, lr the MMRec run's `learning_rate`, constant, as
  MMRec's default scheduler), on the same batches and, where the spec
  replays dropout, the same masks.

  Returns:
    A row: model, steps, per-step loss errors (largest), and per parameter
    the largest absolute difference of the final weights, and that
    difference relative to the largest change MMRec's steps made to it.
  """
  # pylint: disable=g-import-not-at-top
  import jax
  import jax.numpy as jnp

  from mmjax import models
  from mmjax.train import defaults
  from mmjax.train import optim
  # pylint: enable=g-import-not-at-top
  spec = SPECS[model_name]
  module = importlib.import_module(spec.module)
  npz = np.load(npz_path)
  steps = int(npz['steps'])
  ctx, cfg, params = _our_setup(npz, spec, module)
  cfg.optim = defaults.base_config().optim
  cfg.optim.lr = float(npz['learning_rate'])
  tx = optim.make_optimizer(cfg, 1)
  state = tx.init(params)
  # MMRec's recorded steps come after its first `calculate_loss` (the
  # parity step, from the same weights) cleared LATTICE's
  # `build_item_graph`: they are an epoch's later steps, on the graph of the
  # initial weights, detached. A model with a per-epoch cache
  # (`epoch_cache`, e.g. lattice.graph_every='epoch') replays them so.
  cache_fn = getattr(module, 'epoch_cache', None)
  if cache_fn is not None:
    cache = jax.jit(lambda p, c: cache_fn(p, c, cfg))(params, ctx)
    if cache is not None:
      ctx = models.with_epoch_cache(ctx, cfg, cache)
  loss_errs = []
  for k in range(steps):
    batch = {'users': jnp.asarray(npz[f'traj/{k}/users'], jnp.int32),
             'pos': jnp.asarray(npz[f'traj/{k}/pos'], jnp.int32),
             'neg': jnp.asarray(npz[f'traj/{k}/neg'], jnp.int32),
             'mask': jnp.ones(len(npz[f'traj/{k}/users']), jnp.float32)}

    def loss_fn(p, ctx, batch):
      return module.loss(p, batch, ctx, jax.random.key(k), cfg)[0]

    undo = (replay_dropout(module, spec, npz, f'traj/{k}/dropout')
            if spec.dropout_order is not None else None)
    try:
      # Traced anew each step: the replayed masks are constants.
      loss, grads = jax.jit(jax.value_and_grad(loss_fn))(params, ctx, batch)
    finally:
      if undo is not None:
        undo()
    loss_errs.append(abs(float(loss) - float(npz[f'traj/{k}/loss'])))
    updates, state = tx.update(grads, state, params)
    params = jax.tree.map(lambda p, u: p + u, params, updates)
  row = {'model': model_name, 'steps': steps,
         'learning_rate': float(npz['learning_rate']),
         'max_loss_abs_err': max(loss_errs), 'params': {}}
  for name, (ours, fn) in spec.params.items():
    ref = fn(npz[f'final/{name}'], npz)
    start = fn(npz[f'param/{name}'], npz)
    got = np.asarray(_get(params, ours))
    err = float(np.max(np.abs(got - ref)))
    moved = float(np.max(np.abs(ref - start)))
    row['params'][name] = {'max_abs_err': err, 'max_abs_change': moved,
                           'rel_err': err / moved if moved > 0 else None}
  row['max_param_abs_err'] = max(g['max_abs_err']
                                 for g in row['params'].values())
  row['worst_rel_err'] = max((g['rel_err'] for g in row['params'].values()
                              if g['rel_err'] is not None), default=0.0)
  return row


def cfg_of(spec: Spec):
  """Our model section for `spec`: its fields, the declared defaults else."""
  from mmjax.models import options  # pylint: disable=g-import-not-at-top
  name = spec.module.rsplit('.', 1)[1]
  return options.complete({'name': name, **spec.model_cfg})


def format_table(rows: list[dict[str, Any]]) -> str:
  lines = ['| model | MMRec loss | our loss | loss err | max grad err | '
           'worst rel grad err | within 1e-4 |', '|' + '---|' * 7]
  for r in rows:
    rel = max((g['rel_err'] for g in r['grads'].values()
               if g['rel_err'] is not None), default=0.0)
    lines.append(f"| {r['model']} | {r['mmrec_loss']:.6f} | "
                 f"{r['our_loss']:.6f} | {r['loss_abs_err']:.1e} | "
                 f"{r['max_grad_abs_err']:.1e} | {rel:.1e} | "
                 f"{'yes' if r['ok'] else 'NO'} |")
  return '\n'.join(lines)


def main(argv):
  del argv
  for name in _MODELS.value:
    if name not in SPECS:
      raise app.UsageError(f'--models: {name!r} not in {sorted(SPECS)}.')
  if _SIDE.value in ('both', 'mmrec'):
    reason = patches.check_mmrec_dir(_MMREC_DIR.value)
    if reason:
      print(f'step_parity: skipped: {reason}.')
      return
    if not _DATA_DIR.value or not os.path.isdir(_DATA_DIR.value):
      raise app.UsageError(f'--data_dir {_DATA_DIR.value!r}: not a folder.')
    dataset = _DATASET.value or os.path.basename(
        os.path.abspath(_DATA_DIR.value).rstrip('/'))
    for name in _MODELS.value:
      loss = mmrec_step(_MMREC_DIR.value, _DATA_DIR.value, dataset, name,
                        _BATCH.value, _SEED.value,
                        os.path.join(_OUT_DIR.value, f'{name}.npz'),
                        _STEPS.value, _DRAWS.value)
      print(f'{name}: MMRec loss {loss:.6f}')
  if _SIDE.value in ('both', 'ours'):
    rows = []
    for name in _MODELS.value:
      if SPECS[name].module is None:
        print(f'{name}: MMRec side only (no mapping onto ours yet).')
        continue
      rows.append(compare(os.path.join(_OUT_DIR.value, f'{name}.npz'),
                          name))
    table = format_table(rows)
    print(table)
    if _STEPS.value:
      for name in _MODELS.value:
        traj = compare_steps(os.path.join(_OUT_DIR.value, f'{name}.npz'),
                             name)
        rows.append({'trajectory': traj})
        print(f"{name}: {traj['steps']} Adam steps (lr "
              f"{traj['learning_rate']:g}): largest loss error "
              f"{traj['max_loss_abs_err']:.1e}, largest weight difference "
              f"{traj['max_param_abs_err']:.1e}, worst relative to MMRec's "
              f"change {traj['worst_rel_err']:.1e}")
    for name in _MODELS.value:
      path = os.path.join(_OUT_DIR.value, f'{name}.npz')
      if SPECS[name].dropout_order is None:
        continue
      with np.load(path) as npz:
        if 'draws/loss' not in npz:
          continue
      draws_row = compare_dropout_draws(path, name)
      rows.append({'dropout_draws': draws_row})
      print(format_draws(draws_row))
    with open(os.path.join(_OUT_DIR.value, 'parity.json'), 'w',
              encoding='utf-8') as f:
      json.dump({'rows': rows, 'date': datetime.datetime.now(
          datetime.timezone.utc).isoformat(timespec='seconds')}, f, indent=1)


if __name__ == '__main__':
  # Flags are defined only when run as a script, so that importing this
  # module (tests, other scripts) defines none.
  _MMREC_DIR = flags.DEFINE_string('mmrec_dir', os.environ.get('MMREC_DIR'),
                                   'MMRec checkout; default $MMREC_DIR.')
  _DATA_DIR = flags.DEFINE_string('data_dir', None,
                                  'MMRec dataset folder (export.py).')
  _DATASET = flags.DEFINE_string('dataset', None, 'Dataset name (default: '
                                 'the basename of --data_dir).')
  _MODELS = flags.DEFINE_list(
      'models', ['LightGCN', 'VBPR', 'FREEDOM', 'BM3', 'BM3-dropout',
                 'LATTICE', 'GRCN', 'MGCN', 'LGMRec'],
      f'Models, of {sorted(SPECS)}.')
  _BATCH = flags.DEFINE_integer('batch_size', 256, 'Batch size.')
  _SEED = flags.DEFINE_integer('seed', 0, 'Seed (MMRec init and batch).')
  _OUT_DIR = flags.DEFINE_string('out_dir', '/tmp/mmrec_parity',
                                 'Where the .npz files and table go.')
  _STEPS = flags.DEFINE_integer(
      'steps', 0, 'Also train this many Adam steps on both sides from the '
      'same weights (masks replayed) and compare the final weights.')
  _DRAWS = flags.DEFINE_integer(
      'dropout_draws', DROPOUT_DRAWS, 'For specs with dropout: draws per '
      'side of the loss and gradient with fresh dropout, whose means, kept '
      'fractions and scaling are compared (0: skip).')
  _SIDE = flags.DEFINE_enum('side', 'both', ['both', 'mmrec', 'ours'],
                            'Which half to run.')
  app.run(main)
