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
  # each call of our module's `dropout_fn`, in our call order, the index of
  # MMRec's `F.dropout` call whose mask it reuses. None: no replay.
  dropout_order: tuple[int, ...] | None = None
  dropout_fn: str = '_dropout'


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


def replay_dropout(module: Any, spec: 'Spec', npz, prefix: str = 'dropout'
                   ) -> Callable[[], None]:
  """Makes our module's dropout apply MMRec's recorded masks.

  Our `spec.dropout_fn(key, x, rate)` is replaced, for the comparison only,
  by x * keep / (1 - rate) with the mask of MMRec's call
  `spec.dropout_order[k]` at our k-th call (the loss is traced once).

  Returns:
    The function that restores our module's dropout.

  Raises:
    ValueError: a mask's shape differs from the array it should drop.
  """
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  original = getattr(module, spec.dropout_fn)
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
    setattr(module, spec.dropout_fn, original)

  setattr(module, spec.dropout_fn, replay)
  return undo


def mmrec_step(mmrec_dir: str, data_dir: str, dataset: str, model_name: str,
               batch_size: int, seed: int, out_path: str,
               steps: int = 0) -> float:
  """Runs MMRec's loss and backward on one fixed batch; writes the .npz.

  With `steps` > 0 it then trains `steps` steps from the initial weights
  with the optimiser of MMRec's own `Trainer` (Adam at the spec's
  `learning_rate`), step k on `fixed_batch(..., seed + 1 + k)`, and also
  saves each step's batch (`traj/<k>/users|pos|neg`), its dropout masks
  (`traj/<k>/dropout/<j>`), its loss (`traj/<k>/loss`) and the final
  weights (`final/<name>`): `compare_steps` replays the same steps.

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
  import ml_collections  # pylint: disable=g-import-not-at-top
  return ml_collections.ConfigDict({'model': dict(spec.model_cfg)})


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
                        _STEPS.value)
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
  _SIDE = flags.DEFINE_enum('side', 'both', ['both', 'mmrec', 'ours'],
                            'Which half to run.')
  app.run(main)
