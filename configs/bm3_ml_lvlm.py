r"""BM3 on ml-lvlm (MiniLM features: title+genres as text, the LVLM's poster description as the visual modality).

  python -m mmjax.features.extract --config configs/features/ml_lvlm.py
  python -m mmjax.launch --config configs/bm3_ml_lvlm.py \
      --workdir runs/bm3_ml_lvlm

The model section and its variants are configs/bm3_synthetic.py's;
`defaults.use_ml_lvlm` picks the data and features.
"""

from typing import Any

import ml_collections

from mmjax.train import defaults

_SYNTHETIC = 'bm3_synthetic'


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = defaults.sibling_config(__file__, _SYNTHETIC).get_config(arg)
  defaults.use_ml_lvlm(c, None)
  return c


def get_sweep() -> list[dict[str, Any]]:
  return defaults.sibling_config(__file__, _SYNTHETIC).get_sweep()
