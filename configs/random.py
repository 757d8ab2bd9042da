r"""Random (seeded scores, no training) on the synthetic data or ml-lvlm.

  python -m mmjax.launch --config configs/random.py \
      --workdir runs/random_synthetic
  python -m mmjax.launch --config configs/random.py:data=ml_lvlm \
      --workdir runs/random_ml_lvlm

Variants: `data=synthetic` (the default) or `data=ml_lvlm` (no features are
read), `runlocal` (tiny synthetic data). The floor every model must beat:
Recall@K is about K / I. No grid (`get_sweep` varies only the seed).
"""

from typing import Any

import ml_collections

from mmjax.models import options
from mmjax.train import defaults
from mmjax.utils import config_args


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = config_args.parse_arg(arg, data='synthetic', runlocal=False)
  c = defaults.base_config()
  c.model = options.section('random')
  if args.runlocal:
    defaults.tiny_data(c)
  defaults.use_data(c, args.data, sources={})
  return c


def get_sweep() -> list[dict[str, Any]]:
  return defaults.sweep({'seed': (0, 1, 2)})
