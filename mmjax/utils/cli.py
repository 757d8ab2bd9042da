"""What the command-line tools share to turn user errors into one line.

A missing optional package is a set-up problem, not a bug: the message names
the extra that installs it and the make target, instead of a traceback.
"""

from __future__ import annotations

import importlib.util
from typing import Sequence

import ml_collections

# Top-level module -> (the extra that installs it, the command to run).
EXTRAS = {
    'torch': ('extraction', 'make install-extract'),
    'transformers': ('extraction', 'make install-extract'),
    'sentence_transformers': ('extraction', 'make install-extract'),
    'tokenizers': ('extraction', 'make install-extract'),
    'simplemma': ('extraction', 'make install-extract'),
    'soundfile': ('extraction', 'make install-extract'),
    'pytest': ('test', 'make install-test'),
    'yaml': ('bench', 'make install-bench'),
    'pandas': ('bench', 'make install-bench'),
    'torch_geometric': ('bench', 'make install-bench'),
}


def describe_missing_module(name: str | None) -> str | None:
  """One line naming the extras that install module `name`, or None."""
  top = (name or '').split('.')[0]
  if top not in EXTRAS:
    return None
  extra, command = EXTRAS[top]
  return (f'`{top}` is not installed: it is part of the {extra} extras; '
          f'install them with `{command}`.')


def config_arg(argv: Sequence[str]) -> str | None:
  """The value of --config in argv (`--config=x` or `--config x`)."""
  for i, arg in enumerate(argv):
    if arg.startswith('--config='):
      return arg.split('=', 1)[1]
    if arg == '--config' and i + 1 < len(argv):
      return argv[i + 1]
  return None


def load_config_file(spec: str) -> ml_collections.ConfigDict | None:
  """The config of `path[:arg]`, loaded as config_flags does; None on error.

  Used to look at a config before absl parses the flags (to word an error
  or read which fields are optional); config_flags reports a broken file
  itself while parsing, so errors here are not raised.
  """
  path, _, arg = spec.partition(':')
  try:
    module_spec = importlib.util.spec_from_file_location('mmjax_cli_config',
                                                         path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.get_config(arg) if arg else module.get_config()
  except Exception:  # pylint: disable=broad-except
    return None
