"""The shared sections of every training config, with defaults.

Configs under configs/ start from `base_config()` and set their model and
hyperparameters; tests import configs/test.py, which does the same with tiny
sizes. See STYLE.md (Configs and CLI) for the meaning of each section.
"""

import ml_collections
from ml_collections import config_dict


def base_config() -> ml_collections.ConfigDict:
  """The shared sections of every training config (STYLE.md, Configs)."""
  ph = config_dict.placeholder
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.data = ml_collections.ConfigDict({
      'name': 'synthetic',   # configs/data/<name>.py
      'root': ph(str),       # None: <repo>/data
      'split': ph(str),      # None: the data config's split kind
      'implicit_threshold': ph(float),
      'min_user': ph(int),
      'min_item': ph(int),
      'cold': ph(str),
      # Nested overrides of the data config, e.g. {'synthetic':
      # {'num_users': 300}}; flattened to dotted keys by the loop.
      'overrides': ml_collections.ConfigDict(),
  })
  c.features = ml_collections.ConfigDict({
      'sources': ml_collections.ConfigDict(),  # modality -> representation
      'transform': 'none',                     # none | l2 | standardize | pca:k
  })
  c.model = ml_collections.ConfigDict({
      'name': 'bprmf', 'embed_dim': 64, 'num_layers': 0, 'reg_weight': 1e-4})
  c.optim = ml_collections.ConfigDict({
      'name': 'adam', 'lr': 1e-3, 'weight_decay': 0.0,
      'clip_norm': ph(float),
      'schedule': 'constant',      # constant | mmrec | cosine
      'lr_decay': (1.0, 50.0),     # MMRec's learning_rate_scheduler (a, b)
  })
  c.train = ml_collections.ConfigDict({
      'num_epochs': 50, 'batch_size': 2048, 'num_negatives': 1,
      'eval_every_epochs': 1, 'patience': 10})
  c.eval = ml_collections.ConfigDict({
      'topk': (10, 20, 50), 'select_metric': 'recall@20',
      'batch_users': 1024, 'mask_valid_at_test': True,
      'relevance_threshold': ph(float), 'gain': 'binary',
      'convention': 'mmrec', 'user_groups': ()})
  c.mesh = ml_collections.ConfigDict({
      'data': -1,                      # devices on the 'data' axis (-1: all)
      'coordinator': ph(str),          # 'host:port' for multi-host runs
      'num_processes': 1, 'process_id': 0})
  c.ckpt = ml_collections.ConfigDict({'every_epochs': 5, 'keep': 2})
  # Multi-model configs (quickstart): run each of `models` with its
  # `per_model.<name>` section as `model`.
  c.models = ()
  c.per_model = ml_collections.ConfigDict()
  return c
