r"""One full training epoch at scale: 1M users x 100k items x 10M interactions.

  python bench/scale.py                      # LightGCN and FREEDOM
  python bench/scale.py --models lightgcn --batch 32768

The data is the built-in synthetic dataset's `large` variant
(mmjax/data/datasets.py; prepared once under data/, feature matrices emitted
directly, no images). Each model runs in its own subprocess so that its peak
RSS is its own: the trainer is built (graph, features, FREEDOM's two frozen
100k-item kNN graphs in `prepare`), the epoch program is compiled ahead of
time, then ONE full epoch (every training interaction, batch 2^15) is timed on
the default device with the compiled propagation kernel. Prints a table with
machine and date.
"""

from __future__ import annotations

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

from mmjax.graph import kernel
from mmjax.parallel import mesh as mesh_lib
from mmjax.train import defaults
from mmjax.train import loop

_MODELS = flags.DEFINE_list('models', ['lightgcn', 'freedom'],
                            'Models to time (lightgcn, freedom, bprmf, ...).')
_BATCH = flags.DEFINE_integer('batch', 2**15, 'Training batch size.')
_ROOT = flags.DEFINE_string('root', None, 'Dataset root (default: data/).')
_ONE = flags.DEFINE_string('one', None, 'Internal: run one model, print JSON.')


def config(name: str) -> ml_collections.ConfigDict:
  """The training config of one model on the large synthetic data."""
  c = defaults.base_config()
  c.data.name = 'synthetic:large'
  c.data.overrides = ml_collections.ConfigDict(
      {'synthetic': {'max_images': 0}})
  if _ROOT.value:
    c.data.root = _ROOT.value
  c.model.name = name
  c.model.embed_dim = 64
  c.train.batch_size = _BATCH.value
  if name == 'lightgcn':
    c.model.num_layers = 2
  elif name == 'freedom':
    # configs/freedom.py's model section (MMRec's defaults).
    c.features.sources = ml_collections.ConfigDict(
        {'textual': 'synthetic_text', 'visual': 'synthetic_visual'})
    c.model.update(dict(reg_weight=0.01, num_layers=2, num_mm_layers=1,
                        knn_k=10, dropout=0.8, train_features=True,
                        convention='mmrec'))
    c.model.mm_weights = ml_collections.ConfigDict(
        {'visual': 0.1, 'textual': 0.9})
  return c


def _rss_gb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def run_one(name: str) -> dict:
  """Builds, compiles and times one epoch of `name`; returns a record."""
  cfg = config(name)
  t0 = time.perf_counter()
  ds, data_dir = loop.load_dataset(cfg)
  load_s = time.perf_counter() - t0
  mesh = mesh_lib.make_mesh(1)
  t0 = time.perf_counter()
  trainer = loop.Trainer(cfg, ds, data_dir, mesh)
  jax.block_until_ready(trainer.ctx)
  build_s = time.perf_counter() - t0
  state = trainer.init_state()
  epoch = jax.device_put(np.int32(1), trainer.repl)
  args = (state, trainer.ctx, trainer.td, epoch, trainer.data_key,
          trainer.train_key)
  t0 = time.perf_counter()
  with jax.set_mesh(mesh):
    compiled = trainer.epoch_fn.lower(*args).compile()
  compile_s = time.perf_counter() - t0
  t0, c0 = time.perf_counter(), time.process_time()
  state, metrics = compiled(*args)
  jax.block_until_ready(state)
  epoch_s = time.perf_counter() - t0
  # CPU seconds of all threads: what the epoch costs when other jobs share
  # the machine and stretch its wall time.
  epoch_cpu_s = time.process_time() - c0
  return {
      'model': name, 'users': ds.num_users, 'items': ds.num_items,
      'train': trainer.num_train, 'batch': _BATCH.value,
      'steps': trainer.steps_per_epoch, 'load_s': load_s,
      'build_s': build_s, 'compile_s': compile_s, 'epoch_s': epoch_s,
      'epoch_cpu_s': epoch_cpu_s,
      'samples_per_s': trainer.num_train / epoch_s,
      'loss': float(metrics['train/loss']), 'peak_rss_gb': _rss_gb(),
      'kernel': kernel.status().get('in_use'),
  }


def main(argv):
  del argv
  if _ONE.value:
    print('RESULT ' + json.dumps(run_one(_ONE.value)), flush=True)
    return
  # Prepare the data once, outside the timed subprocesses.
  loop.load_dataset(config(_MODELS.value[0]))
  rows = []
  for name in _MODELS.value:
    cmd = [sys.executable, os.path.abspath(__file__), f'--one={name}',
           f'--batch={_BATCH.value}']
    if _ROOT.value:
      cmd.append(f'--root={_ROOT.value}')
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('RESULT ')]
    if proc.returncode or not lines:
      print(f'{name}: failed (exit {proc.returncode})\n{proc.stderr[-3000:]}')
      continue
    rows.append(json.loads(lines[-1][len('RESULT '):]))
  load = os.getloadavg()[0]
  print(f'# scale  {datetime.datetime.now():%Y-%m-%d %H:%M}  '
        f'{os.cpu_count()} CPUs, JAX {jax.__version__} '
        f'{jax.devices()[0].platform}, load {load:.1f}')
  print('| model | users | items | train interactions | batch | steps | '
        'build s | compile s | epoch s | epoch CPU s | samples/s | '
        'peak RSS GB | kernel |')
  print('|---|---|---|---|---|---|---|---|---|---|---|---|---|')
  for r in rows:
    print(f'| {r["model"]} | {r["users"]:,} | {r["items"]:,} | '
          f'{r["train"]:,} | {r["batch"]} | {r["steps"]} | '
          f'{r["build_s"]:.1f} | {r["compile_s"]:.1f} | {r["epoch_s"]:.1f} | '
          f'{r["epoch_cpu_s"]:.1f} | '
          f'{r["samples_per_s"]:,.0f} | {r["peak_rss_gb"]:.2f} | '
          f'{r["kernel"]} |')


if __name__ == '__main__':
  app.run(main)
