r"""LVLM item embeddings with Qwen2-VL-2B-Instruct (FITB prompt, GPU).

  python -m mmjax.features.extract --config configs/features/lvlm_qwen2vl.py \
      --config.dataset_dir=DATA --config.device=cuda --config.dtype=bfloat16

The model resolves offline (a local path, the HF cache, then a packaged
copy; see mmjax/features/resolve.py); point
--config.representations.lvlm_qwen2vl_fitb.model=/path/to/Qwen2-VL-2B-Instruct
at a downloaded copy. Writes the embedding (last generated token, final
layer) and `<name>.generated_text.jsonl`; turn the text into keywords with
the 'descriptions' extractor (texts_jsonl=...).
"""

import ml_collections


def lvlm_spec(model: str, domain: str = 'movies', kind: str = 'fitb',
              **kw) -> dict:
  spec = {
      'extractor': 'lvlm', 'model': model, 'model_class': 'auto',
      'trust_remote_code': False, 'prompt': {'domain': domain, 'kind': kind},
      'max_new_tokens': 64, 'layer': -1, 'position': 'last',
      'source': 'after_generation', 'max_side': 1024,
  }
  spec.update(kw)
  return spec


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.dataset_dir = ''
  config.batch_size = 8
  config.shard_size = 512
  config.device = 'auto'
  config.dtype = 'bfloat16'
  config.store_dtype = 'float32'
  config.image_root = ''
  config.only = ''
  config.overwrite = False
  config.quiet = False
  config.representations = ml_collections.ConfigDict({
      'lvlm_qwen2vl_fitb': lvlm_spec('Qwen/Qwen2-VL-2B-Instruct'),
      'lvlm_qwen2vl_description': lvlm_spec(
          'Qwen/Qwen2-VL-2B-Instruct', kind='description'),
      'lvlm_qwen2vl_misaligned': lvlm_spec(
          'Qwen/Qwen2-VL-2B-Instruct', kind='misaligned'),
  })
  return config
