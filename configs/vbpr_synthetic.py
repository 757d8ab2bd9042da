r"""VBPR on the synthetic default data (visual and textual features).

  python -m mmjax.launch --config configs/vbpr_synthetic.py \
      --workdir runs/vbpr_synthetic --config.optim.lr=1e-3

Variants: `runlocal` (tiny data, 3 epochs: a smoke run), `elliot` (Elliot's
VBPR: softplus loss, squared-L2 regulariser, L2-normalised projection).
`get_sweep` is the CIKM 2025 grid.
"""

from typing import Any

import ml_collections
from ml_collections import config_dict

from mmjax.train import defaults
from mmjax.utils import config_args


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = config_args.parse_arg(arg, runlocal=False, elliot=False)
  c = defaults.base_config()
  c.features.sources = ml_collections.ConfigDict(
      {'textual': 'synthetic_text', 'visual': 'synthetic_visual'})
  c.model.name = 'vbpr'
  c.model.embed_dim = 64
  c.model.reg_weight = 0.01
  c.model.convention = 'elliot' if args.elliot else 'mmrec'
  # None: follow the convention (True for Elliot, False for MMRec).
  c.model.normalize_projection = config_dict.placeholder(bool)
  c.optim.lr = 1e-3
  if args.runlocal:
    defaults.tiny_data(c)
  return c


def get_sweep() -> list[dict[str, Any]]:
  return defaults.sweep(defaults.CIKM_GRID)
