"""The host CPU's name, with the standard library only.

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
