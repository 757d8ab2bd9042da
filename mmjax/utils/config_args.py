"""The `:variant` argument of config files, in the spirit of big_vision's
`parse_arg`.

`get_config('runlocal,features=lvlm_qwen2vl')` receives the text after the
colon of `--config configs/x.py:runlocal,features=lvlm_qwen2vl`. Variants pick
presets (a smaller dataset, a feature set); hyperparameters go through
`--config.a.b=v`, never through the variant string.
"""

from __future__ import annotations

from typing import Any

import ml_collections


def parse_arg(arg: str | None, lazy: bool = False,
              **spec: Any) -> ml_collections.ConfigDict:
  """Parses 'a,b=1,c=x' into a ConfigDict typed by the defaults in `spec`.

  A bare name sets a bool default to True. A value is converted to the type
  of its default (bool accepts true/false/1/0).

  Args:
    arg: the variant string, or None/'' for the defaults.
    lazy: accept names that `spec` does not define (kept as strings).
    **spec: name -> default value.

  Returns:
    A ConfigDict with every name of `spec` (and, if lazy, the extra names).

  Raises:
    ValueError: an unknown name (unless lazy), a bare name whose default is
      not a bool, or a value that does not parse as its default's type.
  """
  out = ml_collections.ConfigDict(dict(spec))
  for part in (arg or '').split(','):
    part = part.strip()
    if not part:
      continue
    name, eq, text = part.partition('=')
    name = name.strip()
    if name not in spec:
      if not lazy:
        raise ValueError(f'unknown config variant {name!r}; known: '
                         f'{sorted(spec)}.')
      out[name] = text if eq else True
      continue
    default = spec[name]
    if not eq:
      if not isinstance(default, bool):
        raise ValueError(f'variant {name!r} needs a value ({name}=...).')
      out[name] = True
    elif isinstance(default, bool):
      if text.lower() not in ('true', 'false', '1', '0'):
        raise ValueError(f'variant {name}={text!r}: expected true or false.')
      out[name] = text.lower() in ('true', '1')
    elif default is None:
      out[name] = text
    else:
      try:
        out[name] = type(default)(text)
      except ValueError as e:
        raise ValueError(f'variant {name}={text!r}: expected '
                         f'{type(default).__name__}.') from e
  return out
