"""Multimodal-by-design encoders: CLIP, SigLIP, ALIGN (image and text).

`AutoModel` + `AutoProcessor` (or the image processor and tokenizer) from the
model folder; embeddings are the models' projected features
(`get_image_features` / `get_text_features`), the ones trained to share one
space. Spec keys:
  model: hub id or local path (resolved offline, see `resolve.py`), e.g.
    'openai/clip-vit-base-patch32', 'google/siglip-base-patch16-224',
    'kakaobrain/align-base'.
  modality: 'image' (default), 'text' or 'both'.
  fusion ('both'): 'concat' (default, [image, text], 2D), 'sum', 'mean' or
    'mul' (elementwise; D). Fusion is applied after normalisation, so each
    modality weighs the same.
  normalize: L2-normalise each embedding (default True: these models compare
    normalised vectors).
  fields / template: the item text, as in `text.py` (default title, genres).
  text_padding: 'max_length' for SigLIP (how it was trained; the model card
    insists), True (pad to the longest) for the others; override here.
  max_length: token limit (default: the tokenizer's, e.g. 77 for CLIP).
An item fails when a modality it needs fails (no image, empty text).
"""

from __future__ import annotations

from typing import Any

import ml_collections
import numpy as np

from mmjax.data import dataset as dataset_lib
from mmjax.features import base
from mmjax.features import images
from mmjax.features import resolve

FUSIONS = base.FUSIONS


def _features(out: Any):
  """Projected embeddings from a get_*_features result (tensor or output)."""
  if hasattr(out, 'pooler_output'):
    return out.pooler_output
  if hasattr(out, 'image_embeds'):
    return out.image_embeds
  if hasattr(out, 'text_embeds'):
    return out.text_embeds
  return out


class ClipExtractor(base.Extractor):
  """Image and/or text embeddings of a CLIP-style dual encoder."""

  def __init__(self, spec: ml_collections.ConfigDict):
    import torch  # pylint: disable=g-import-not-at-top
    import transformers  # pylint: disable=g-import-not-at-top

    self.name = spec.name
    if not spec.get('model', None):
      raise ValueError(f'{self.name}: the clip extractor needs `model`.')
    self.modality = spec.get('modality', None) or 'image'
    if self.modality not in ('image', 'text', 'both'):
      raise ValueError(f'{self.name}: modality must be image, text or both.')
    self.fusion = spec.get('fusion', None) or 'concat'
    if self.fusion not in FUSIONS:
      raise ValueError(f'{self.name}: fusion must be one of {FUSIONS}.')
    self.normalize = bool(spec.get('normalize', True))
    self.fields = list(spec.get('fields', None) or ('title', 'genres'))
    self.template = spec.get('template', None)
    self.max_side = int(spec.get('max_side', images.MAX_SIDE))
    self.resolved = resolve.resolve(spec.model, spec.get('revision', None))
    self.device = base.torch_device(spec.get('device', None))
    self.dtype = base.torch_dtype(spec.get('dtype', None), self.device)
    torch.use_deterministic_algorithms(True, warn_only=True)
    path = self.resolved.path
    self.model = transformers.AutoModel.from_pretrained(
        path, local_files_only=True, dtype=self.dtype)
    self.model.to(self.device).eval()
    self.model_type = getattr(self.model.config, 'model_type', '')
    self.image_processor = None
    self.tokenizer = None
    if self.modality in ('image', 'both'):
      self.image_processor = transformers.AutoImageProcessor.from_pretrained(
          path, local_files_only=True)
    if self.modality in ('text', 'both'):
      self.tokenizer = transformers.AutoTokenizer.from_pretrained(
          path, local_files_only=True)
    padding = spec.get('text_padding', None)
    if padding is None:
      padding = 'max_length' if 'siglip' in self.model_type else True
    self.text_padding = padding
    max_length = spec.get('max_length', None)
    if max_length is None and self.tokenizer is not None:
      max_length = min(int(self.tokenizer.model_max_length), 512)
      text_cfg = getattr(self.model.config, 'text_config', None)
      limit = getattr(text_cfg, 'max_position_embeddings', None)
      if limit:
        max_length = min(max_length, int(limit))
    self.max_length = max_length

  def manifest(self) -> dict[str, Any]:
    m = self.resolved.manifest()
    m.update(
        extractor=f'clip.{self.modality}', architecture=self.model_type,
        input=self.modality, normalize=self.normalize,
        layer='projection (get_image_features / get_text_features)',
        pooling='model default',
        compute_dtype=str(self.dtype).replace('torch.', ''),
        versions=base.versions('torch', 'transformers', 'pillow'),
    )
    if self.modality == 'both':
      m['fusion'] = self.fusion
    if self.tokenizer is not None:
      m.update(fields=self.fields, template=self.template,
               text_padding=self.text_padding, max_length=self.max_length)
    if self.image_processor is not None:
      m.update(base.image_processor_manifest(self.image_processor))
      m['max_side_on_load'] = self.max_side
    return m

  def image_features(self, ims: list[Any]) -> np.ndarray:
    import torch  # pylint: disable=g-import-not-at-top

    inputs = self.image_processor(images=ims, return_tensors='pt')
    pixel_values = inputs['pixel_values'].to(self.device, self.dtype)
    with torch.inference_mode():
      out = _features(self.model.get_image_features(pixel_values=pixel_values))
    return self._finish(out)

  def text_features(self, texts: list[str]) -> np.ndarray:
    import torch  # pylint: disable=g-import-not-at-top

    enc = self.tokenizer(texts, padding=self.text_padding, truncation=True,
                         max_length=self.max_length, return_tensors='pt')
    enc = {k: v.to(self.device) for k, v in enc.items()}
    with torch.inference_mode():
      out = _features(self.model.get_text_features(**enc))
    return self._finish(out)

  def _finish(self, out) -> np.ndarray:
    import torch  # pylint: disable=g-import-not-at-top

    out = out.float()
    if self.normalize:
      out = torch.nn.functional.normalize(out, dim=-1)
    return out.cpu().numpy().astype(np.float32)

  def extract(self, batch: base.ItemBatch) -> base.BatchResult:
    failed: dict[int, str] = {}
    ims, texts = None, None
    if self.image_processor is not None:
      ims, failed = images.load_batch(batch.image_paths, batch.items,
                                      self.max_side)
    if self.tokenizer is not None:
      texts, failed = base.batch_texts(batch, self.fields, self.template,
                                       failed)
    keep = [k for k, it in enumerate(batch.items) if int(it) not in failed]
    if not keep:
      return base.scatter_result(batch, keep, None, failed)
    parts = []
    if ims is not None:
      parts.append(self.image_features([ims[k] for k in keep]))
    if texts is not None:
      parts.append(self.text_features([texts[k] for k in keep]))
    enc = parts[0] if len(parts) == 1 else base.fuse(
        self.fusion, *parts, self.name, ('image', 'text'))
    return base.scatter_result(batch, keep, enc, failed)

  def close(self) -> None:
    del self.model


def make_extractor(
    spec: ml_collections.ConfigDict, ds: dataset_lib.Dataset
) -> base.Extractor:
  del ds
  return ClipExtractor(spec)
