"""JAX's persistent compilation cache, on for every run unless turned off.

A short run, and a sweep of many short runs, would otherwise pay XLA's
compilation again in every process: on a CPU the first epoch and the first
evaluation of a small dataset are mostly compilation. A cached executable is
the one XLA would compile, so results do not change.

Where the cache lives (the first that is set):
  $JAX_COMPILATION_CACHE_DIR   JAX's own variable (or `jax_compilation_cache_dir`
                               set in the process before the run);
  $MMJAX_COMPILE_CACHE         a folder, or `off` to leave the cache off;
  $XDG_CACHE_HOME/mmjax/jax    default ~/.cache/mmjax/jax.
Every program is cached however fast it compiled (JAX's default keeps only
those over 1 s, and on a CPU most of a run's programs compile faster but add
up to the time to the first result), unless
$JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS says otherwise.

`Counter` counts, between two points of a process, the programs compiled and
those read from the cache (JAX's monitoring events); `mmjax.run` records
them, with the folder, in runinfo.json (`compilation_cache`).

Utilities are leaves: JAX is imported inside the functions, so importing this
module costs nothing.
"""

from __future__ import annotations

import os
import threading
from typing import Any

ENV = 'MMJAX_COMPILE_CACHE'
OFF = 'off'
# JAX's monitoring events (jax/_src/compiler.py): every compilation that
# consults the persistent cache, and those the cache answered.
_REQUEST = '/jax/compilation_cache/compile_requests_use_cache'
_HIT = '/jax/compilation_cache/cache_hits'

_counts = {_REQUEST: 0, _HIT: 0}
_lock = threading.Lock()
_listening = False


def default_dir() -> str | None:
  """The cache folder the environment asks for (module docstring), or None
  when $MMJAX_COMPILE_CACHE is `off`."""
  jax_dir = os.environ.get('JAX_COMPILATION_CACHE_DIR')
  if jax_dir:
    return os.path.abspath(os.path.expanduser(jax_dir))
  ours = os.environ.get(ENV, '')
  if ours.lower() == OFF:
    return None
  if ours:
    return os.path.abspath(os.path.expanduser(ours))
  base = os.environ.get('XDG_CACHE_HOME') or os.path.join(
      os.path.expanduser('~'), '.cache')
  return os.path.join(base, 'mmjax', 'jax')


def _on_event(event: str, **kwargs: Any) -> None:
  del kwargs
  if event in _counts:
    with _lock:
      _counts[event] += 1


def enable() -> str | None:
  """Turns the persistent cache on (before the process compiles anything).

  Keeps a folder already configured in this process; otherwise uses
  `default_dir()`. Returns the folder in use, or None when the cache is off.
  """
  import jax  # pylint: disable=g-import-not-at-top
  global _listening
  with _lock:
    if not _listening:
      jax.monitoring.register_event_listener(_on_event)
      _listening = True
  current = jax.config.jax_compilation_cache_dir
  if current:
    return current
  folder = default_dir()
  if folder is None:
    return None
  os.makedirs(folder, exist_ok=True)
  jax.config.update('jax_compilation_cache_dir', folder)
  if 'JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS' not in os.environ:
    jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
  return folder


class Counter:
  """Programs compiled and read from the cache since it was made."""

  def __init__(self, folder: str | None):
    self.folder = folder
    with _lock:
      self._start = dict(_counts)

  def record(self) -> dict[str, Any]:
    """{'dir', 'compiled', 'from_cache'} for runinfo.json ({'dir': None}
    when the cache is off: JAX then counts nothing)."""
    import jax  # pylint: disable=g-import-not-at-top
    # Off from the start, or turned off since (parallel/mesh.py does for
    # multi-process CPU runs on JAX >= 0.11).
    if self.folder is None or not jax.config.jax_enable_compilation_cache:
      return {'dir': None}
    with _lock:
      requests = _counts[_REQUEST] - self._start[_REQUEST]
      hits = _counts[_HIT] - self._start[_HIT]
    return {'dir': self.folder, 'compiled': requests - hits,
            'from_cache': hits}
