"""What the command-line tools share to turn user errors into one line.

A missing optional package is a set-up problem, not a bug: the message names
the extra that installs it and the make target, instead of a traceback.
"""

from __future__ import annotations

# Top-level module -> (the extra that installs it, the command to run).
EXTRAS = {
    'torch': ('extraction', 'make install-extract'),
    'transformers': ('extraction', 'make install-extract'),
    'sentence_transformers': ('extraction', 'make install-extract'),
    'tokenizers': ('extraction', 'make install-extract'),
    'simplemma': ('extraction', 'make install-extract'),
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
