"""Visual backbones through transformers: ResNet, ViT, DINO-style, ConvNeXt.

`AutoModel` + `AutoImageProcessor` from the model folder, so preprocessing
(resize, crop, mean/std) is exactly what the model card ships; no torchvision
or timm. Spec keys:
  model: hub id or local path (resolved offline, see `resolve.py`), e.g.
    'microsoft/resnet-50', 'google/vit-base-patch16-224-in21k',
    'facebook/dinov2-small'.
  pooling: 'auto' (default: 'pooler' for convolutional backbones, whose
    pooler is the global average pool, e.g. ResNet-50's 2048-d vector; 'cls'
    for transformers), 'pooler' (the model's pooler_output, flattened), 'cls'
    (the first token of the chosen layer), or 'mean' (mean over the patch
    tokens after CLS and any register tokens, or over H and W for feature
    maps).
  layer: -1 (default: the last hidden state) or an index into hidden_states
    (0 = embeddings). 'pooler' needs the last layer.
  normalize: L2-normalise the vectors (default False, the raw features that
    MMRec-style recommenders expect).
Images are loaded by `images.load_rgb` (its failure policy applies).
"""

from __future__ import annotations

from typing import Any

import ml_collections
import numpy as np

from mmjax.data import dataset as dataset_lib
from mmjax.features import base
from mmjax.features import images
from mmjax.features import resolve


class VisualExtractor(base.Extractor):
  """Pooled features of an image backbone."""

  def __init__(self, spec: ml_collections.ConfigDict):
    import torch  # pylint: disable=g-import-not-at-top
    import transformers  # pylint: disable=g-import-not-at-top

    self.name = spec.name
    if not spec.get('model', None):
      raise ValueError(f'{self.name}: the visual extractor needs `model`.')
    self.resolved = resolve.resolve(spec.model, spec.get('revision', None))
    self.device = base.torch_device(spec.get('device', None))
    self.dtype = base.torch_dtype(spec.get('dtype', None), self.device)
    self.layer = int(spec.get('layer', -1))
    self.pooling = spec.get('pooling', None) or 'auto'
    if self.pooling not in ('auto', 'pooler', 'cls', 'mean'):
      raise ValueError(f'{self.name}: unknown pooling {self.pooling!r}.')
    if self.pooling == 'pooler' and self.layer != -1:
      raise ValueError(f'{self.name}: pooling=pooler needs layer=-1.')
    self.normalize = bool(spec.get('normalize', False))
    self.max_side = int(spec.get('max_side', images.MAX_SIDE))
    torch.use_deterministic_algorithms(True, warn_only=True)
    self.processor = transformers.AutoImageProcessor.from_pretrained(
        self.resolved.path, local_files_only=True)
    self.model = transformers.AutoModel.from_pretrained(
        self.resolved.path, local_files_only=True, dtype=self.dtype)
    self.model.to(self.device).eval()
    self.model_type = getattr(self.model.config, 'model_type', '')

  def manifest(self) -> dict[str, Any]:
    m = self.resolved.manifest()
    m.update(
        extractor='visual', input='image', architecture=self.model_type,
        layer=self.layer, pooling=self.pooling, normalize=self.normalize,
        compute_dtype=str(self.dtype).replace('torch.', ''),
        max_side_on_load=self.max_side,
        versions=base.versions('torch', 'transformers', 'pillow'),
    )
    m.update(base.image_processor_manifest(self.processor))
    return m

  def forward(self, ims: list[Any]) -> np.ndarray:
    """float32 [len(ims), D] for RGB PIL images (no failure handling)."""
    import torch  # pylint: disable=g-import-not-at-top

    inputs = self.processor(images=ims, return_tensors='pt')
    pixel_values = inputs['pixel_values'].to(self.device, self.dtype)
    with torch.inference_mode():
      out = self.model(pixel_values=pixel_values,
                       output_hidden_states=self.layer != -1)
    hidden = (out.last_hidden_state if self.layer == -1
              else out.hidden_states[self.layer])
    pooling = self.pooling
    if pooling == 'auto':
      pooling = 'pooler' if hidden.ndim == 4 else 'cls'
    if pooling == 'pooler':
      pooled = getattr(out, 'pooler_output', None)
      if pooled is None:
        raise ValueError(f'{self.name}: {self.model_type} has no pooler '
                         'output; use pooling=cls or mean.')
      pooled = pooled.reshape(pooled.shape[0], -1)
    elif pooling == 'cls':
      if hidden.ndim != 3:
        raise ValueError(f'{self.name}: pooling=cls needs a token sequence; '
                         f'{self.model_type} gives feature maps.')
      pooled = hidden[:, 0]
    elif hidden.ndim == 4:
      pooled = hidden.mean(dim=(2, 3))
    else:
      # Patch tokens only: the CLS token is a summary, and register tokens
      # (DINOv2 with registers) are not patches either.
      skip = 1 + int(getattr(self.model.config, 'num_register_tokens', 0) or 0)
      pooled = hidden[:, skip:].mean(dim=1)
    pooled = pooled.float()
    if self.normalize:
      pooled = torch.nn.functional.normalize(pooled, dim=-1)
    return pooled.cpu().numpy().astype(np.float32)

  def extract(self, batch: base.ItemBatch) -> base.BatchResult:
    ims, failed = images.load_batch(batch.image_paths, batch.items,
                                    self.max_side)
    keep = [k for k, im in enumerate(ims) if im is not None]
    enc = self.forward([ims[k] for k in keep]) if keep else None
    return base.scatter_result(batch, keep, enc, failed)

  def close(self) -> None:
    del self.model


def make_extractor(
    spec: ml_collections.ConfigDict, ds: dataset_lib.Dataset
) -> base.Extractor:
  del ds
  return VisualExtractor(spec)
