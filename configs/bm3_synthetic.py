r"""BM3 on the synthetic default data (visual and textual features).

  python -m mmjax.launch --config configs/bm3_synthetic.py \
      --workdir runs/bm3_synthetic --config.model.dropout=0.5

Variants: `runlocal` (tiny data, 3 epochs). `get_sweep` is the CIKM 2025
grid. Defaults from MMRec's BM3.yaml (no negative sampling).
"""

from typing import Any

import ml_collections

from mmjax.train import defaults
from mmjax.utils import config_args


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = config_args.parse_arg(arg, runlocal=False)
  c = defaults.base_config()
  c.features.sources = ml_collections.ConfigDict(
      {'textual': 'synthetic_text', 'visual': 'synthetic_visual'})
  c.model.name = 'bm3'
  c.model.embed_dim = 64
  c.model.num_layers = 1
  c.model.reg_weight = 0.1
  c.model.dropout = 0.3
  c.model.cl_weight = 2.0
  c.model.train_features = True
  c.optim.lr = 1e-3
  if args.runlocal:
    defaults.tiny_data(c)
  return c


def get_sweep() -> list[dict[str, Any]]:
  return defaults.sweep(defaults.CIKM_GRID)
