r"""LGMRec on ml-lvlm with MiniLM features (title+genres, LVLM poster text).

  python -m mmjax.features.extract --config configs/features/ml_lvlm.py
  python -m mmjax.launch --config configs/lgmrec_ml_lvlm.py \
      --workdir runs/lgmrec_ml_lvlm

The model section is configs/lgmrec_synthetic.py's; `defaults.use_ml_lvlm`
picks the data and features. `get_sweep` is MMRec's published points, as
there.
"""

from typing import Any

import ml_collections

from mmjax.train import defaults


def _synthetic():
  return defaults.sibling_config(__file__, 'lgmrec_synthetic')


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = _synthetic().get_config(arg)
  defaults.use_ml_lvlm(c)
  return c


def get_sweep() -> list[dict[str, Any]]:
  return _synthetic().get_sweep()
