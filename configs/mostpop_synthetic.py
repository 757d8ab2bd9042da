r"""MostPop on the synthetic default data (closed form, no training).

  python -m mmjax.launch --config configs/mostpop_synthetic.py \
      --workdir runs/mostpop_synthetic
"""

from typing import Any

import ml_collections

from mmjax.train import defaults
from mmjax.utils import config_args


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config_args.parse_arg(arg)  # No variants; rejects unknown ones.
  c = defaults.base_config()
  c.model.name = 'mostpop'
  return c


def get_sweep() -> list[dict[str, Any]]:
  """MostPop has no hyperparameter: one point."""
  return [{}]
