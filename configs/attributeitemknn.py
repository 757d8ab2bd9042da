r"""AttributeItemKNN (content kNN, no training) on synthetic data or ml-lvlm.

  python -m mmjax.launch --config configs/attributeitemknn.py \
      --workdir runs/attributeitemknn_synthetic --config.model.neighbors=80
  python -m mmjax.features.extract --config configs/features/ml_lvlm.py
  python -m mmjax.launch --config configs/attributeitemknn.py:data=ml_lvlm \
      --workdir runs/attributeitemknn_ml_lvlm

On the synthetic data the item representation is the visual and textual
features concatenated, each L2-normalised first (`features.transform='l2'`)
so that both weigh the same in the cosine; `--config.model.modality=visual`
uses one. On ml-lvlm it is `keywords_qwen2_keywords`: the one-hot keywords
(50 values per slot plus Other) parsed from what Qwen2-VL wrote for each
poster, the attribute matrix of Elliot's AttributeItemKNN.

Variants: `data=synthetic` (the default) or `data=ml_lvlm`, `dense` (ml-lvlm
only: MiniLM of title and genres, `minilm_title_genres`, instead of the
keywords), `runlocal` (`defaults.tiny_data`: a smoke run), `mmrec` (MMRec's
ItemKNNCBF.yaml: knn_k 10, shrink 10, the neighbours of the user's items, raw
features concatenated). Defaults are Elliot's AttributeItemKNN (40 neighbours,
cosine, the item itself among its neighbours). `get_sweep` is the neighbours x
shrink grid. See mmjax/models/attributeitemknn.py.
"""

from typing import Any

import ml_collections

from mmjax.models import options
from mmjax.train import defaults
from mmjax.utils import config_args

GRID = {'model.neighbors': (10, 20, 40, 80, 100),
        'model.shrink': (0.0, 10.0, 100.0)}
# ml-lvlm's representations: the LVLM keywords, or with `dense` MiniLM.
KEYWORDS = {'keywords': 'keywords_qwen2_keywords'}
DENSE = {'textual': 'minilm_title_genres'}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = config_args.parse_arg(arg, data='synthetic', runlocal=False,
                               mmrec=False, dense=False)
  c = defaults.base_config()
  c.features.transform = 'l2'
  c.model = options.section('attributeitemknn')
  if args.mmrec:
    c.model.neighbors = 10
    c.model.shrink = 10.0
    c.model.direction = 'history'
    c.features.transform = 'none'
  if args.runlocal:
    defaults.tiny_data(c)
  if args.data == 'ml_lvlm':
    defaults.use_data(c, 'ml_lvlm', DENSE if args.dense else KEYWORDS)
  elif args.dense:
    raise ValueError('config variant dense (MiniLM of title and genres '
                     'instead of the LVLM keywords) needs data=ml_lvlm; got '
                     f'data={args.data}.')
  else:
    defaults.use_data(c, args.data)
  return c


def get_sweep() -> list[dict[str, Any]]:
  return defaults.sweep(GRID)
