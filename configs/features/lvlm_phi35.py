r"""LVLM item embeddings with Phi-3.5-vision (remote code, local copy only).

Phi-3.5-vision runs code shipped with the checkpoint, so it is loaded only
from a local directory you have downloaded and checked (here /models/Phi35V,
a copy of microsoft/Phi-3.5-vision-instruct):

  python -m mmjax.features.extract --config configs/features/lvlm_phi35.py \
      --config.dataset_dir=DATA --config.device=cuda \
      --config.model=/models/Phi35V
"""

import importlib.util
import os

import ml_collections


def _sibling(name: str):
  # Config files are loaded by path, not as a package: import by path too.
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), name + '.py')
  spec = importlib.util.spec_from_file_location('_' + name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


lvlm_qwen2vl = _sibling('lvlm_qwen2vl')


def get_config() -> ml_collections.ConfigDict:
  config = lvlm_qwen2vl.get_config()
  config.model = 'models/Phi-3.5-vision-instruct'
  config.representations = ml_collections.ConfigDict({
      'lvlm_phi35_fitb': lvlm_qwen2vl.lvlm_spec(
          '', model_class='AutoModelForCausalLM',
          trust_remote_code=True, image_placeholder='<|image_1|>',
          processor_kwargs={'num_crops': 4}),
  })
  spec = config.representations.lvlm_phi35_fitb
  spec.model = config.get_ref('model')
  spec.prompt.domain = config.get_ref('domain')
  return config
