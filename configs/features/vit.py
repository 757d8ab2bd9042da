r"""ViT CLS features of the item images (and a DINOv2 variant).

  python -m mmjax.features.extract --config configs/features/vit.py \
      --config.dataset_dir=data/amazon-baby \
      --config.representations.image_vit.model=models/vit-base-patch16-224-in21k

Run only the DINO-style backbone with --config.only=image_dinov2.
"""

import ml_collections

from mmjax.features import base


def get_config() -> ml_collections.ConfigDict:
  config = base.run_config(batch_size=32, shard_size=2048, only='image_vit')
  config.representations = ml_collections.ConfigDict({
      'image_vit': {
          'extractor': 'visual',
          'model': 'google/vit-base-patch16-224-in21k',
          'pooling': 'cls',
      },
      'image_dinov2': {
          'extractor': 'visual',
          'model': 'facebook/dinov2-small',
          'pooling': 'cls',
      },
  })
  return config
