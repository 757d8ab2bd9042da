"""Times the blockwise item-item kNN graph (`mmjax.graph.knn.knn_graph`).

Builds the k=10 cosine graph of a random [I, F] feature matrix (default
100k x 384 and 100k x 2048) on the default JAX device and prints a Markdown
table with the machine and date: the first call (compile included), the
fastest of `--repeats` warm calls, the 1-minute load average before each
run, and each row's warm time relative to the first row (the ratio that
survives a loaded machine better than the seconds). Run with one device,
niced on a shared machine:

  nice -n 10 python bench/knn_speed.py
  nice -n 10 python bench/knn_speed.py --items 20000 --dims 384,2048 \
      --block 1024 --repeats 2
"""

import argparse
import datetime
import os
import time

import jax
import numpy as np

from mmjax.graph import knn
from mmjax.utils import cpu


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--items', type=int, default=100_000)
  parser.add_argument('--dims', default='384,2048')
  parser.add_argument('--k', type=int, default=10)
  parser.add_argument('--block', type=int, default=1024)
  parser.add_argument('--repeats', type=int, default=1)
  args = parser.parse_args()

  print(
      f'# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC'
      f'  {cpu.name()}, {os.cpu_count()} cores, '
      f'JAX {jax.__version__}, '
      f'device {jax.devices()[0]}'
  )
  print('| items | dim | k | block | first call s (with compile) | warm s '
        '| warm / first row | load |')
  print('|---|---|---|---|---|---|---|---|', flush=True)
  build = jax.jit(
      lambda x: knn.knn_graph(x, args.k, block_size=args.block),
  )
  base = None
  for dim in [int(d) for d in args.dims.split(',')]:
    rng = np.random.default_rng([0, dim])
    x = rng.normal(size=(args.items, dim)).astype(np.float32)
    x = jax.device_put(x)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    jax.block_until_ready(build(x))
    first = time.perf_counter() - start
    times = []
    for _ in range(args.repeats):
      start = time.perf_counter()
      jax.block_until_ready(build(x))
      times.append(time.perf_counter() - start)
    warm = min(times) if times else first
    base = base or warm
    print(
        f'| {args.items:,} | {dim} | {args.k} | {args.block} | {first:.1f} '
        f'| {warm:.1f} | {warm / base:.2f} | {load:.1f} |', flush=True
    )


if __name__ == '__main__':
  main()
