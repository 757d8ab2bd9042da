"""Compiles the CPU kernel library: `python -m mmjax.graph.kernel.build`.

The shared library is built with the system C++ compiler (`$CXX`, else `g++`)
against the XLA FFI headers that jaxlib ships, so nothing is downloaded. It is
tuned for the machine that builds it (`-march=native`): build where it runs,
never ship the file. A stamp beside the library records a hash of the source,
the flags and the jaxlib version; a library whose stamp differs is stale and is
rebuilt (or, when it cannot be, not loaded).

The file name carries the jaxlib version (`libmmjax_kernel.jaxlib-0.10.2.so`):
the FFI headers, and so the library, belong to one jaxlib, and two
environments of one checkout with different JAX versions (`make test` and
`make test-newest-jax`) each keep their own library instead of rebuilding
the other's on every start. The source compiles against the FFI headers of
every supported jaxlib (0.10 to the newest); it uses only the typed FFI API
(`xla/ffi/api/ffi.h`) that they all ship.

Environment:
  MMJAX_KERNEL_DIR: where the library goes (default: `_lib/` in this package
    directory, or `~/.cache/mmjax/kernel` when that is not writable).
  CXX: the compiler.
  MMJAX_KERNEL_CFLAGS: replaces the default optimisation flags.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

from absl import app
from absl import flags
from absl import logging

LIB_PREFIX = 'libmmjax_kernel'
_HERE = os.path.dirname(os.path.abspath(__file__))
# One library for every handler: the propagation products (spmm.cc), the
# evaluation's top-K selection (topk.cc, which reads spmm.cc's thread count)
# and the epoch shuffle's stable sort (sort.cc).
SOURCES = (os.path.join(_HERE, 'csrc', 'spmm.cc'),
           os.path.join(_HERE, 'csrc', 'topk.cc'),
           os.path.join(_HERE, 'csrc', 'sort.cc'))
DEFAULT_CFLAGS = ('-O3', '-march=native', '-funroll-loops')


def lib_dir() -> str:
  """MMJAX_KERNEL_DIR, else `_lib/` here, else (read-only install) a cache."""
  if os.environ.get('MMJAX_KERNEL_DIR'):
    return os.environ['MMJAX_KERNEL_DIR']
  if os.access(_HERE, os.W_OK):
    return os.path.join(_HERE, '_lib')
  cache = os.environ.get('XDG_CACHE_HOME') or os.path.expanduser('~/.cache')
  return os.path.join(cache, 'mmjax', 'kernel')


def lib_name() -> str:
  """The library's file name for the installed jaxlib."""
  import jaxlib  # pylint: disable=g-import-not-at-top

  return f'{LIB_PREFIX}.jaxlib-{jaxlib.__version__}.so'


def lib_path() -> str:
  return os.path.join(lib_dir(), lib_name())


def compiler() -> str | None:
  """The compiler's path, or None when there is none."""
  return shutil.which(os.environ.get('CXX', 'g++'))


def cflags() -> list[str]:
  env = os.environ.get('MMJAX_KERNEL_CFLAGS')
  return env.split() if env else list(DEFAULT_CFLAGS)


def stamp() -> str:
  """Hash of what the library depends on: sources, flags, jaxlib version."""
  import jaxlib  # pylint: disable=g-import-not-at-top

  h = hashlib.sha256()
  for path in SOURCES:
    with open(path, 'rb') as f:
      h.update(f.read())
  h.update(' '.join(cflags()).encode())
  h.update(jaxlib.__version__.encode())
  return h.hexdigest()[:16]


def is_current() -> bool:
  """Whether the library exists and was built from the present sources."""
  try:
    with open(lib_path() + '.stamp') as f:
      return f.read().strip() == stamp() and os.path.exists(lib_path())
  except OSError:
    return False


def build(verbose: bool = False) -> str:
  """Compiles the library; returns its path.

  The file is written under a temporary name and renamed, so a concurrent
  loader never sees half a library.

  Raises:
    RuntimeError: no compiler, or the compile failed (with its output).
  """
  import jax  # pylint: disable=g-import-not-at-top

  cxx = compiler()
  if cxx is None:
    raise RuntimeError(
        f'no C++ compiler ({os.environ.get("CXX", "g++")}) on PATH; '
        'propagate uses the segment_sum reference.'
    )
  os.makedirs(lib_dir(), exist_ok=True)
  fd, tmp = tempfile.mkstemp(suffix='.so', dir=lib_dir())
  os.close(fd)
  cmd = [
      cxx, '-std=c++17', '-shared', '-fPIC', '-pthread',
      '-fvisibility=hidden', *cflags(), '-I', jax.ffi.include_dir(),
      *SOURCES, '-o', tmp,
  ]
  if verbose:
    logging.info('%s', ' '.join(cmd))
  proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
  if proc.returncode != 0:
    os.unlink(tmp)
    raise RuntimeError(
        f'compiling {" ".join(SOURCES)} failed ({proc.returncode}):\n'
        f'{" ".join(cmd)}\n{proc.stderr[-4000:]}'
    )
  os.replace(tmp, lib_path())
  with open(lib_path() + '.stamp.tmp', 'w') as f:
    f.write(stamp() + '\n')
  os.replace(lib_path() + '.stamp.tmp', lib_path() + '.stamp')
  return lib_path()


def main(argv):
  del argv
  if is_current() and not flags.FLAGS.force:
    print(f'up to date: {lib_path()}')
    return 0
  try:
    path = build(verbose=True)
  except RuntimeError as e:
    print(f'error: {e}', file=sys.stderr)
    return 1
  print(f'built: {path}')
  return 0


if __name__ == '__main__':
  # Defined here, not at import: the loader imports this module and must not
  # add a `--force` flag to every program that propagates.
  flags.DEFINE_bool('force', False, 'Rebuild even when up to date.')
  app.run(main)
