r"""VBPR on the synthetic default data (visual and textual features).

  python -m mmjax.launch --config configs/vbpr_synthetic.py \
      --workdir runs/vbpr_synthetic --config.optim.lr=1e-3

Variants: `runlocal` (tiny data, 3 epochs: a smoke run), `elliot` (Elliot's
VBPR: softplus loss, squared-L2 regulariser, L2-normalised projection).
`get_sweep` is the CIKM 2025 grid.
"""

import itertools
from typing import Any

import ml_collections
from ml_collections import config_dict

from mmjax.train import defaults
from mmjax.utils import config_args

# CIKM 2025 (Pomo et al.) grid, shared by the multimodal configs.
GRID = {
    'optim.lr': (1e-4, 5e-4, 1e-3, 5e-3, 1e-2),
    'model.embed_dim': (64, 128, 256),
    'model.reg_weight': (0.01, 0.1),
}


def sweep(grid: dict[str, tuple[Any, ...]]) -> list[dict[str, Any]]:
  """Every combination of a {dotted key: values} grid, as a list of dicts."""
  keys = list(grid)
  return [dict(zip(keys, v)) for v in itertools.product(*grid.values())]


def tiny_data(c: ml_collections.ConfigDict) -> None:
  """The `runlocal` data: the synthetic generator at test size."""
  c.data.overrides = ml_collections.ConfigDict({'synthetic': {
      'num_users': 300, 'num_items': 200, 'interactions_per_user': 15,
      'max_images': 20, 'feature_dim': 16}})
  c.train.num_epochs = 3
  c.train.batch_size = 256
  c.eval.batch_users = 128


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
    tiny_data(c)
  return c


def get_sweep() -> list[dict[str, Any]]:
  return sweep(GRID)
