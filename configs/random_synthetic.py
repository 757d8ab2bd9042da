r"""Random on the synthetic default data (seeded scores, no training).

  python -m mmjax.launch --config configs/random_synthetic.py \
      --workdir runs/random_synthetic

Variants: `runlocal` (tiny data). The floor every model must beat: Recall@K
is about K / I. No grid (`get_sweep` varies only the seed).
"""

from typing import Any

import ml_collections

from mmjax.train import defaults
from mmjax.utils import config_args


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = config_args.parse_arg(arg, runlocal=False)
  c = defaults.base_config()
  c.model.name = 'random'
  if args.runlocal:
    defaults.tiny_data(c)
  return c


def get_sweep() -> list[dict[str, Any]]:
  return defaults.sweep({'seed': (0, 1, 2)})
