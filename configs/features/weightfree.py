r"""Weight-free representations: the quick start's default (no torch, offline).

Colour histograms and downsampled pixels of the item images, TF-IDF of the
item text. Items without an image fail and are masked (see
`mmjax/features/base.py`); a dataset without an image column simply gets the
text representation only when run with --config.only=text_tfidf.

  python -m mmjax.features.extract --config configs/features/weightfree.py \
      --config.dataset_dir=data/ml-lvlm
"""

import ml_collections

from mmjax.features import base


def get_config() -> ml_collections.ConfigDict:
  config = base.run_config(batch_size=64, shard_size=4096, device='cpu')
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
