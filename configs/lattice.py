r"""LATTICE (visual and textual features) on the synthetic data or ml-lvlm.

  python -m mmjax.launch --config configs/lattice.py \
      --workdir runs/lattice_synthetic --config.model.knn_k=10
  python -m mmjax.features.extract --config configs/features/ml_lvlm.py
  python -m mmjax.launch --config configs/lattice.py:data=ml_lvlm \
      --workdir runs/lattice_ml_lvlm

Variants: `data=synthetic` (the default) or `data=ml_lvlm` (the features each
dataset gives: `defaults.FEATURES`), `runlocal` (`defaults.tiny_data`: a smoke
run), `elliot` (Elliot's user-item graph D^-1 (A + I) D^-1 with per-layer L2
normalisation). `get_sweep` is the CIKM 2025 grid. Defaults from MMRec's
LATTICE.yaml (lr decay 0.96 per 50 epochs).
"""

from typing import Any

import ml_collections

from mmjax.models import options
from mmjax.train import defaults
from mmjax.utils import config_args


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = config_args.parse_arg(arg, data='synthetic', runlocal=False,
                               elliot=False)
  c = defaults.base_config()
  c.model = options.section('lattice')
  c.model.convention = 'elliot' if args.elliot else 'mmrec'
  c.optim.lr = 1e-3
  c.optim.schedule = 'mmrec'
  c.optim.lr_decay = (0.96, 50.0)
  if args.runlocal:
    defaults.tiny_data(c)
  defaults.use_data(c, args.data)
  return c


def get_sweep() -> list[dict[str, Any]]:
  return defaults.sweep(defaults.CIKM_GRID)
