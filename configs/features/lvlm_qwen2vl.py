r"""LVLM representations with Qwen2-VL-2B-Instruct (GPU), all three prompts.

  python -m mmjax.features.extract --config configs/features/lvlm_qwen2vl.py \
      --config.dataset_dir=DATA --config.device=cuda --config.dtype=bfloat16 \
      --config.model=models/Qwen2-VL-2B-Instruct --config.domain=movies

The model resolves offline (a local path, the HF cache, then a packaged
copy; see mmjax/features/resolve.py); `config.model` sets it for every LVLM
representation below. Each writes its embedding (last generated token, final
layer) and `<name>.generated_text.jsonl`; the 'descriptions' representations
then read that text (`texts_from`, run after their source):
  lvlm_qwen2vl_{fitb,description,misaligned}  LVLM embeddings;
  keywords_qwen2vl_fitb    one-hot FITB keywords (top 50 per slot + Other);
  minilm_qwen2vl_{fitb,description}  MiniLM of the generated text.
"""

import ml_collections

from mmjax.features import base


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
  config = base.run_config(batch_size=8, shard_size=512, dtype='bfloat16')
  config.model = 'Qwen/Qwen2-VL-2B-Instruct'
  config.domain = 'movies'
  minilm = 'sentence-transformers/all-MiniLM-L6-v2'
  config.representations = ml_collections.ConfigDict({
      'lvlm_qwen2vl_fitb': lvlm_spec(''),
      'lvlm_qwen2vl_description': lvlm_spec('', kind='description'),
      'lvlm_qwen2vl_misaligned': lvlm_spec('', kind='misaligned'),
      'keywords_qwen2vl_fitb': {
          'extractor': 'descriptions', 'method': 'keywords',
          'texts_from': 'lvlm_qwen2vl_fitb', 'prompt': {'domain': ''},
          'min_slots': 3, 'top_k': 50, 'threshold': 0.45,
          'embed_model': minilm},
      'minilm_qwen2vl_fitb': {
          'extractor': 'descriptions', 'method': 'text', 'model': minilm,
          'texts_from': 'lvlm_qwen2vl_fitb'},
      'minilm_qwen2vl_description': {
          'extractor': 'descriptions', 'method': 'text', 'model': minilm,
          'texts_from': 'lvlm_qwen2vl_description'},
  })
  for spec in config.representations.values():
    if spec.extractor == 'lvlm':
      spec.model = config.get_ref('model')
      spec.prompt.domain = config.get_ref('domain')
    elif 'prompt' in spec:
      spec.prompt.domain = config.get_ref('domain')
  return config
