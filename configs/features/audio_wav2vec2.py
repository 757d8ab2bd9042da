r"""wav2vec 2.0 and HuBERT features of the items' audio (mean over frames).

  python -m mmjax.features.extract --config configs/features/audio_wav2vec2.py \
      --config.dataset_dir=data/music --config.audio_root=/data/music/clips \
      --config.audio_pattern='{raw_id}.*' \
      --config.representations.audio_wav2vec2.model=models/wav2vec2-base

Without `audio_pattern`, each item's path is read from the item-table column
`audio_field` (default: the first of audio, audio_path, audio_file, sound),
relative to `audio_root` or the dataset directory; see mmjax/features/audio.py.
Clips are mixed down to mono, cropped to the first `max_duration_s` seconds
and resampled to 16 kHz (scipy.signal.resample_poly). Run HuBERT with
--config.only=audio_hubert; --config.layer=6 pools a middle layer instead of
the last.
"""

import ml_collections
from ml_collections import config_dict

from mmjax.features import base


def get_config() -> ml_collections.ConfigDict:
  config = base.run_config(batch_size=8, shard_size=1024,
                           only='audio_wav2vec2')
  config.audio_root = ''
  config.audio_field = config_dict.placeholder(str)
  config.audio_pattern = config_dict.placeholder(str)
  config.max_duration_s = 30.0
  config.layer = -1
  config.representations = ml_collections.ConfigDict({
      'audio_wav2vec2': {'extractor': 'audio',
                         'model': 'facebook/wav2vec2-base'},
      'audio_hubert': {'extractor': 'audio',
                       'model': 'facebook/hubert-base-ls960'},
  })
  for spec in config.representations.values():
    for key in ('audio_root', 'audio_field', 'audio_pattern',
                'max_duration_s', 'layer'):
      spec[key] = config.get_ref(key)
  return config
