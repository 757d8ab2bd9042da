r"""ItemKNN on ml-lvlm (interactions only: no features are read).

  python -m mmjax.launch --config configs/itemknn_ml_lvlm.py \
      --workdir runs/itemknn_ml_lvlm

The model section and variants (`classic`) are configs/itemknn_synthetic.py's;
`get_sweep` is its neighbours x shrink grid.
"""

from typing import Any

import ml_collections

from mmjax.train import defaults


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = defaults.sibling_config(__file__, 'itemknn_synthetic').get_config(arg)
  defaults.use_ml_lvlm(c, sources={})
  return c


def get_sweep() -> list[dict[str, Any]]:
  return defaults.sibling_config(__file__, 'itemknn_synthetic').get_sweep()
