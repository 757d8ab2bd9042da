"""Tests for the visual extractor on tiny random ResNet, ViT and DINOv2 models.

No weights ship for these architectures here, so each test builds one from a
config with random weights (seeded), saves it with an image processor
configured as the model card's (ImageNet mean/std for ResNet and DINOv2,
0.5/0.5 for ViT-in21k), and runs the real loading and extraction code.
"""

import os

from absl.testing import absltest
from absl.testing import parameterized
import ml_collections
import numpy as np
from PIL import Image

try:
  # The `extract` extra; without it these tests skip.
  import torch
  import transformers
except ImportError:
  torch = None

from mmjax.data import store
from mmjax.features import base
from mmjax.features import extract
from mmjax.features import visual
from tests.testing import extraction
from tests.testing import fixtures

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def save_tiny_backbone(kind: str, path: str, seed: int = 0) -> None:
  """Writes a tiny random `kind` model and its image processor to `path`."""
  torch.manual_seed(seed)
  if kind == 'resnet':
    cfg = transformers.ResNetConfig(
        embedding_size=8, hidden_sizes=[8, 12], depths=[1, 1],
        layer_type='basic')
    model = transformers.ResNetModel(cfg)
    proc = transformers.ConvNextImageProcessor(
        size={'shortest_edge': 32}, crop_pct=0.875, image_mean=IMAGENET_MEAN,
        image_std=IMAGENET_STD)
  elif kind == 'vit':
    cfg = transformers.ViTConfig(
        hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, image_size=32, patch_size=8)
    model = transformers.ViTModel(cfg)
    proc = transformers.ViTImageProcessor(
        size={'height': 32, 'width': 32}, image_mean=[0.5] * 3,
        image_std=[0.5] * 3)
  elif kind == 'dinov2':
    cfg = transformers.Dinov2Config(
        hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        mlp_ratio=2, image_size=28, patch_size=14)
    model = transformers.Dinov2Model(cfg)
    proc = transformers.BitImageProcessor(
        size={'shortest_edge': 32}, crop_size={'height': 28, 'width': 28},
        do_center_crop=True, image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD)
  elif kind == 'dinov2_with_registers':
    cfg = transformers.Dinov2WithRegistersConfig(
        hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        mlp_ratio=2, image_size=28, patch_size=14, num_register_tokens=2)
    model = transformers.Dinov2WithRegistersModel(cfg)
    proc = transformers.BitImageProcessor(
        size={'shortest_edge': 32}, crop_size={'height': 28, 'width': 28},
        do_center_crop=True, image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD)
  else:
    raise ValueError(kind)
  model.eval()
  model.save_pretrained(path)
  proc.save_pretrained(path)


def spec_for(path: str, **kw) -> ml_collections.ConfigDict:
  d = {'name': 'v', 'extractor': 'visual', 'model': path, 'device': 'cpu',
       'dtype': 'float32'}
  d.update(kw)
  return ml_collections.ConfigDict(d)


def batch_of(paths, start=0):
  n = len(paths)
  return base.ItemBatch(np.arange(start, start + n, dtype=np.int32),
                        np.array([f'm{i}' for i in range(start, start + n)]),
                        [{} for _ in range(n)], list(paths))


@absltest.skipUnless(torch is not None,
                     'needs torch and transformers (the extract extra)')
class VisualTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    import tempfile  # pylint: disable=g-import-not-at-top
    cls._tmp = tempfile.TemporaryDirectory()
    cls.root = cls._tmp.name
    cls.models = {}
    for kind in ('resnet', 'vit', 'dinov2', 'dinov2_with_registers'):
      cls.models[kind] = os.path.join(cls.root, kind)
      save_tiny_backbone(kind, cls.models[kind])
    rng = np.random.default_rng([5, 2])
    cls.image_paths = []
    for i in range(6):
      h, w = int(rng.integers(20, 60)), int(rng.integers(20, 60))
      p = os.path.join(cls.root, f'img{i}.png')
      Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(p)
      cls.image_paths.append(p)

  @classmethod
  def tearDownClass(cls):
    cls._tmp.cleanup()
    super().tearDownClass()

  @parameterized.named_parameters(
      ('resnet', 'resnet', 'auto', 12),
      ('vit_cls', 'vit', 'auto', 16),
      ('vit_mean', 'vit', 'mean', 16),
      ('dinov2_cls', 'dinov2', 'cls', 16),
      ('dinov2_registers_mean', 'dinov2_with_registers', 'mean', 16),
  )
  def test_matches_direct_forward(self, kind, pooling, dim):
    ext = visual.VisualExtractor(spec_for(self.models[kind], pooling=pooling))
    result = ext.extract(batch_of(self.image_paths))
    self.assertEqual(result.values.shape, (6, dim))
    self.assertEqual(result.failed, {})
    # Reference: the model and processor loaded by hand, one forward pass.
    model = transformers.AutoModel.from_pretrained(self.models[kind]).eval()
    proc = transformers.AutoImageProcessor.from_pretrained(self.models[kind])
    ims = [Image.open(p).convert('RGB') for p in self.image_paths]
    with torch.no_grad():
      out = model(**proc(images=ims, return_tensors='pt'))
    if kind == 'resnet':
      ref = out.pooler_output.flatten(1)
      # ResNet's pooler is the global average of the last feature map.
      np.testing.assert_allclose(
          ref.numpy(), out.last_hidden_state.mean((2, 3)).numpy(), atol=1e-5)
    elif pooling == 'mean':
      # Patch tokens: after CLS and the register tokens, if any (2 here).
      skip = 1
      if kind == 'dinov2_with_registers':
        skip = 3
        self.assertEqual(out.last_hidden_state.shape[1], 3 + 4)  # 2x2 patches.
      ref = out.last_hidden_state[:, skip:].mean(1)
    else:
      ref = out.last_hidden_state[:, 0]
    np.testing.assert_allclose(result.values, ref.numpy(), atol=1e-5)
    manifest = ext.manifest()
    self.assertEqual(manifest['architecture'], kind)
    self.assertEqual(manifest['model_source'], 'local_path')
    self.assertLen(manifest['weights_sha256'], 64)
    self.assertIn('image_mean', manifest)

  @parameterized.parameters('resnet', 'vit')
  def test_deterministic_and_batch_size_invariant(self, kind):
    ext = visual.VisualExtractor(spec_for(self.models[kind]))
    full = ext.extract(batch_of(self.image_paths)).values
    again = ext.extract(batch_of(self.image_paths)).values
    np.testing.assert_array_equal(full, again)
    singles = np.concatenate([
        ext.extract(batch_of([p], i)).values
        for i, p in enumerate(self.image_paths)])
    np.testing.assert_allclose(singles, full, atol=1e-5)

  def test_layer_and_normalize(self):
    ext = visual.VisualExtractor(
        spec_for(self.models['vit'], layer=1, pooling='cls', normalize=True))
    v = ext.extract(batch_of(self.image_paths[:3])).values
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    model = transformers.AutoModel.from_pretrained(self.models['vit']).eval()
    proc = transformers.AutoImageProcessor.from_pretrained(self.models['vit'])
    ims = [Image.open(p).convert('RGB') for p in self.image_paths[:3]]
    with torch.no_grad():
      hs = model(**proc(images=ims, return_tensors='pt'),
                 output_hidden_states=True).hidden_states[1][:, 0]
    ref = torch.nn.functional.normalize(hs, dim=-1).numpy()
    np.testing.assert_allclose(v, ref, atol=1e-5)

  def test_odd_images_in_cli_run(self):
    """Grayscale, RGBA, 1x1 and 2000x2000 encode; missing/corrupt fail."""
    d = fixtures.new_tempdir(self)
    extraction.make_dataset(d, num_items=8)
    img = os.path.join(d, 'images')
    Image.new('L', (30, 20), 77).save(os.path.join(img, 'm0.png'))
    Image.new('RGBA', (20, 20), (10, 20, 30, 0)).save(
        os.path.join(img, 'm1.png'))
    Image.new('RGB', (1, 1), (200, 10, 10)).save(os.path.join(img, 'm2.png'))
    Image.new('RGB', (2000, 2000), (5, 5, 5)).save(os.path.join(img, 'm3.png'))
    os.remove(os.path.join(img, 'm4.png'))
    with open(os.path.join(img, 'm5.png'), 'wb') as f:
      f.write(b'\x89PNG\r\n\x1a\n garbage')
    cfg = extraction.weightfree_config(d, shard_size=3, batch_size=2)
    cfg.representations = ml_collections.ConfigDict(
        {'image_resnet': {'extractor': 'visual',
                          'model': self.models['resnet']}})
    (outcome,) = extract.run(cfg)
    self.assertEqual(outcome.status, 'stored')
    f = store.load(d, 'image_resnet')
    self.assertEqual(f.values.shape, (8, 12))
    self.assertEqual(np.flatnonzero(~f.mask).tolist(), [4, 5])
    self.assertTrue(np.all(np.abs(f.values[f.mask]).sum(1) > 0))
    # The RGBA image is transparent: it encodes as a white image would.
    white = os.path.join(d, 'white.png')
    Image.new('RGB', (20, 20), (255, 255, 255)).save(white)
    ext = visual.VisualExtractor(spec_for(self.models['resnet']))
    np.testing.assert_allclose(
        ext.extract(batch_of([white])).values[0], f.values[1], atol=1e-5)


if __name__ == '__main__':
  absltest.main()
