r"""NGCF (ID-only: no item features) on the synthetic data or ml-lvlm.

  python -m mmjax.launch --config configs/ngcf.py \
      --workdir runs/ngcf_synthetic --config.optim.lr=1e-3
  python -m mmjax.launch --config configs/ngcf.py:data=ml_lvlm \
      --workdir runs/ngcf_ml_lvlm

Variants: `data=synthetic` (the default) or `data=ml_lvlm`, `runlocal`
(`defaults.tiny_data`: a smoke run), `paper` (the paper's Laplacian D^-1/2 A
D^-1/2 with the self-connection in the first term only, and un-normalised layer
outputs fed forward; the default is Elliot's). Defaults: Elliot's NGCF as the
Ducho-meets-Elliot benchmark runs it (3 layers of width 64, node and message
dropout 0.1, node dropout drawn once per epoch, batch 1024, lr 5e-4, l_w 1e-2).
`get_sweep` is the CIKM 2025 grid (Elliot's grid fixes the layer count at 3).
"""

from typing import Any

import ml_collections

from mmjax.models import options
from mmjax.train import defaults
from mmjax.utils import config_args


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = config_args.parse_arg(arg, data='synthetic', runlocal=False,
                               paper=False)
  c = defaults.base_config()
  c.model = options.section('ngcf')
  c.model.adjacency = 'paper' if args.paper else 'elliot'
  c.model.feed_normalized = not args.paper
  c.optim.lr = 5e-4
  c.train.batch_size = 1024
  if args.runlocal:
    defaults.tiny_data(c)
  defaults.use_data(c, args.data, sources={})
  return c


def get_sweep() -> list[dict[str, Any]]:
  return defaults.sweep(defaults.CIKM_GRID)
