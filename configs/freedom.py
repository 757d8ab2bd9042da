r"""FREEDOM (visual and textual features) on the synthetic data or ml-lvlm.

  python -m mmjax.launch --config configs/freedom.py \
      --workdir runs/freedom_synthetic --config.model.dropout=0.9
  python -m mmjax.features.extract --config configs/features/ml_lvlm.py
  python -m mmjax.launch --config configs/freedom.py:data=ml_lvlm \
      --workdir runs/freedom_ml_lvlm

Variants: `data=synthetic` (the default) or `data=ml_lvlm` (the features each
dataset gives: `defaults.FEATURES`), `runlocal` (`defaults.tiny_data`: a smoke
run), `elliot` (Elliot's modality weights: every modality's graph scaled by its
weight, even when alone). `get_sweep` is the CIKM 2025 grid. Defaults from
MMRec's FREEDOM.yaml.
"""

from typing import Any

import ml_collections

from mmjax.train import defaults
from mmjax.utils import config_args


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = config_args.parse_arg(arg, data='synthetic', runlocal=False,
                               elliot=False)
  c = defaults.base_config()
  c.model.name = 'freedom'
  c.model.embed_dim = 64
  c.model.reg_weight = 0.01
  c.model.num_layers = 2       # MMRec n_ui_layers
  c.model.num_mm_layers = 1    # MMRec n_mm_layers
  c.model.knn_k = 10
  c.model.dropout = 0.8        # degree-sensitive pruning ratio
  c.model.prune_every = 'epoch'  # MMRec's pre_epoch_processing; or 'step'
  c.model.mm_weights = ml_collections.ConfigDict(
      {'visual': 0.1, 'textual': 0.9})
  c.model.train_features = True
  c.model.convention = 'elliot' if args.elliot else 'mmrec'
  c.optim.lr = 1e-3
  if args.runlocal:
    defaults.tiny_data(c)
  defaults.use_data(c, args.data)
  return c


def get_sweep() -> list[dict[str, Any]]:
  return defaults.sweep(defaults.CIKM_GRID)
