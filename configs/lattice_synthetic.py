r"""LATTICE on the synthetic default data (visual and textual features).

  python -m mmjax.launch --config configs/lattice_synthetic.py \
      --workdir runs/lattice_synthetic --config.model.knn_k=10

Variants: `runlocal` (tiny data, 3 epochs), `elliot` (Elliot's user-item
graph D^-1 (A + I) D^-1 with per-layer L2 normalisation). `get_sweep` is the
CIKM 2025 grid. Defaults from MMRec's LATTICE.yaml (lr decay 0.96 per 50
epochs).
"""

from typing import Any

import ml_collections

from mmjax.train import defaults
from mmjax.utils import config_args


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = config_args.parse_arg(arg, runlocal=False, elliot=False)
  c = defaults.base_config()
  c.features.sources = ml_collections.ConfigDict(
      {'textual': 'synthetic_text', 'visual': 'synthetic_visual'})
  c.model.name = 'lattice'
  c.model.embed_dim = 64
  c.model.num_layers = 2       # MMRec len(weight_size): user-item layers
  c.model.num_mm_layers = 1    # MMRec n_layers: item-graph layers
  c.model.knn_k = 10
  c.model.lambda_coeff = 0.9
  c.model.reg_weight = 0.01
  c.model.train_features = True
  c.model.convention = 'elliot' if args.elliot else 'mmrec'
  c.optim.lr = 1e-3
  c.optim.schedule = 'mmrec'
  c.optim.lr_decay = (0.96, 50.0)
  if args.runlocal:
    defaults.tiny_data(c)
  return c


def get_sweep() -> list[dict[str, Any]]:
  return defaults.sweep(defaults.CIKM_GRID)
