r"""Random on ml-lvlm (ID only: no features are read).

  python -m mmjax.launch --config configs/random_ml_lvlm.py \
      --workdir runs/random_ml_lvlm
"""

from typing import Any

import ml_collections

from mmjax.train import defaults


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = defaults.sibling_config(__file__, 'random_synthetic').get_config(arg)
  defaults.use_ml_lvlm(c, sources={})
  return c


def get_sweep() -> list[dict[str, Any]]:
  return defaults.sibling_config(__file__, 'random_synthetic').get_sweep()
