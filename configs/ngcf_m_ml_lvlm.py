r"""NGCF-M on ml-lvlm with MiniLM features (title+genres, LVLM poster text).

  python -m mmjax.features.extract --config configs/features/ml_lvlm.py
  python -m mmjax.launch --config configs/ngcf_m_ml_lvlm.py \
      --workdir runs/ngcf_m_ml_lvlm

The model section is configs/ngcf_m_synthetic.py's (same variants: `paper`);
`defaults.use_ml_lvlm` picks the data and features. `get_sweep` is the CIKM
2025 grid.
"""

from typing import Any

import ml_collections

from mmjax.train import defaults


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = defaults.sibling_config(__file__, 'ngcf_m_synthetic').get_config(arg)
  defaults.use_ml_lvlm(c)
  return c


def get_sweep() -> list[dict[str, Any]]:
  return defaults.sweep(defaults.CIKM_GRID)
