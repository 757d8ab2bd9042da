r"""ResNet-50 global-average-pooled features (2048-d) of the item images.

Preprocessing is the model card's (microsoft/resnet-50: resize to 256 on the
short side / crop 224, ImageNet mean and std), read from the checkpoint's
preprocessor_config.json. Offline: pass a local copy of the checkpoint.

  python -m mmjax.features.extract --config configs/features/resnet50.py \
      --config.dataset_dir=data/amazon-baby \
      --config.representations.image_resnet50.model=models/resnet-50
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.dataset_dir = ''
  config.batch_size = 32
  config.shard_size = 2048
  config.device = 'auto'
  config.dtype = 'float32'
  config.store_dtype = 'float32'
  config.image_root = ''
  config.only = ''
  config.overwrite = False
  config.quiet = False
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
