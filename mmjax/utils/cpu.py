"""The host CPU's name and copy bandwidth, importing the standard library only.

Apart from `runinfo` (which imports JAX) so that processes that must not
import JAX read it the same way: bench/model_speed.py's parent and
bench/mmrec/run_mmrec.py (MMRec's torch process).
"""

import platform


def name() -> str:
  """The CPU model from /proc/cpuinfo, else what `platform` knows."""
  try:
    with open('/proc/cpuinfo', encoding='utf-8') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def copy_bandwidth() -> float:
  """Bytes per second of the best of five 256 MB numpy copies (read + write).

  The memory rate the benchmarks' floors divide by (bench/propagate.py,
  bench/model_speed.py); numpy is imported here, not with the module.
  """
  import time  # pylint: disable=g-import-not-at-top

  import numpy as np  # pylint: disable=g-import-not-at-top
  src = np.ones(64 << 20, np.float32)
  dst = np.empty_like(src)
  best = float('inf')
  for _ in range(5):
    t0 = time.perf_counter()
    np.copyto(dst, src)
    best = min(best, time.perf_counter() - t0)
  return 2 * src.nbytes / best
