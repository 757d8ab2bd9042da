r"""LGMRec (visual and textual features) on the synthetic data or ml-lvlm.

  python -m mmjax.launch --config configs/lgmrec.py \
      --workdir runs/lgmrec_synthetic --config.model.alpha=0.6
  python -m mmjax.features.extract --config configs/features/ml_lvlm.py
  python -m mmjax.launch --config configs/lgmrec.py:data=ml_lvlm \
      --workdir runs/lgmrec_ml_lvlm

Variants: `data=synthetic` (the default) or `data=ml_lvlm` (the features each
dataset gives: `defaults.FEATURES`), `runlocal` (`defaults.tiny_data`: a smoke
run). Defaults from MMRec's LGMRec.yaml (its 'baby' point); `get_sweep` is the
yaml's three published points (baby, sports, clothing) of (num_hyper_layers,
hyper_num, keep_rate, alpha). LGMRec is not in the CIKM 2025 grid study.
"""

from typing import Any

import ml_collections

from mmjax.models import options
from mmjax.train import defaults
from mmjax.utils import config_args


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = config_args.parse_arg(arg, data='synthetic', runlocal=False)
  c = defaults.base_config()
  c.model = options.section('lgmrec')
  c.optim.lr = 1e-3
  if args.runlocal:
    defaults.tiny_data(c)
  defaults.use_data(c, args.data)
  return c


# MMRec LGMRec.yaml: the active 'baby' point and the commented 'sports' and
# 'clothing' points.
_PUBLISHED = (
    (1, 4, 0.5, 0.3),
    (1, 4, 0.4, 0.6),
    (2, 64, 0.2, 0.2),
)


def get_sweep() -> list[dict[str, Any]]:
  return [{'model.num_hyper_layers': h, 'model.hyper_num': k,
           'model.keep_rate': keep, 'model.alpha': alpha}
          for h, k, keep, alpha in _PUBLISHED]
