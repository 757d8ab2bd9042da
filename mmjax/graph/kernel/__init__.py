"""The compiled CPU kernel behind `mmjax.graph.sparse.propagate`.

A C++ CSR sparse-dense product (`csrc/spmm.cc`) registered with XLA through
the FFI. Build it with `python -m mmjax.graph.kernel.build` (the Makefile does
after installing). When the library is missing or stale and a compiler exists,
the first use builds it (about 10 s, logged); when it cannot be built or
loaded, `propagate` uses the `segment_sum` reference and logs one warning.

Environment (read when a function is traced; a jitted function keeps the
path it was traced with):
  MMJAX_KERNEL=0: never use the kernel (reference everywhere).
  MMJAX_KERNEL_BUILD=0: never compile on first use (load a built one only).
  MMJAX_KERNEL_THREADS: threads per call (default: the CPU count).

`status()` says whether the kernel is built, loaded and in use here.
"""

from __future__ import annotations

import ctypes
import os
import threading

from absl import logging
import jax

from mmjax.graph.kernel import build

_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_tried = False
_reason = 'not loaded yet'
_warned = False


def enabled() -> bool:
  """False when MMJAX_KERNEL=0 (read on every call, so tests may toggle it)."""
  return os.environ.get('MMJAX_KERNEL', '1') != '0'


def _load() -> bool:
  """Builds (if needed and allowed), loads and registers the kernel once."""
  global _lib, _tried, _reason
  with _lock:
    if _tried:
      return _lib is not None
    _tried = True
    try:
      if not build.is_current():
        if os.environ.get('MMJAX_KERNEL_BUILD', '1') == '0':
          raise RuntimeError(
              f'{build.lib_path()} is missing or stale and '
              'MMJAX_KERNEL_BUILD=0; run python -m mmjax.graph.kernel.build'
          )
        logging.info('building the propagation kernel: %s', build.lib_path())
        build.build()
      lib = ctypes.CDLL(build.lib_path())
      for name, symbol in (('mmjax_spmm', lib.MmjaxSpmm),
                           ('mmjax_edge_dot', lib.MmjaxEdgeDot),
                           ('mmjax_spmm_t_dw', lib.MmjaxSpmmTDw)):
        jax.ffi.register_ffi_target(
            name, jax.ffi.pycapsule(symbol), platform='cpu'
        )
      lib.mmjax_num_threads.restype = ctypes.c_int
      lib.mmjax_set_num_threads.argtypes = [ctypes.c_int]
      _lib = lib
      _reason = 'loaded'
    except (OSError, RuntimeError, AttributeError) as e:
      _reason = f'{type(e).__name__}: {e}'
    return _lib is not None


def available() -> bool:
  """Whether `propagate` will use the kernel for float32 inputs on CPU."""
  global _warned
  if not enabled() or jax.default_backend() != 'cpu':
    return False
  ok = _load()
  if not ok and not _warned:
    _warned = True
    logging.warning(
        'mmjax propagation kernel unavailable (%s); using the segment_sum '
        'reference, which is several times slower on CPU.', _reason,
    )
  return ok


def num_threads() -> int:
  """Threads the kernel uses per call (0 when it is not loaded)."""
  return int(_lib.mmjax_num_threads()) if _load() else 0


def set_num_threads(n: int) -> None:
  """Sets the kernel's threads per call; n <= 0 restores the default."""
  if _load():
    _lib.mmjax_set_num_threads(int(n))


def status() -> dict[str, object]:
  """Where the kernel stands, for `.ci/run` and bug reports.

  Loads (and if needed builds) the kernel first.

  Returns:
    built: the library exists and matches the sources.
    path: where the library is (or would be).
    loaded: it is loaded and registered with XLA.
    in_use: `propagate` uses it here (loaded, enabled, CPU backend).
    reason: why not, or 'loaded'.
    threads: threads per call.
  """
  loaded = _load() if enabled() else False
  reason = _reason
  if not enabled():
    reason = 'disabled by MMJAX_KERNEL=0'
  elif jax.default_backend() != 'cpu':
    reason = f'backend {jax.default_backend()}: XLA scatter (segment_sum)'
  return {
      'built': build.is_current(),
      'path': build.lib_path(),
      'loaded': loaded,
      'in_use': bool(loaded and enabled() and jax.default_backend() == 'cpu'),
      'reason': reason,
      'threads': num_threads() if loaded else 0,
  }
