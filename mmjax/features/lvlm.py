r"""LVLM item representations: the item image + a structured prompt.

Works with chat vision-language models in transformers: Qwen2-VL and
Qwen2.5-VL, Idefics3/SmolVLM, LLaVA, and models that need
`trust_remote_code` such as Phi-3.5-vision (allowed from a local path only,
so the code that runs is code you copied and can read). Protocol (Pomo et
al., CIKM 2025):
  1. the prompt (`prompts.py`: a domain's FITB, description or misaligned
     prompt, or verbatim text) and the image go through the model's chat
     template and processor, batched with left padding;
  2. greedy decoding (`do_sample=False`) for at most `max_new_tokens`;
  3. the item embedding is a hidden state of the language model:
       source='after_generation' (default): a forward pass over prompt +
         generated ids, after generation. (Generation itself never computes
         the hidden state of the token it emits last, so this pass is what
         makes 'last' the true last generated token.)
       source='prompt_only': the prompt pass, before any token is generated.
     layer: index into the model's hidden states (0 = embeddings, -1 = the
       final layer, default);
     position: 'last' (default: the last generated token, or the last prompt
       token for 'prompt_only'), 'mean_generated' (mean over generated
       tokens; 'after_generation' only) or 'mean_all' (mean over every
       non-padding token: prompt, image tokens and generated ones).
     Generated tokens run up to and including the first end-of-sequence
     token; padding never enters a mean.
  4. the generated text is stored beside the embedding
     (`<name>.generated_text.jsonl` via `BatchResult.extra`), so
     `descriptions.py` can turn it into keywords or a text embedding later.
Items without a readable image fail (masked), as everywhere (`base.py`).

Spec keys: model, revision, model_class ('auto' -> AutoModelForImageTextToText,
or a transformers class name, e.g. 'AutoModelForCausalLM' for Phi-3.5-vision),
trust_remote_code, prompt ({domain, kind}) or prompt_text, system_prompt,
image_placeholder (models whose chat template takes a string with an image tag
such as '<|image_1|>'), max_new_tokens, min_new_tokens (default 0; benchmarks
set it to max_new_tokens for a fixed length), layer, position, source, max_side,
processor_kwargs, device, dtype, batch_size.

  python -m mmjax.features.extract --config configs/features/lvlm_qwen2vl.py \
      --config.dataset_dir=DATA --config.device=cuda --config.dtype=bfloat16
"""

from __future__ import annotations

import json
import os
from typing import Any

from absl import logging
import ml_collections
import numpy as np

from mmjax.data import dataset as dataset_lib
from mmjax.features import base
from mmjax.features import images
from mmjax.features import prompts
from mmjax.features import resolve

POSITIONS = ('last', 'mean_generated', 'mean_all')
SOURCES = ('after_generation', 'prompt_only')


def prompt_from_spec(spec: ml_collections.ConfigDict) -> prompts.Prompt:
  """The prompt a spec names: `prompt_text` verbatim, or {domain, kind}."""
  text = spec.get('prompt_text', None)
  if text:
    slots = tuple(spec.get('prompt_slots', ()) or ())
    return prompts.custom_prompt(text, slots)
  p = spec.get('prompt', None) or {}
  return prompts.get_prompt(p.get('domain', 'movies'), p.get('kind', 'fitb'))


def load_model_and_processor(spec: ml_collections.ConfigDict, device, dtype):
  """Loads a checkpoint offline (see `resolve.py`); returns (model, processor,
  resolved)."""
  import transformers  # pylint: disable=g-import-not-at-top

  resolved = resolve.resolve(spec.model, spec.get('revision', None))
  trust = bool(spec.get('trust_remote_code', False))
  if trust and resolved.source != 'local_path':
    raise ValueError(
        f'{spec.name}: trust_remote_code runs Python code shipped with the '
        f'model; give the model as a local directory you have checked (got '
        f'{spec.model!r} from {resolved.source}).'
    )
  try:
    processor = transformers.AutoProcessor.from_pretrained(
        resolved.path, trust_remote_code=trust, local_files_only=True)
  except ImportError as e:
    # Qwen2-VL's processor also builds a video processor, which needs
    # torchvision; items are images, so build it without one.
    if 'torchvision' not in str(e).lower():
      raise
    processor = image_only_processor(resolved.path, e)
  name = spec.get('model_class', None) or 'auto'
  if name == 'auto':
    name = 'AutoModelForImageTextToText'
  cls = getattr(transformers, name, None)
  if cls is None:
    raise ValueError(f'{spec.name}: transformers has no class {name!r}.')
  model = cls.from_pretrained(resolved.path, trust_remote_code=trust,
                              local_files_only=True, dtype=dtype)
  model.to(device).eval()
  return model, processor, resolved


def image_only_processor(path: str, error: ImportError):
  """The checkpoint's processor class with no video processor.

  Args:
    path: the model directory.
    error: why AutoProcessor failed; re-raised when this cannot help.
  """
  import transformers  # pylint: disable=g-import-not-at-top

  name = None
  for fname in ('processor_config.json', 'preprocessor_config.json',
                'tokenizer_config.json'):
    cfg = os.path.join(path, fname)
    if os.path.exists(cfg):
      with open(cfg, encoding='utf-8') as f:
        name = json.load(f).get('processor_class', None)
      if name:
        break
  cls = getattr(transformers, name, None) if name else None
  if cls is None or 'video_processor' not in cls.get_attributes():
    raise error

  class ImageOnlyProcessor(cls):
    # The base class insists that every attribute has its declared type.
    def check_argument_for_proper_class(self, argument_name, argument):
      if argument_name == 'video_processor' and argument is None:
        return None
      return super().check_argument_for_proper_class(argument_name, argument)

  tokenizer = transformers.AutoTokenizer.from_pretrained(
      path, local_files_only=True)
  chat_template = None
  jinja = os.path.join(path, 'chat_template.jinja')
  if os.path.exists(jinja):
    with open(jinja, encoding='utf-8') as f:
      chat_template = f.read()
  elif os.path.exists(os.path.join(path, 'chat_template.json')):
    with open(os.path.join(path, 'chat_template.json'), encoding='utf-8') as f:
      chat_template = json.load(f).get('chat_template', None)
  chat_template = chat_template or getattr(tokenizer, 'chat_template', None)
  logging.warning('%s: torchvision is not installed; using %s without its '
                  'video processor (items are images).', path, name)
  return ImageOnlyProcessor(
      image_processor=transformers.AutoImageProcessor.from_pretrained(
          path, local_files_only=True),
      tokenizer=tokenizer, video_processor=None, chat_template=chat_template)


class LVLMExtractor(base.Extractor):
  """Generates an answer per item and embeds it (see the module docstring).

  Args:
    spec: the representation spec.
    model: an already built model (tests, notebooks); loaded from
      `spec.model` when None.
    processor: its processor; required with `model`.
  """

  def __init__(self, spec: ml_collections.ConfigDict, model=None,
               processor=None):
    import torch  # pylint: disable=g-import-not-at-top

    self.name = spec.name
    self.prompt = prompt_from_spec(spec)
    self.system_prompt = spec.get('system_prompt', None)
    self.image_placeholder = spec.get('image_placeholder', None)
    self.max_new_tokens = int(spec.get('max_new_tokens', None) or 64)
    # Benchmarks set it to max_new_tokens, so every item generates exactly
    # that many tokens (end-of-sequence is suppressed until then).
    self.min_new_tokens = int(spec.get('min_new_tokens', None) or 0)
    if not 0 <= self.min_new_tokens <= self.max_new_tokens:
      raise ValueError(f'{spec.name}: need 0 <= min_new_tokens <= '
                       f'max_new_tokens, got {self.min_new_tokens}.')
    self.layer = int(spec.get('layer', -1) if spec.get('layer', None)
                     is not None else -1)
    self.position = spec.get('position', None) or 'last'
    self.source = spec.get('source', None) or 'after_generation'
    if self.position not in POSITIONS:
      raise ValueError(f'{self.name}: position must be one of {POSITIONS}, '
                       f'got {self.position!r}.')
    if self.source not in SOURCES:
      raise ValueError(f'{self.name}: source must be one of {SOURCES}, got '
                       f'{self.source!r}.')
    if self.source == 'prompt_only' and self.position == 'mean_generated':
      raise ValueError(f"{self.name}: position 'mean_generated' needs "
                       "source 'after_generation'.")
    self.max_side = int(spec.get('max_side', None) or images.MAX_SIDE)
    self.processor_kwargs = dict(spec.get('processor_kwargs', None) or {})
    self.device = base.torch_device(spec.get('device', None))
    self.dtype = base.torch_dtype(spec.get('dtype', None), self.device)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if model is None:
      model, processor, self.resolved = load_model_and_processor(
          spec, self.device, self.dtype)
      self.model_manifest = self.resolved.manifest()
    else:
      if processor is None:
        raise ValueError('a model given directly needs its processor.')
      model.to(self.device).eval()
      self.model_manifest = {'model': spec.get('model', None) or
                             type(model).__name__, 'model_source': 'object'}
    self.model, self.processor = model, processor
    tokenizer = getattr(processor, 'tokenizer', processor)
    # Generation appends on the right, so prompts are padded on the left.
    tokenizer.padding_side = 'left'
    self.tokenizer = tokenizer
    gen = getattr(model, 'generation_config', None)
    eos = getattr(gen, 'eos_token_id', None)
    if eos is None:
      eos = tokenizer.eos_token_id
    self.eos_ids = set(eos if isinstance(eos, (list, tuple)) else
                       ([eos] if eos is not None else []))
    self.pad_id = (getattr(gen, 'pad_token_id', None) if gen is not None
                   else None)
    if self.pad_id is None:
      self.pad_id = (tokenizer.pad_token_id if tokenizer.pad_token_id
                     is not None else next(iter(self.eos_ids), 0))

  def manifest(self) -> dict[str, Any]:
    m = dict(self.model_manifest)
    m.update(self.prompt.manifest())
    m.update(
        extractor='lvlm', input='image+prompt', model_class=type(
            self.model).__name__, layer=self.layer, position=self.position,
        source=self.source, max_new_tokens=self.max_new_tokens,
        min_new_tokens=self.min_new_tokens,
        decoding='greedy', system_prompt=self.system_prompt,
        image_placeholder=self.image_placeholder, max_side=self.max_side,
        processor=type(self.processor).__name__,
        compute_dtype=str(self.dtype).replace('torch.', ''),
        versions=base.versions('torch', 'transformers'),
    )
    image_processor = getattr(self.processor, 'image_processor', None)
    if image_processor is not None:
      # Image size and normalisation, as the checkpoint's processor sets them.
      m['image_preprocessing'] = base.image_processor_manifest(image_processor)
    return m

  # ------------------------------------------------------------ internals

  def chat_text(self) -> str:
    """The prompt after the model's chat template (generation prompt added)."""
    if self.image_placeholder:
      content: Any = f'{self.image_placeholder}\n{self.prompt.text}'
    else:
      content = [{'type': 'image'}, {'type': 'text', 'text': self.prompt.text}]
    messages = []
    if self.system_prompt:
      messages.append({'role': 'system', 'content': self.system_prompt})
    messages.append({'role': 'user', 'content': content})
    return self.processor.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=False)

  def encode(self, pil_images: list[Any]) -> dict[str, Any]:
    """Processor outputs for a batch (left-padded), on the device."""
    text = self.chat_text()
    enc = self.processor(
        text=[text] * len(pil_images), images=[[im] for im in pil_images],
        return_tensors='pt', padding=True, **self.processor_kwargs)
    return {k: (v.to(self.device) if hasattr(v, 'to') else v)
            for k, v in enc.items()}

  def generate(self, enc: dict[str, Any]):
    """Greedy generation; returns (generated ids [b, T], gen mask [b, T],
    prompt hidden states or None)."""
    import torch  # pylint: disable=g-import-not-at-top

    with torch.inference_mode():
      out = self.model.generate(
          **enc, max_new_tokens=self.max_new_tokens,
          min_new_tokens=self.min_new_tokens or None, do_sample=False,
          num_beams=1, pad_token_id=self.pad_id,
          output_hidden_states=self.source == 'prompt_only',
          return_dict_in_generate=True)
    prompt_len = enc['input_ids'].shape[1]
    gen = out.sequences[:, prompt_len:]  # [b, T]
    mask = torch.ones_like(gen, dtype=torch.bool)
    for i in range(gen.shape[0]):
      row = gen[i].tolist()
      stop = next((k for k, t in enumerate(row) if t in self.eos_ids), None)
      if stop is not None:
        # Keep the end-of-sequence token itself, drop what padding follows.
        mask[i, stop + 1:] = False
    prompt_hidden = out.hidden_states[0] if self.source == 'prompt_only' else (
        None)
    return gen, mask, prompt_hidden

  def forward_hidden(self, enc: dict[str, Any], gen, gen_mask):
    """Hidden states of prompt + generated ids: (tuple of [b, L, H], mask)."""
    import torch  # pylint: disable=g-import-not-at-top

    prompt_len = enc['input_ids'].shape[1]
    inputs = dict(enc)
    inputs['input_ids'] = torch.cat([enc['input_ids'], gen], dim=1)
    attn = torch.cat([enc['attention_mask'].bool(), gen_mask], dim=1)
    inputs['attention_mask'] = attn.long()
    for key, value in enc.items():
      # Per-token side inputs (mm_token_type_ids, token_type_ids): generated
      # tokens are plain text, type 0.
      if key not in ('input_ids', 'attention_mask') and hasattr(
          value, 'shape') and value.dim() == 2 and (
              value.shape[1] == prompt_len) and value.shape[0] == gen.shape[0]:
        inputs[key] = torch.cat([value, torch.zeros_like(gen).to(value.dtype)],
                                dim=1)
    with torch.inference_mode():
      out = self.model(**inputs, output_hidden_states=True, use_cache=False)
    return out.hidden_states, attn

  def pool(self, hidden, attn, prompt_len: int) -> np.ndarray:
    """float32 [b, H] at the configured layer and position."""
    import torch  # pylint: disable=g-import-not-at-top

    h = hidden[self.layer].float()  # [b, L, H]
    attn = attn.bool()
    if self.position == 'last':
      # Left padding before the prompt, right padding after the answer:
      # the last valid position is the last True of the mask.
      length = attn.shape[1]
      idx = length - 1 - torch.flip(attn.long(), dims=[1]).argmax(dim=1)
      pooled = h[torch.arange(h.shape[0]), idx]
    else:
      m = attn.clone()
      if self.position == 'mean_generated':
        m[:, :prompt_len] = False
      w = m.unsqueeze(-1).float()
      pooled = (h * w).sum(1) / w.sum(1).clamp(min=1.0)
    return pooled.cpu().numpy().astype(np.float32)

  def extract(self, batch: base.ItemBatch) -> base.BatchResult:
    pil, failed = images.load_batch(batch.image_paths, batch.items,
                                    self.max_side)
    keep = [k for k, im in enumerate(pil) if im is not None]
    texts: list[str | None] = [None] * len(batch)
    if not keep:
      return base.scatter_result(batch, keep, None, failed,
                                 {base.GENERATED_TEXT: texts})
    enc = self.encode([pil[k] for k in keep])
    gen, gen_mask, prompt_hidden = self.generate(enc)
    prompt_len = enc['input_ids'].shape[1]
    if self.source == 'prompt_only':
      emb = self.pool(prompt_hidden, enc['attention_mask'], prompt_len)
    else:
      hidden, attn = self.forward_hidden(enc, gen, gen_mask)
      emb = self.pool(hidden, attn, prompt_len)
    for j, k in enumerate(keep):
      ids = gen[j][gen_mask[j]].tolist()
      texts[k] = self.tokenizer.decode(ids, skip_special_tokens=True).strip()
    return base.scatter_result(batch, keep, emb, failed,
                               {base.GENERATED_TEXT: texts})

  def close(self) -> None:
    del self.model


def make_extractor(spec: ml_collections.ConfigDict,
                   ds: dataset_lib.Dataset) -> LVLMExtractor:
  del ds  # Every item is handled on its own.
  if not spec.get('model', None):
    raise ValueError(f'{spec.name}: an LVLM spec needs `model` (a local path '
                     'or hub id in the HF cache).')
  return LVLMExtractor(spec)
