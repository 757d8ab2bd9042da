r"""Training and evaluation speed of BPR-MF and LightGCN on synthetic data.

  python bench/train_speed.py                 # 30k and 1M interactions
  python bench/train_speed.py --sizes=30k,1m,10m

For each size (own subprocess, so peak memory is per size): epoch time and
training samples/s of BPR-MF and LightGCN (after a warm-up epoch that
compiles), and full-ranking evaluation users/s on the validation split. At
10M, an epoch is projected from 50 steps at batch 2^15 after warm-up, and
evaluation from the first 16k users. One device (the default CPU device),
embed_dim 64, LightGCN with 2 layers, one negative per positive.
"""

import dataclasses
import datetime
import json
import os
import resource
import subprocess
import sys
import time

from absl import app
from absl import flags
import jax
import ml_collections
import numpy as np

from mmjax.data import dataset as dataset_lib
from mmjax.data import synthetic
from mmjax.eval import ranking
from mmjax.parallel import mesh as mesh_lib
from mmjax.train import defaults
from mmjax.train import loop
from mmjax.utils import cpu

_SIZES = flags.DEFINE_list('sizes', ['30k', '1m'], '30k, 1m and/or 10m.')
_ONE = flags.DEFINE_string('one', None, 'Internal: run one size, print JSON.')

# size -> (users, items, interactions per user, batch, steps or None, users
# evaluated or None).
SIZES = {
    '30k': (2_000, 1_000, 15, 2048, None, None),
    '1m': (50_000, 20_000, 20, 8192, None, None),
    '10m': (1_000_000, 100_000, 10, 2**15, 50, 16_384),
}


def make_dataset(size: str) -> dataset_lib.Dataset:
  """Synthetic interactions (no images, no features), random 8:1:1 split."""
  num_users, num_items, per_user, *_ = SIZES[size]
  cfg = synthetic.default_config()
  cfg.num_users, cfg.num_items = num_users, num_items
  cfg.interactions_per_user = per_user
  s = synthetic.sample(cfg, 0)
  pairs = np.unique(s['user'].astype(np.int64) * num_items + s['item'])
  user = (pairs // num_items).astype(np.int32)
  item = (pairs % num_items).astype(np.int32)
  rng = np.random.default_rng([0, 1])
  split = rng.choice(3, size=len(user), p=(0.8, 0.1, 0.1)).astype(np.int8)
  return dataset_lib.Dataset(
      user=user, item=item, split=split,
      user_ids=np.arange(num_users).astype(str),
      item_ids=np.arange(num_items).astype(str))


def config(name: str, batch: int) -> ml_collections.ConfigDict:
  c = defaults.base_config()
  c.model.name = name
  c.model.num_layers = 2 if name == 'lightgcn' else 0
  c.train.batch_size = batch
  c.eval.topk = (20,)
  c.eval.batch_users = 1024
  return c


def run_one(size: str) -> dict:
  _, _, _, batch, steps, eval_users = SIZES[size]
  t0 = time.perf_counter()
  ds = make_dataset(size)
  out = {'size': size, 'interactions': len(ds), 'users': ds.num_users,
         'items': ds.num_items, 'batch': batch,
         'data_s': time.perf_counter() - t0}
  mesh = mesh_lib.make_mesh(1)
  for name in ('bprmf', 'lightgcn'):
    trainer = loop.Trainer(config(name, batch), ds, mesh=mesh)
    n_train = trainer.num_train
    if steps is not None:
      # A partial epoch of `steps` batches; projected to the full epoch.
      td = trainer.td
      trainer.td = dataclasses.replace(
          td, users=td.users[:steps * batch], items=td.items[:steps * batch])
    timed = trainer.td.users.shape[0]
    state = trainer.init_state()
    state, _ = trainer.run_epoch(state, 1)  # compile + warm-up
    t0 = time.perf_counter()
    state, metrics = trainer.run_epoch(state, 2)
    jax.block_until_ready(state)
    dt = time.perf_counter() - t0
    out[f'{name}/epoch_s'] = dt * n_train / timed
    out[f'{name}/samples_per_s'] = timed / dt
    out[f'{name}/loss'] = metrics['train/loss']
    evaluator = trainer.evaluators['val']
    if eval_users is not None:
      data = dataclasses.replace(evaluator.data,
                                 users=evaluator.data.users[:eval_users])
      evaluator = ranking.Evaluator(data, trainer.cfg.eval, mesh,
                                    trainer.score_fn)
    # The embeddings the evaluator scores with (models without `score`).
    params = trainer.eval_params(state.params)
    key = jax.random.key(0)
    evaluator(params, trainer.ctx, key)  # compile
    t0 = time.perf_counter()
    evaluator(params, trainer.ctx, key)
    out[f'{name}/eval_users_per_s'] = (
        len(evaluator.data.users) / (time.perf_counter() - t0))
  out['peak_rss_gb'] = resource.getrusage(
      resource.RUSAGE_SELF).ru_maxrss / 2**20
  return out


def machine() -> str:
  return (f'{cpu.name()}, {os.cpu_count()} cores, JAX '
          f'{jax.__version__} {jax.devices()[0].platform}')


def main(argv):
  del argv
  if _ONE.value:
    print('RESULT ' + json.dumps(run_one(_ONE.value)), flush=True)
    return
  rows = []
  for size in _SIZES.value:
    proc = subprocess.run(
        [sys.executable, __file__, f'--one={size}'], capture_output=True,
        text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines()
             if ln.startswith('RESULT ')]
    if proc.returncode or not lines:
      print(f'{size}: failed\n{proc.stderr[-2000:]}')
      continue
    rows.append(json.loads(lines[-1][len('RESULT '):]))
  print(f'# train_speed  {datetime.date.today()}  {machine()}')
  print('| interactions | users | items | batch | model | epoch s | '
        'samples/s | eval users/s | peak RSS GB |')
  print('|---|---|---|---|---|---|---|---|---|')
  for r in rows:
    for name in ('bprmf', 'lightgcn'):
      print(f'| {r["interactions"]:,} | {r["users"]:,} | {r["items"]:,} | '
            f'{r["batch"]} | {name} | {r[name + "/epoch_s"]:.3f} | '
            f'{r[name + "/samples_per_s"]:,.0f} | '
            f'{r[name + "/eval_users_per_s"]:,.0f} | '
            f'{r["peak_rss_gb"]:.2f} |')


if __name__ == '__main__':
  app.run(main)
