r"""AttributeItemKNN on ml-lvlm over LVLM keywords (or MiniLM: `dense`).

  python -m mmjax.features.extract --config configs/features/ml_lvlm.py
  python -m mmjax.launch --config configs/attributeitemknn_ml_lvlm.py \
      --workdir runs/attributeitemknn_ml_lvlm

The default representation is `keywords_qwen2_keywords`: the one-hot
keywords (50 values per slot plus Other) parsed from what Qwen2-VL wrote for
each poster, the attribute matrix of Elliot's AttributeItemKNN. Variants:
`dense` (MiniLM of title and genres, `minilm_title_genres`, instead), and
configs/attributeitemknn_synthetic.py's `mmrec`. `get_sweep` is its grid.
"""

from typing import Any

import ml_collections

from mmjax.train import defaults
from mmjax.utils import config_args

KEYWORDS = {'keywords': 'keywords_qwen2_keywords'}
DENSE = {'textual': 'minilm_title_genres'}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = config_args.parse_arg(arg, dense=False, mmrec=False)
  c = defaults.sibling_config(__file__, 'attributeitemknn_synthetic'
                              ).get_config('mmrec' if args.mmrec else '')
  defaults.use_ml_lvlm(c, sources=DENSE if args.dense else KEYWORDS)
  return c


def get_sweep() -> list[dict[str, Any]]:
  return defaults.sibling_config(
      __file__, 'attributeitemknn_synthetic').get_sweep()
