r"""NGCF on ml-lvlm (ID-only: no item features).

  python -m mmjax.launch --config configs/ngcf_ml_lvlm.py \
      --workdir runs/ngcf_ml_lvlm

The model section is configs/ngcf_synthetic.py's (same variants: `paper`);
`defaults.use_ml_lvlm` picks the data. `get_sweep` is the CIKM 2025 grid.
"""

from typing import Any

import ml_collections

from mmjax.train import defaults


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = defaults.sibling_config(__file__, 'ngcf_synthetic').get_config(arg)
  defaults.use_ml_lvlm(c, sources={})
  return c


def get_sweep() -> list[dict[str, Any]]:
  return defaults.sweep(defaults.CIKM_GRID)
