r"""CLIP image and text embeddings, each alone and fused (SigLIP, ALIGN too).

  python -m mmjax.features.extract --config configs/features/clip.py \
      --config.dataset_dir=data/amazon-baby \
      --config.model=models/clip-vit-base-patch32

`config.model` fills every representation below; SigLIP
(google/siglip-base-patch16-224) and ALIGN (kakaobrain/align-base) use the same
extractor. Fusion 'concat' keeps both 512-d halves; 'mean', 'sum', 'mul' give
512-d.
"""

import ml_collections

from mmjax.features import base


def get_config() -> ml_collections.ConfigDict:
  config = base.run_config(batch_size=32, shard_size=2048)
  config.model = 'openai/clip-vit-base-patch32'
  fields = ['title', 'description']
  config.representations = ml_collections.ConfigDict({
      'clip_image': {'extractor': 'clip', 'modality': 'image'},
      'clip_text': {'extractor': 'clip', 'modality': 'text', 'fields': fields},
      'clip_fused': {'extractor': 'clip', 'modality': 'both',
                     'fusion': 'concat', 'fields': fields},
  })
  for spec in config.representations.values():
    spec.model = config.get_ref('model')
  return config
