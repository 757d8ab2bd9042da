r"""Weight-free representations: the quick start's default (no torch, offline).

Colour histograms and downsampled pixels of the item images, TF-IDF of the
item text. Items without an image fail and are masked (see
`mmjax/features/base.py`); a dataset without an image column simply gets the
text representation only when run with --config.only=text_tfidf.

  python -m mmjax.features.extract --config configs/features/weightfree.py \
      --config.dataset_dir=data/ml-lvlm
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.dataset_dir = ''
  config.batch_size = 64
  config.shard_size = 4096
  config.device = 'cpu'
  config.dtype = 'float32'
  config.store_dtype = 'float32'
  config.image_root = ''
  config.only = ''
  config.overwrite = False
  config.quiet = False
  config.representations = ml_collections.ConfigDict({
      'image_color_hist': {
          'extractor': 'weightfree', 'method': 'color_histogram', 'bins': 8,
          'hist_side': 256},
      'image_pixels': {
          'extractor': 'weightfree', 'method': 'pixels', 'size': 16},
      'text_tfidf': {
          'extractor': 'weightfree', 'method': 'tfidf',
          'fields': ['title', 'genres', 'description'], 'max_features': 4096,
          'min_df': 2, 'sublinear_tf': True},
  })
  return config
