r"""ResNet-50 global-average-pooled features (2048-d) of the item images.

Preprocessing is the model card's (microsoft/resnet-50: resize to 256 on the
short side / crop 224, ImageNet mean and std), read from the checkpoint's
preprocessor_config.json. Offline: pass a local copy of the checkpoint.

  python -m mmjax.features.extract --config configs/features/resnet50.py \
      --config.dataset_dir=data/amazon-baby \
      --config.representations.image_resnet50.model=models/resnet-50
"""

import ml_collections

from mmjax.features import base


def get_config() -> ml_collections.ConfigDict:
  config = base.run_config(batch_size=32, shard_size=2048)
  config.representations = ml_collections.ConfigDict({
      'image_resnet50': {
          'extractor': 'visual',
          'model': 'microsoft/resnet-50',
          'pooling': 'pooler',
          'layer': -1,
          'normalize': False,
      },
  })
  return config
