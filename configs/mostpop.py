r"""MostPop (closed form, no training) on the synthetic data or ml-lvlm.

  python -m mmjax.launch --config configs/mostpop.py \
      --workdir runs/mostpop_synthetic
  python -m mmjax.launch --config configs/mostpop.py:data=ml_lvlm \
      --workdir runs/mostpop_ml_lvlm

Variants: `data=synthetic` (the default) or `data=ml_lvlm`. MostPop has no
hyperparameter: `get_sweep` is one point.
"""

from typing import Any

import ml_collections

from mmjax.models import options
from mmjax.train import defaults
from mmjax.utils import config_args


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = config_args.parse_arg(arg, data='synthetic')
  c = defaults.base_config()
  c.model = options.section('mostpop')
  defaults.use_data(c, args.data, sources={})
  return c


def get_sweep() -> list[dict[str, Any]]:
  """MostPop has no hyperparameter: one point."""
  return [{}]
