r"""BM3 (visual and textual features) on the synthetic data or ml-lvlm.

  python -m mmjax.launch --config configs/bm3.py \
      --workdir runs/bm3_synthetic --config.model.dropout=0.5
  python -m mmjax.features.extract --config configs/features/ml_lvlm.py
  python -m mmjax.launch --config configs/bm3.py:data=ml_lvlm \
      --workdir runs/bm3_ml_lvlm

Variants: `data=synthetic` (the default) or `data=ml_lvlm` (the features each
dataset gives: `defaults.FEATURES`), `runlocal` (`defaults.tiny_data`: a smoke
run). `get_sweep` is the CIKM 2025 grid. Defaults from MMRec's BM3.yaml (no
negative sampling).
"""

from typing import Any

import ml_collections

from mmjax.models import options
from mmjax.train import defaults
from mmjax.utils import config_args


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = config_args.parse_arg(arg, data='synthetic', runlocal=False)
  c = defaults.base_config()
  c.model = options.section('bm3')
  c.optim.lr = 1e-3
  if args.runlocal:
    defaults.tiny_data(c)
  defaults.use_data(c, args.data)
  return c


def get_sweep() -> list[dict[str, Any]]:
  return defaults.sweep(defaults.CIKM_GRID)
