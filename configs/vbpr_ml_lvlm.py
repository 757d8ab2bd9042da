r"""VBPR on ml-lvlm with MiniLM features (title+genres, LVLM poster text).

  python -m mmjax.features.extract --config configs/features/ml_lvlm.py
  python -m mmjax.launch --config configs/vbpr_ml_lvlm.py \
      --workdir runs/vbpr_ml_lvlm

The model section is configs/vbpr_synthetic.py's (same variants: `elliot`);
`defaults.use_ml_lvlm` picks the data and features. `get_sweep` is the CIKM
2025 grid.
"""

from typing import Any

import ml_collections

from mmjax.train import defaults


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = defaults.sibling_config(__file__, 'vbpr_synthetic').get_config(arg)
  defaults.use_ml_lvlm(c)
  return c


def get_sweep() -> list[dict[str, Any]]:
  return defaults.sweep(defaults.CIKM_GRID)
