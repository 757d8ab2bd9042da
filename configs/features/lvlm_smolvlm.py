r"""LVLM item embeddings with SmolVLM (Idefics3 architecture), FITB prompt.

  python -m mmjax.features.extract --config configs/features/lvlm_smolvlm.py \
      --config.dataset_dir=DATA --config.device=cuda \
      [--config.model=models/SmolVLM-256M-Instruct] [--config.domain=baby]
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
  config.model = 'HuggingFaceTB/SmolVLM-256M-Instruct'
  config.representations = ml_collections.ConfigDict({
      'lvlm_smolvlm_fitb': lvlm_qwen2vl.lvlm_spec(''),
  })
  spec = config.representations.lvlm_smolvlm_fitb
  spec.model = config.get_ref('model')
  spec.prompt.domain = config.get_ref('domain')
  return config
