"""Small inputs that tests in several folders build.

Nothing here sets jax up: tests/conftest.py does under pytest, and the
subprocesses that import this module (tests/train/multihost_test.py's
workers) set their own device count first.
"""

import importlib.util
import os
import shutil
import tempfile

from absl.testing import absltest
import jax.numpy as jnp
import ml_collections
import numpy as np

from mmjax.data import dataset as dataset_lib
from mmjax.graph import sparse
from mmjax.models import context
from mmjax.train import loop
from mmjax.utils import runinfo

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

# The public raw data the real-data tests read (README, "Data"): the folder
# $MMJAX_SHARED_DATA names, as the built-in datasets read it; those tests
# skip when it is unset or absent. .ci/run sets it.
SHARED_DATA = os.path.abspath(os.environ.get('MMJAX_SHARED_DATA') or
                              os.path.join(os.sep, 'nonexistent'))


def new_tempdir(test: absltest.TestCase) -> str:
  """A fresh temporary directory removed after the test (works under pytest,
  where absl's --test_tmpdir flag is never parsed)."""
  path = tempfile.mkdtemp(prefix='mmjax_features_')
  test.addCleanup(shutil.rmtree, path, ignore_errors=True)
  return path


def load_config(name: str = 'test', arg: str | None = None
                ) -> ml_collections.ConfigDict:
  """`configs/<name>.py`'s get_config(arg), as the launcher would load it."""
  path = os.path.join(REPO, 'configs', f'{name}.py')
  spec = importlib.util.spec_from_file_location(f'mmjax_cfg_{name}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def with_value(cfg, key, value):
  """`cfg` with the dotted `key` set to `value`, whatever its type."""
  *parents, last = key.split('.')
  node = cfg
  for p in parents:
    node = node[p]
  with cfg.ignore_type():
    node[last] = value
  return cfg


# --- Interactions and a short training run.


def random_dataset(seed=0, num_users=40, num_items=30, per_user=8,
                   first_user=None):
  """Random interactions, each user's last two being validation and test."""
  rng = np.random.default_rng([seed, per_user])
  users, items, split = [], [], []
  for u in range(num_users):
    count = first_user if u == 0 and first_user else per_user
    chosen = rng.choice(num_items, count, replace=False)
    users += [u] * count
    items += list(chosen)
    split += [0] * (count - 2) + [1, 2]
  return dataset_lib.Dataset(
      user=np.asarray(users, np.int32), item=np.asarray(items, np.int32),
      split=np.asarray(split, np.int8),
      user_ids=np.asarray([f'u{u}' for u in range(num_users)]),
      item_ids=np.asarray([f'i{i}' for i in range(num_items)]))


def small_config(name='lightgcn', optimizer='adam'):
  """configs/test.py for model `name`, sized for `random_dataset`."""
  cfg = load_config()
  cfg.model.name = name
  cfg.model.embed_dim = 8
  cfg.optim.name = optimizer
  cfg.optim.lr = 0.05
  cfg.train.batch_size = 64
  cfg.train.num_negatives = 2
  cfg.eval.batch_users = 16
  return cfg


def train(cfg, ds, mesh, epochs):
  """(trainer, state, last epoch's metrics) after `epochs` epochs."""
  trainer = loop.Trainer(cfg, ds, mesh=mesh)
  state = trainer.init_state()
  metrics = None
  for epoch in range(1, epochs + 1):
    state, metrics = trainer.run_epoch(state, epoch)
  return trainer, state, metrics


def finished_run(workdir, cfg, results_in=''):
  """A workdir as a run of `cfg` leaves it: config.json and metrics.jsonl."""
  os.makedirs(os.path.join(workdir, results_in), exist_ok=True)
  with open(os.path.join(workdir, runinfo.CONFIG), 'w') as f:
    f.write(cfg.to_json_best_effort(indent=2, sort_keys=True))
  with open(os.path.join(workdir, results_in, 'metrics.jsonl'), 'w') as f:
    f.write('{"epoch": 1}\n')


# --- A model's inputs without a dataset: a tiny context and batch.

NUM_USERS, NUM_ITEMS = 12, 20


def make_context(num_modalities, seed=0, masked_share=0.1, dims=(6, 5, 4)):
  """A tiny context; `masked_share` of the items lack each modality."""
  rng = np.random.default_rng([seed, num_modalities])
  users = np.concatenate([np.arange(NUM_USERS), rng.integers(0, NUM_USERS,
                                                             40)])
  items = np.concatenate([rng.integers(0, NUM_ITEMS, NUM_USERS),
                          rng.integers(0, NUM_ITEMS, 40)])
  graph = sparse.sym_normalize(
      sparse.bipartite(users, items, NUM_USERS, NUM_ITEMS)
  )
  features, masks = {}, {}
  for m in range(num_modalities):
    x = rng.normal(size=(NUM_ITEMS, dims[m])).astype(np.float32)
    mask = np.ones(NUM_ITEMS, bool)
    mask[rng.permutation(NUM_ITEMS)[: int(masked_share * NUM_ITEMS)]] = False
    x[~mask] = 0.0  # the store's zero rows for failed items
    features[f'm{m}'] = jnp.asarray(x)
    masks[f'm{m}'] = jnp.asarray(mask)
  return context.ModelContext(
      graph=graph, features=features, masks=masks,
      item_popularity=jnp.ones(NUM_ITEMS), extras={}, num_users=NUM_USERS,
      num_items=NUM_ITEMS)


def make_batch(seed=0, size=8, num_negatives=None):
  """A batch for `make_context`'s sizes; its last row is padding."""
  rng = np.random.default_rng([seed, 99])
  neg_shape = (size,) if num_negatives is None else (size, num_negatives)
  mask = np.ones(size, np.float32)
  mask[-1] = 0.0  # one padded row
  return {
      'users': jnp.asarray(rng.integers(0, NUM_USERS, size), jnp.int32),
      'pos': jnp.asarray(rng.integers(0, NUM_ITEMS, size), jnp.int32),
      'neg': jnp.asarray(rng.integers(0, NUM_ITEMS, neg_shape), jnp.int32),
      'mask': jnp.asarray(mask),
  }
