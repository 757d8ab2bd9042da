"""Times the blockwise item-item kNN graph (`mmjax.graph.knn.knn_graph`).

Prints seconds for a random [I, F] feature matrix (default 100k x 384 and
100k x 2048, k=10) on the default JAX device, first call (with compile) and a
second call, with the machine and date. Run with one device:

  python bench/knn_speed.py
  python bench/knn_speed.py --items 20000 --dims 384,2048 --block 1024
"""

import argparse
import datetime
import os
import platform
import time

import jax
import numpy as np

from mmjax.graph import knn


def _cpu_name() -> str:
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or 'unknown'


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--items', type=int, default=100_000)
  parser.add_argument('--dims', default='384,2048')
  parser.add_argument('--k', type=int, default=10)
  parser.add_argument('--block', type=int, default=1024)
  parser.add_argument('--repeats', type=int, default=1)
  args = parser.parse_args()

  print(
      f'# {datetime.date.today()}  {_cpu_name()}, {os.cpu_count()} cores, '
      f'JAX {jax.__version__}, device {jax.devices()[0]}'
  )
  build = jax.jit(
      lambda x: knn.knn_graph(x, args.k, block_size=args.block),
  )
  for dim in [int(d) for d in args.dims.split(',')]:
    rng = np.random.default_rng([0, dim])
    x = rng.normal(size=(args.items, dim)).astype(np.float32)
    x = jax.device_put(x)
    start = time.perf_counter()
    jax.block_until_ready(build(x))
    first = time.perf_counter() - start
    times = []
    for _ in range(args.repeats):
      start = time.perf_counter()
      jax.block_until_ready(build(x))
      times.append(time.perf_counter() - start)
    print(
        f'items={args.items} dim={dim} k={args.k} block={args.block}: '
        f'{first:.1f} s first call (with compile), '
        f'{min(times):.1f} s warm', flush=True
    )


if __name__ == '__main__':
  main()
