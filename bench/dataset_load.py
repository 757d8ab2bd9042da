"""Loading speed of the dataset directory's numpy cache.

  python bench/dataset_load.py [--n 10000000]

Prints a table with machine and date: save and load times for n interactions.
"""

import argparse
import datetime
import os
import platform
import tempfile
import time

import numpy as np

from mmjax.data import dataset as dataset_lib


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--n', type=int, default=10_000_000)
  parser.add_argument('--users', type=int, default=1_000_000)
  parser.add_argument('--items', type=int, default=100_000)
  args = parser.parse_args()
  rng = np.random.default_rng(0)
  ds = dataset_lib.Dataset(
      user=rng.integers(0, args.users, args.n, dtype=np.int32),
      item=rng.integers(0, args.items, args.n, dtype=np.int32),
      split=rng.integers(0, 3, args.n).astype(np.int8),
      rating=rng.uniform(1, 5, args.n).astype(np.float32),
      timestamp=rng.integers(0, 2**31, args.n),
      user_ids=np.arange(args.users).astype(str),
      item_ids=np.arange(args.items).astype(str),
      item_table={'title': [f'item {i}' for i in range(args.items)]},
  )
  with tempfile.TemporaryDirectory() as d:
    start = time.perf_counter()
    dataset_lib.save(ds, d)
    save_s = time.perf_counter() - start
    loads = []
    for _ in range(3):
      start = time.perf_counter()
      dataset_lib.load(d)
      loads.append(time.perf_counter() - start)
  print(f'# {platform.node()} {os.cpu_count()} cores, '
        f'{datetime.date.today().isoformat()}')
  print('| interactions | users | items | save s | load s (median of 3) |')
  print('|---|---|---|---|---|')
  print(f'| {args.n:,} | {args.users:,} | {args.items:,} | {save_s:.2f} | '
        f'{np.median(loads):.2f} |')


if __name__ == '__main__':
  main()
