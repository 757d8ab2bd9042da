r"""GRCN on ml-lvlm with MiniLM features (title+genres, LVLM poster text).

  python -m mmjax.features.extract --config configs/features/ml_lvlm.py
  python -m mmjax.launch --config configs/grcn_ml_lvlm.py \
      --workdir runs/grcn_ml_lvlm

The model section is configs/grcn_synthetic.py's (same variants: `paper`);
`defaults.use_ml_lvlm` picks the data and features. `get_sweep` is MMRec's
GRCN grid.
"""

from typing import Any

import ml_collections

from mmjax.train import defaults


def _synthetic():
  return defaults.sibling_config(__file__, 'grcn_synthetic')


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = _synthetic().get_config(arg)
  defaults.use_ml_lvlm(c)
  return c


def get_sweep() -> list[dict[str, Any]]:
  return _synthetic().get_sweep()
