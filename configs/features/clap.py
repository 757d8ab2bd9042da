r"""CLAP audio and text embeddings, each alone and fused.

  python -m mmjax.features.extract --config configs/features/clap.py \
      --config.dataset_dir=data/music --config.audio_root=/data/music/clips \
      --config.audio_pattern='{raw_id}.*' \
      --config.model=models/clap-htsat-unfused

`config.model` fills every representation below (laion/clap-htsat-fused and
laion/larger_clap_music work the same way). Audio is read as in
configs/features/audio_wav2vec2.py, cropped to the model's 10 s and
resampled to 48 kHz; the text tower embeds the item's `fields`. Fusion
'concat' keeps both 512-d halves; 'mean', 'sum', 'mul' give 512-d.
"""

import ml_collections
from ml_collections import config_dict

from mmjax.features import base


def get_config() -> ml_collections.ConfigDict:
  config = base.run_config(batch_size=16, shard_size=1024)
  config.model = 'laion/clap-htsat-unfused'
  config.audio_root = ''
  config.audio_field = config_dict.placeholder(str)
  config.audio_pattern = config_dict.placeholder(str)
  fields = ['title', 'description']
  config.representations = ml_collections.ConfigDict({
      'clap_audio': {'extractor': 'audio', 'modality': 'audio'},
      'clap_text': {'extractor': 'audio', 'modality': 'text',
                    'fields': fields},
      'clap_fused': {'extractor': 'audio', 'modality': 'both',
                     'fusion': 'concat', 'fields': fields},
  })
  for spec in config.representations.values():
    spec.model = config.get_ref('model')
    if spec.modality != 'text':
      for key in ('audio_root', 'audio_field', 'audio_pattern'):
        spec[key] = config.get_ref(key)
  return config
