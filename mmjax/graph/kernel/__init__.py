"""The compiled CPU kernels behind `mmjax.graph.sparse.propagate`, the
evaluation's top K and the epoch's shuffle.

A C++ CSR sparse-dense product (`csrc/spmm.cc`), a top-K selection with
seeded ties (`csrc/topk.cc`, wrapped by `topk.py`, used by
`mmjax.eval.ranking`) and a stable radix sort (`csrc/sort.cc`, wrapped by
`shuffle.py`, whose `permutation` the training sampler's epoch order uses),
one library registered with XLA through the FFI.
Build it with `python -m mmjax.graph.kernel.build` (the Makefile does after
installing). When the library is missing or stale and a compiler exists,
the first use builds it (about 10 s, logged); when it cannot be built or
loaded, `propagate` uses the `segment_sum` reference and logs one warning.

Which path `propagate` takes is chosen in one place, here, by `Settings`:
  mode: 'auto' (the kernel where it serves: CPU backend, float32, loaded;
    else the reference), 'reference' (segment_sum everywhere) or 'kernel'
    (the kernel, or an error saying why not; inputs other than float32
    [N, D] take the reference in every mode).
  build: whether a missing or stale library may be compiled on first use.
Set them with `configure(...)` (or the `configured(...)` context manager,
for tests). Until something calls it, the first use resolves them once from
the environment (`from_env`) and keeps them for the process:
  MMJAX_KERNEL: 1 or auto (default), 0 or reference, kernel.
  MMJAX_KERNEL_BUILD=0: never compile on first use (load a built one only).
`propagate` reads the settings when it is traced, so a jitted function keeps
the path it was traced with (so does a new `jax.jit` of the same Python
function: jit caches traces per function, and the settings are not part of
its key): configure before the first trace. The mesh
decides the rest: under `jax.set_mesh` with a 'data' axis of P > 1 devices
the kernel's rows are split over them (`ops.row_split_devices`).
`mmjax.graph.sparse.recording_paths` records the paths actually taken, which
`mmjax.run` writes to runinfo.json. The evaluation's top K follows the same
settings (`topk.in_use`): the kernel in 'auto' and 'kernel' mode on CPU,
`lax.top_k` in 'reference' mode; so does the epoch's shuffle
(`shuffle.in_use`: `jax.random.permutation`'s own sorts where it does not).

Other environment, read once by the library or the build, not per trace:
  MMJAX_KERNEL_THREADS: threads per call, read when the library starts its
    thread pool (default: the CPU count; `set_num_threads` overrides it).
  MMJAX_KERNEL_DIR, CXX, MMJAX_KERNEL_CFLAGS: see `build.py`.

`status()` says whether the kernel is built, loaded and in use here.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import threading
from typing import Iterator

from absl import logging
import jax

from mmjax.graph.kernel import build

# The environment variables that `from_env` reads.
ENV_MODE = 'MMJAX_KERNEL'
ENV_BUILD = 'MMJAX_KERNEL_BUILD'
MODES = ('auto', 'reference', 'kernel')
_ENV_MODES = {'1': 'auto', '0': 'reference', **{m: m for m in MODES}}


@dataclasses.dataclass(frozen=True)
class Settings:
  """How `propagate` chooses its path (see the module docstring).

  Attributes:
    mode: 'auto', 'reference' or 'kernel'.
    build: compile a missing or stale library on first use.
    source: where they came from: 'environment' or 'configure'.
  """

  mode: str = 'auto'
  build: bool = True
  source: str = 'configure'

  def __post_init__(self):
    if self.mode not in MODES:
      raise ValueError(f'propagation mode {self.mode!r}: expected one of '
                       f'{", ".join(MODES)}.')


def from_env() -> Settings:
  """The settings that MMJAX_KERNEL and MMJAX_KERNEL_BUILD ask for.

  Raises:
    ValueError: MMJAX_KERNEL holds another value.
  """
  raw = os.environ.get(ENV_MODE, '1').strip().lower()
  if raw not in _ENV_MODES:
    raise ValueError(f'{ENV_MODE}={os.environ[ENV_MODE]!r}: expected one of '
                     f'{", ".join(_ENV_MODES)}.')
  return Settings(mode=_ENV_MODES[raw],
                  build=os.environ.get(ENV_BUILD, '1') != '0',
                  source='environment')


@dataclasses.dataclass
class _Process:
  """What this process holds: the settings and the loaded library.

  One object, since both are per process by nature: the library is loaded
  into the process and its targets are registered in XLA's process-wide FFI
  registry.
  """

  settings: Settings | None = None
  lib: ctypes.CDLL | None = None
  tried: bool = False
  reason: str = 'not loaded yet'
  warned: bool = False


_lock = threading.Lock()
_process = _Process()


def settings() -> Settings:
  """The settings in force; the first call without `configure` reads the
  environment (`from_env`) and keeps what it found."""
  with _lock:
    if _process.settings is None:
      _process.settings = from_env()
    return _process.settings


def configure(mode: str | None = None, *, build: bool | None = None
              ) -> Settings:
  """Sets how `propagate` chooses its path, for functions traced from now on.

  Args:
    mode: 'auto', 'reference' or 'kernel'; None keeps the current one.
    build: whether a missing library may be compiled on first use; None
      keeps the current one.

  Returns:
    The previous settings (pass their mode and build back to restore them).

  Raises:
    ValueError: an unknown mode.
  """
  old = settings()
  new = Settings(mode=old.mode if mode is None else mode,
                 build=old.build if build is None else bool(build))
  with _lock:
    _process.settings = new
  return old


@contextlib.contextmanager
def configured(mode: str | None = None, *, build: bool | None = None
               ) -> Iterator[Settings]:
  """`configure` for the duration of a `with` block (tests, benchmarks)."""
  old = configure(mode, build=build)
  try:
    yield settings()
  finally:
    with _lock:
      _process.settings = old


def enabled() -> bool:
  """Whether the settings allow the kernel (mode is not 'reference')."""
  return settings().mode != 'reference'


def _load() -> bool:
  """Builds (if needed and allowed), loads and registers the kernel once."""
  allow_build = settings().build
  with _lock:
    if _process.tried:
      return _process.lib is not None
    _process.tried = True
    try:
      if not build.is_current():
        if not allow_build:
          raise RuntimeError(
              f'{build.lib_path()} is missing or stale and building is off '
              f'({ENV_BUILD}=0); run python -m mmjax.graph.kernel.build'
          )
        logging.info('building the propagation kernel: %s', build.lib_path())
        build.build()
      lib = ctypes.CDLL(build.lib_path())
      for name, symbol in (('mmjax_spmm', lib.MmjaxSpmm),
                           ('mmjax_edge_dot', lib.MmjaxEdgeDot),
                           ('mmjax_spmm_t_dw', lib.MmjaxSpmmTDw),
                           ('mmjax_top_k', lib.MmjaxTopK),
                           ('mmjax_sort_key_val', lib.MmjaxSortKeyVal)):
        jax.ffi.register_ffi_target(
            name, jax.ffi.pycapsule(symbol), platform='cpu'
        )
      lib.mmjax_num_threads.restype = ctypes.c_int
      lib.mmjax_set_num_threads.argtypes = [ctypes.c_int]
      _process.lib = lib
      _process.reason = 'loaded'
    except (OSError, RuntimeError, AttributeError) as e:
      _process.reason = f'{type(e).__name__}: {e}'
    return _process.lib is not None


def unavailable_reason() -> str | None:
  """Why `propagate` cannot use the kernel here (None when it can).

  Loads (and if allowed builds) the kernel unless the settings or the
  backend rule it out first.
  """
  if not enabled():
    return f'propagation mode {settings().mode!r}'
  if jax.default_backend() != 'cpu':
    return f'backend {jax.default_backend()}: XLA scatter (segment_sum)'
  return None if _load() else _process.reason


def available() -> bool:
  """Whether `propagate` will use the kernel for float32 inputs here.

  Raises:
    RuntimeError: mode 'kernel' and the kernel cannot serve, with why.
  """
  reason = unavailable_reason()
  if reason is None:
    return True
  mode = settings().mode
  if mode == 'kernel':
    raise RuntimeError(f'propagation mode \'kernel\' but the kernel cannot '
                       f'serve: {reason}.')
  # The kernel is a CPU kernel: on an accelerator segment_sum is the
  # expected path, not a fallback worth a warning.
  if (mode == 'auto' and not _process.warned
      and jax.default_backend() == 'cpu'):
    _process.warned = True
    logging.warning(
        'mmjax propagation kernel unavailable (%s); using the segment_sum '
        'reference (and lax.top_k in evaluation), several times slower on '
        'CPU.', reason,
    )
  return False


def num_threads() -> int:
  """Threads the kernel uses per call (0 when it is not loaded)."""
  return int(_process.lib.mmjax_num_threads()) if _load() else 0


def set_num_threads(n: int) -> None:
  """Sets the kernel's threads per call; n <= 0 restores the default."""
  if _load():
    _process.lib.mmjax_set_num_threads(int(n))


def status(load: bool = True) -> dict[str, object]:
  """Where the kernel stands, for `.ci/run`, runinfo.json and bug reports.

  Args:
    load: load (and if allowed build) the kernel first, when the settings
      and backend allow it; False reports what this process has done so far
      (a run that never propagated has not loaded it).

  Returns:
    mode: the settings' mode; settings_from: 'environment' or 'configure'.
    built: the library exists and matches the sources.
    path: where the library is (or would be).
    loaded: it is loaded and registered with XLA.
    in_use: `propagate` uses it here for float32 inputs.
    reason: why not, or 'loaded'.
    threads: threads per call (0 when not loaded).
  """
  current = settings()
  if load:
    reason = unavailable_reason()
  elif not enabled() or jax.default_backend() != 'cpu':
    reason = unavailable_reason()  # Decided without loading anything.
  else:
    reason = None if _process.lib is not None else _process.reason
  loaded = _process.lib is not None
  return {
      'mode': current.mode,
      'settings_from': current.source,
      'built': build.is_current(),
      'path': build.lib_path(),
      'loaded': loaded,
      'in_use': reason is None,
      'reason': reason or 'loaded',
      'threads': int(_process.lib.mmjax_num_threads()) if loaded else 0,
  }
