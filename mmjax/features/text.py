"""Text encoders: Sentence-Transformers models and plain HF encoders.

Spec keys:
  model: hub id or local path (resolved offline, see `resolve.py`); default
    'sentence-transformers/all-MiniLM-L6-v2'.
  fields: item-table columns to encode, joined as in `base.item_text`
    (default ['title', 'genres']); `template` formats them instead.
  backend: 'auto' (Sentence-Transformers when the model folder has a
    modules.json, else plain HF), 'sentence_transformers' or 'hf'.
  pooling ('hf' backend): 'mean' over non-padding tokens (default) or 'cls'.
  normalize: L2-normalise the embeddings (default True). A
    Sentence-Transformers model with a Normalize module (all-MiniLM-L6-v2)
    always does; the manifest then says normalize=True whatever was asked.
  max_length: token limit (default: the model's own for Sentence-Transformers,
    256 for plain HF encoders); longer texts are truncated, as the model was
    trained.
  csv: optional external text column (see `extract.py`), used through
    `fields`.
Empty or non-UTF-8 texts fail (masked) instead of being encoded as ''.
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
from mmjax.features import resolve

DEFAULT_MODEL = 'sentence-transformers/all-MiniLM-L6-v2'


class TextExtractor(base.Extractor):
  """Encodes item text with a Sentence-Transformers or plain HF model."""

  def __init__(self, spec: ml_collections.ConfigDict):
    import torch  # pylint: disable=g-import-not-at-top

    self.name = spec.name
    self.fields = list(spec.get('fields', None) or ('title', 'genres'))
    self.template = spec.get('template', None)
    self.normalize = bool(spec.get('normalize', True))
    self.pooling = spec.get('pooling', None) or 'mean'
    if self.pooling not in ('mean', 'cls'):
      raise ValueError(f'{self.name}: pooling must be mean or cls, got '
                       f'{self.pooling!r}.')
    self.resolved = resolve.resolve(spec.get('model', None) or DEFAULT_MODEL,
                                    spec.get('revision', None))
    backend = spec.get('backend', None) or 'auto'
    if backend == 'auto':
      backend = ('sentence_transformers' if os.path.exists(
          os.path.join(self.resolved.path, 'modules.json')) else 'hf')
    if backend not in ('sentence_transformers', 'hf'):
      raise ValueError(f'{self.name}: unknown backend {backend!r}.')
    self.backend = backend
    self.device = base.torch_device(spec.get('device', None))
    self.dtype = base.torch_dtype(spec.get('dtype', None), self.device)
    self.batch_size = int(spec.get('batch_size', None) or 32)
    max_length = spec.get('max_length', None)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if backend == 'sentence_transformers':
      import sentence_transformers  # pylint: disable=g-import-not-at-top

      self.model = sentence_transformers.SentenceTransformer(
          self.resolved.path, device=str(self.device), local_files_only=True,
          model_kwargs={'torch_dtype': self.dtype})
      if max_length:
        self.model.max_seq_length = int(max_length)
      self.max_length = int(self.model.max_seq_length)
      self.pooling = _st_pooling(self.resolved.path)
      if _st_normalizes(self.resolved.path):
        # The model's own Normalize module (all-MiniLM-L6-v2 has one): its
        # output is unit-length whatever the spec says; record the truth.
        if not self.normalize:
          logging.warning('%s: %s L2-normalises in its Normalize module; '
                          'normalize=False has no effect.', self.name,
                          self.resolved.model_id)
        self.normalize = True
    else:
      import transformers  # pylint: disable=g-import-not-at-top

      self.tokenizer = transformers.AutoTokenizer.from_pretrained(
          self.resolved.path, local_files_only=True)
      self.model = transformers.AutoModel.from_pretrained(
          self.resolved.path, local_files_only=True, dtype=self.dtype)
      self.model.to(self.device).eval()
      self.max_length = int(max_length or 256)

  def manifest(self) -> dict[str, Any]:
    m = self.resolved.manifest()
    m.update(
        extractor=f'text.{self.backend}', input='text', fields=self.fields,
        template=self.template, pooling=self.pooling, layer='last',
        normalize=self.normalize, max_length=self.max_length,
        compute_dtype=str(self.dtype).replace('torch.', ''),
        versions=base.versions('torch', 'transformers',
                               'sentence-transformers'),
    )
    return m

  def texts(self, batch: base.ItemBatch) -> tuple[list[str], dict[int, str]]:
    return base.batch_texts(batch, self.fields, self.template)

  def encode(self, texts: list[str]) -> np.ndarray:
    """float32 [len(texts), D] embeddings of non-empty texts."""
    import torch  # pylint: disable=g-import-not-at-top

    if self.backend == 'sentence_transformers':
      out = self.model.encode(
          texts, batch_size=self.batch_size, convert_to_numpy=True,
          normalize_embeddings=self.normalize, show_progress_bar=False)
      return np.asarray(out, np.float32)
    enc = self.tokenizer(texts, padding=True, truncation=True,
                         max_length=self.max_length, return_tensors='pt')
    enc = {k: v.to(self.device) for k, v in enc.items()}
    with torch.inference_mode():
      hidden = self.model(**enc).last_hidden_state.float()
    if self.pooling == 'cls':
      pooled = hidden[:, 0]
    else:
      mask = enc['attention_mask'].unsqueeze(-1).float()
      pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
    if self.normalize:
      pooled = torch.nn.functional.normalize(pooled, dim=-1)
    return pooled.cpu().numpy().astype(np.float32)

  def extract(self, batch: base.ItemBatch) -> base.BatchResult:
    texts, failed = self.texts(batch)
    keep = [k for k, it in enumerate(batch.items) if int(it) not in failed]
    enc = self.encode([texts[k] for k in keep]) if keep else None
    return base.scatter_result(batch, keep, enc, failed)

  def close(self) -> None:
    del self.model


def _st_normalizes(path: str) -> bool:
  """Whether a Sentence-Transformers folder ends in a Normalize module."""
  cfg = os.path.join(path, 'modules.json')
  if not os.path.exists(cfg):
    return False
  with open(cfg, encoding='utf-8') as f:
    return any(str(m.get('type', '')).endswith('.Normalize')
               for m in json.load(f))


def _st_pooling(path: str) -> str:
  """The pooling a Sentence-Transformers folder declares (1_Pooling)."""
  cfg = os.path.join(path, '1_Pooling', 'config.json')
  if not os.path.exists(cfg):
    return 'sentence_transformers modules'
  with open(cfg, encoding='utf-8') as f:
    modes = [k[len('pooling_mode_'):].replace('_tokens', '')
             for k, v in json.load(f).items()
             if k.startswith('pooling_mode_') and v is True]
  return '+'.join(modes) or 'sentence_transformers modules'


def make_extractor(
    spec: ml_collections.ConfigDict, ds: dataset_lib.Dataset
) -> base.Extractor:
  del ds
  return TextExtractor(spec)
