r"""Data configs: their fields, the built-in datasets, and where data lives.

A data config says how to make a dataset: the reader (`format`, `path`, ...),
the preprocessing (`implicit_threshold`, `min_user`, `min_item`, ...), the
split (`split` is the kind; `ratios`, `rounding`, `cutoffs`, `cold_share` its
options, as `splits.assign` takes them) and the `cold` policy. Every field
and its default is in `base_config()`.

A dataset is named in one of three ways, in a training config's `data.name`
or as `python -m mmjax.data.prepare --config <spec>`:

* a built-in name (`BUILTIN`): `synthetic`, `ml_lvlm`, `ml100k`, with an
  optional variant after a colon (`synthetic:visual`);
* a data config file anywhere, `path/to/mydata.py[:arg]` (any name ending in
  `.py`; relative to the working directory), whose `get_config(arg=None)`
  returns a data config (start it from `mmjax.data.datasets.base_config()`);
* no file at all: any other name plus the fields set inline, at least
  `format` and `path`, e.g. `--config.data.name=recipes
  --config.data.format=elliot --config.data.path=/x/recipes
  --config.data.split=fixed` (`resolve_training_data`).

Where data lives (nothing depends on where the package is installed):

* prepared datasets go under the data root: `data.root` / `--config.root`
  when set, else `$MMJAX_DATA`, else `./data` under the working directory
  (`data_root`), each in `<root>/<name>-<config hash[:8]>`;
* the raw files the built-in real datasets read (`movielens-lvlm/`,
  `ml-100k-recbole/`) are under `$MMJAX_SHARED_DATA` (`shared_path`); with it
  unset, preparing them fails with a message naming the variable.
"""

from __future__ import annotations

import glob
import importlib.util
import os
from typing import Any, Callable

import ml_collections

from mmjax.data import dataset as dataset_lib

DATA_ENV = 'MMJAX_DATA'
SHARED_DATA_ENV = 'MMJAX_SHARED_DATA'
DEFAULT_DATA_ROOT = 'data'  # Under the working directory.


class UnknownDataset(dataset_lib.DataError, FileNotFoundError):
  """A dataset name that is neither built in, nor a file, nor inline data."""


def data_root(root: str | None = None) -> str:
  """The absolute data root: `root`, else $MMJAX_DATA, else ./data."""
  return os.path.abspath(os.path.expanduser(
      root or os.environ.get(DATA_ENV) or DEFAULT_DATA_ROOT))


def shared_path(*parts: str) -> str:
  """A path under $MMJAX_SHARED_DATA, the raw data of the built-in datasets.

  With the variable unset the path keeps `$MMJAX_SHARED_DATA` literally, so
  that the data-not-found error of `prepare.build` names the variable to set
  (the config itself still loads: listing or checking it needs no data).
  """
  root = os.environ.get(SHARED_DATA_ENV) or '$' + SHARED_DATA_ENV
  return os.path.join(root, *parts)


def base_config() -> ml_collections.ConfigDict:
  """Every data config's fields, with defaults."""
  ph = ml_collections.config_dict.placeholder
  from mmjax.data import synthetic  # pylint: disable=g-import-not-at-top
  return ml_collections.ConfigDict({
      'name': '',
      'format': '',          # A key of readers.READERS, or 'synthetic'.
      'path': '',            # Reader input (folder or file).
      'meta_path': ph(str),  # Amazon meta file.
      'reader_name': ph(str),  # MMRec / RecBole dataset name.
      'on_bad_line': 'error',
      'root': data_root(),
      'out_dir': ph(str),
      'seed': 0,
      'implicit_threshold': ph(float),
      'restrict_items_csv': (),  # Keep items present in ALL these CSVs.
      'restrict_items_key': 'asin',
      'required_fields': (),
      'min_user': 0,
      'min_item': 0,
      # The split kind (splits.KINDS) and its options (splits.options).
      'split': 'chrono',
      'ratios': (0.8, 0.1, 0.1),
      'rounding': 'mmrec',
      'cutoffs': (),
      'cold_share': 0.2,
      'cold': ph(str),  # drop | keep | drop_users; None: keep for cold_item,
                        # drop otherwise.
      'synthetic': synthetic.default_config(),
  })


# The fields a training config's `data` section may set inline, with their
# types: every data config field but `name` (the section's own), `out_dir`
# (the directory is <root>/<name>-<hash>) and the generator's `synthetic`
# section (set through `data.overrides.synthetic`).
INLINE_FIELDS = {
    'format': str, 'path': str, 'meta_path': str, 'reader_name': str,
    'on_bad_line': str, 'root': str, 'seed': int,
    'implicit_threshold': float, 'restrict_items_csv': tuple,
    'restrict_items_key': str, 'required_fields': tuple, 'min_user': int,
    'min_item': int, 'split': str, 'ratios': tuple, 'rounding': str,
    'cutoffs': tuple, 'cold_share': float, 'cold': str,
}


def training_section(name: str = 'synthetic') -> ml_collections.ConfigDict:
  """The `data` section of a training config.

  `name` picks the dataset (module docstring); every field of
  `INLINE_FIELDS` is an optional placeholder: None keeps the named dataset's
  value, anything else replaces it (`resolve_training_data`). `overrides`
  sets any other field, nested: {'synthetic': {'num_users': 300}}.
  """
  ph = ml_collections.config_dict.placeholder
  section = ml_collections.ConfigDict({'name': name})
  for key, kind in INLINE_FIELDS.items():
    section[key] = ph(kind)
  section.overrides = ml_collections.ConfigDict()
  return section


# ---------------------------------------------------------------------------
# Built-in datasets.

def synthetic_dataset(arg: str | None = None) -> ml_collections.ConfigDict:
  """Synthetic multimodal data with a planted answer: the quick start's.

  Variants (comma-separated) pick the signal preset: `both` (default),
  `visual`, `text`, `none`; `large` gives 1M users x 100k items x 10M
  interactions (features emitted directly, images for a 5k-item sample).
  See mmjax/data/synthetic.py.
  """
  config = base_config()
  config.name = 'synthetic'
  config.format = 'synthetic'
  config.seed = 0
  config.min_user = 5
  config.min_item = 5
  config.split = 'random'
  config.synthetic.preset = 'both'
  for variant in (arg or '').split(','):
    if variant in ('visual', 'text', 'none', 'both'):
      config.synthetic.preset = variant
      config.name = f'synthetic_{variant}'
    elif variant == 'large':
      config.name = 'synthetic_large'
      config.synthetic.num_users = 1_000_000
      config.synthetic.num_items = 100_000
      config.synthetic.interactions_per_user = 10
      config.min_user = config.min_item = 0
    elif variant:
      raise UnknownDataset(
          f'synthetic:{arg}: unknown variant {variant!r} (known: both, '
          'visual, text, none, large).')
  return config


def ml_lvlm_dataset(arg: str | None = None) -> ml_collections.ConfigDict:
  """`ml-lvlm`: MovieLens-latest restricted to the movies of all LVLM outputs.

  Ratings from $MMJAX_SHARED_DATA/movielens-lvlm, restricted to the movies
  present in all twelve lvlm/*.csv files (2,490 movies; 2,397 of them
  rated), then an implicit threshold (rating >= 3.5 is a positive, a common
  MovieLens convention), 5-core on users and items, and a per-user
  chronological 8:1:1 split (MMRec's protocol). Every MovieLens
  representation (MiniLM, LVLM embeddings, keywords) uses this item map.
  """
  if arg:
    raise UnknownDataset(f'ml_lvlm:{arg}: ml_lvlm has no variants.')
  root = shared_path('movielens-lvlm')
  config = base_config()
  config.name = 'ml_lvlm'
  config.format = 'movielens_latest'
  config.path = root
  config.restrict_items_csv = tuple(
      sorted(glob.glob(os.path.join(root, 'lvlm', '*.csv'))))
  config.restrict_items_key = 'asin'
  config.implicit_threshold = 3.5
  config.min_user = 5
  config.min_item = 5
  config.split = 'chrono'
  config.ratios = (0.8, 0.1, 0.1)
  return config


def ml100k_dataset(arg: str | None = None) -> ml_collections.ConfigDict:
  """MovieLens 100K from RecBole's atomic files.

  Read from $MMJAX_SHARED_DATA/ml-100k-recbole. Ratings >= 4 are positives
  (ml-100k ratings are whole stars, so this equals ml_lvlm's >= 3.5),
  5-core on users and items, per-user chronological 8:1:1 split with
  MMRec's per-user rounding (see mmjax/data/splits.py).
  """
  if arg:
    raise UnknownDataset(f'ml100k:{arg}: ml100k has no variants.')
  config = base_config()
  config.name = 'ml100k'
  config.format = 'recbole'
  config.path = shared_path('ml-100k-recbole')
  config.reader_name = 'ml-100k'
  config.implicit_threshold = 4.0
  config.min_user = 5
  config.min_item = 5
  config.split = 'chrono'
  return config


# The datasets the package knows by name. A dataset of your own needs no
# entry here: name its data config file, or define it inline.
BUILTIN: dict[str, Callable[[str | None], ml_collections.ConfigDict]] = {
    'synthetic': synthetic_dataset,
    'ml_lvlm': ml_lvlm_dataset,
    'ml100k': ml100k_dataset,
}


def is_file_spec(spec: str) -> bool:
  """Whether `spec` (`x[:arg]`) names a data config file (`*.py`)."""
  return spec.partition(':')[0].endswith('.py')


def is_known(spec: str) -> bool:
  """Whether `spec` names a built-in dataset or a data config file."""
  return is_file_spec(spec) or spec.partition(':')[0] in BUILTIN


def absolute_spec(spec: str) -> str:
  """`spec` with a data config file's path made absolute (`x.py[:arg]`).

  Built-in names and inline names are returned unchanged.
  """
  if not is_file_spec(spec):
    return spec
  path, colon, arg = spec.partition(':')
  return os.path.abspath(os.path.expanduser(path)) + colon + arg


def load(spec: str) -> ml_collections.ConfigDict:
  """The data config that `spec` names: `builtin[:arg]` or `file.py[:arg]`.

  A file's config without a `name` is named after the file (`mydata.py` ->
  'mydata'), which names its dataset directory.

  Raises:
    UnknownDataset: neither a built-in name nor an existing `.py` file (the
      message lists the built-in names).
    DataError: the file has no get_config(), or it returns no ConfigDict.
  """
  name, _, arg = spec.partition(':')
  if name in BUILTIN:
    return BUILTIN[name](arg or None)
  if not is_file_spec(spec):
    raise UnknownDataset(
        f'{name!r}: no built-in dataset of that name (built in: '
        f'{", ".join(sorted(BUILTIN))}); name a data config file '
        '(path/to/mydata.py), or define the data inline with format and '
        'path.')
  path = os.path.abspath(os.path.expanduser(name))
  if not os.path.isfile(path):
    raise UnknownDataset(f'{path}: no such data config file.')
  module_spec = importlib.util.spec_from_file_location(
      'mmjax_data_config_' + os.path.basename(path)[:-3], path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  if not hasattr(module, 'get_config'):
    raise dataset_lib.DataError(f'{path}: a data config file defines '
                                'get_config(arg=None).')
  config = module.get_config(arg or None)
  if not isinstance(config, ml_collections.ConfigDict):
    raise dataset_lib.DataError(
        f'{path}: get_config() returned a {type(config).__name__}, expected '
        'an ml_collections.ConfigDict (start from mmjax.data.datasets.'
        'base_config()).')
  unknown = sorted(set(config.keys()) - set(base_config().keys()))
  if unknown:
    raise dataset_lib.DataError(
        f'{path}: unknown data config field(s) {", ".join(unknown)} (the '
        'fields are those of mmjax.data.datasets.base_config()).')
  if not config.get('name'):
    with config.unlocked():
      config.name = os.path.basename(path)[:-3]
  return config


def resolve_training_data(section: Any) -> ml_collections.ConfigDict:
  """The data config a training config's `data` section describes.

  Starts from the dataset `section.name` names (`load`), or, when that is
  neither built in nor a file, from `base_config()` named `section.name`
  (inline data: `format` must then be set). Every non-None field of
  `INLINE_FIELDS` in the section replaces the data config's value, then
  `section.overrides` ({'synthetic': {'num_users': 9}}, or dotted keys)
  sets any other field. The root is made absolute (`data_root`).

  Raises:
    UnknownDataset: a name neither built in nor a file, without `format`.
  """
  name = str(section.get('name') or '')
  if is_known(name):
    cfg = load(name)
  elif section.get('format'):
    cfg = base_config()
    cfg.name = name or 'custom'
  else:
    if not name:
      raise UnknownDataset('data.name is empty: name a dataset (built in: '
                           f'{", ".join(sorted(BUILTIN))}), a data config '
                           'file, or set data.format and data.path.')
    load(name)  # Raises, naming the choices.
  with cfg.unlocked():
    for key in INLINE_FIELDS:
      value = section.get(key)
      if value is not None:
        cfg[key] = tuple(value) if isinstance(value, list) else value
    _override(cfg, section.get('overrides') or {})
    cfg.root = data_root(cfg.root)
  return cfg


def _override(cfg: ml_collections.ConfigDict, overrides: Any) -> None:
  """Applies nested ({'synthetic': {'num_users': 9}}) or dotted overrides."""
  for key, value in overrides.items():
    node, parts = cfg, key.split('.')
    for depth, part in enumerate(parts):
      if not isinstance(node, ml_collections.ConfigDict) or part not in node:
        # A misspelt key would otherwise add a field nothing reads.
        has = (', '.join(sorted(node.keys()))
               if isinstance(node, ml_collections.ConfigDict) else 'a value')
        where = '.'.join(parts[:depth + 1])
        raise dataset_lib.DataError(
            f'data.overrides: no data config field {where!r} (there: {has}).')
      if depth < len(parts) - 1:
        node = node[part]
    last = parts[-1]
    if isinstance(value, (dict, ml_collections.ConfigDict)):
      _override(node[last], value)
    else:
      node[last] = value
