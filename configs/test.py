r"""A tiny config with every key of the training configs, for the tests.

  python -m mmjax.launch --config configs/test.py --workdir /tmp/mmjax_test

Synthetic data at 300 users x 200 items, LightGCN with one layer, 2 epochs.
Variants: `bprmf`, `mostpop` (the model), `quick` (the data only; the default).
Tests import this file directly (flax ogbg's configs/test.py habit).
"""

import ml_collections

from mmjax.models import options
from mmjax.train import defaults
from mmjax.utils import config_args


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = config_args.parse_arg(arg, bprmf=False, mostpop=False)
  c = defaults.base_config()
  defaults.tiny_data(c)  # 300 users x 200 items; epochs etc. set below.
  if args.bprmf:
    c.model = options.section('bprmf', embed_dim=16)
  elif args.mostpop:
    c.model = options.section('mostpop', embed_dim=16, num_layers=1)
  else:
    c.model = options.section('lightgcn', embed_dim=16, num_layers=1)
  c.optim.lr = 1e-2
  c.train.num_epochs = 2
  c.train.batch_size = 256
  c.train.eval_every_epochs = 1
  c.train.patience = 0
  c.eval.topk = (10, 20)
  c.eval.batch_users = 128
  c.ckpt.every_epochs = 1
  c.ckpt.keep = 2
  return c
