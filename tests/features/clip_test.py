"""Tests for the CLIP-style extractor on tiny random CLIP, SigLIP and ALIGN.

Each model is built from a config with random weights (seeded) and saved with
an image processor set as its model card says (CLIP: OpenAI mean/std, resize
short side + centre crop; SigLIP: 0.5/0.5, plain resize; ALIGN: the
EfficientNet processor's defaults) and the small word-level tokenizer of
tests/testing/extraction.py.
"""

import os
import tempfile

from absl.testing import absltest
from absl.testing import parameterized
import ml_collections
import numpy as np
from PIL import Image

try:
  # The `extract` extra (torch, transformers, tokenizers); without it these
  # tests skip and the rest of the suite still runs.
  import tokenizers  # noqa: F401  (extraction.build_tokenizer needs it)
  import torch
  import transformers
except ImportError:
  torch = None

from mmjax.features import base
from mmjax.features import clip
from tests.testing import extraction

OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_STD = [0.26862954, 0.26130258, 0.27577711]


def save_tiny(kind: str, path: str) -> None:
  torch.manual_seed(1)
  n_vocab = len(extraction.WORDS) + 5
  text_kw = dict(vocab_size=n_vocab, hidden_size=16, intermediate_size=32,
                 num_hidden_layers=2, num_attention_heads=2,
                 max_position_embeddings=16, pad_token_id=extraction.PAD,
                 bos_token_id=extraction.BOS, eos_token_id=extraction.EOS)
  vision_kw = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                   num_attention_heads=2, image_size=32, patch_size=8)
  if kind == 'clip':
    cfg = transformers.CLIPConfig(text_config=text_kw, vision_config=vision_kw,
                                  projection_dim=12)
    model = transformers.CLIPModel(cfg)
    proc = transformers.CLIPImageProcessor(
        size={'shortest_edge': 32}, crop_size={'height': 32, 'width': 32},
        image_mean=OPENAI_MEAN, image_std=OPENAI_STD)
  elif kind == 'align':
    # EfficientNet vision tower shrunk by width/depth coefficients; its
    # pooled output (32-d here) is ALIGN's image embedding, so the text
    # projection is set to the same size.
    cfg = transformers.AlignConfig(
        text_config={**text_kw, 'num_hidden_layers': 1},
        vision_config=dict(image_size=32, width_coefficient=0.1,
                           depth_coefficient=0.1, hidden_dim=64,
                           depthwise_padding=[], num_hidden_layers=4),
        projection_dim=32)
    model = transformers.AlignModel(cfg)
    proc = transformers.EfficientNetImageProcessor(
        size={'height': 32, 'width': 32})
  else:
    cfg = transformers.SiglipConfig(text_config=text_kw,
                                    vision_config=vision_kw)
    model = transformers.SiglipModel(cfg)
    proc = transformers.SiglipImageProcessor(
        size={'height': 32, 'width': 32}, image_mean=[0.5] * 3,
        image_std=[0.5] * 3)
  model.eval()
  model.save_pretrained(path)
  proc.save_pretrained(path)
  extraction.build_tokenizer(16).save_pretrained(path)


ROWS = [{'title': 'Toy Story', 'genres': 'Animation|Comedy'},
        {'title': 'Heat', 'genres': 'Action|Crime'},
        {'title': 'The Dark Night of the City', 'genres': 'Horror'},
        {'title': '', 'genres': ''}]


@absltest.skipUnless(torch is not None, 'needs torch, transformers and '
                     'tokenizers (the extract extra)')
class ClipTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls._tmp = tempfile.TemporaryDirectory()
    root = cls._tmp.name
    cls.models = {}
    for kind in ('clip', 'siglip', 'align'):
      cls.models[kind] = os.path.join(root, kind)
      save_tiny(kind, cls.models[kind])
    rng = np.random.default_rng([9, 4])
    cls.paths = []
    for i in range(4):
      p = os.path.join(root, f'i{i}.png')
      size = (int(rng.integers(16, 50)), int(rng.integers(16, 50)), 3)
      Image.fromarray(rng.integers(0, 256, size, dtype=np.uint8)).save(p)
      cls.paths.append(p)
    cls.paths[3] = os.path.join(root, 'missing.png')

  @classmethod
  def tearDownClass(cls):
    cls._tmp.cleanup()
    super().tearDownClass()

  def _batch(self, n=4):
    return base.ItemBatch(np.arange(n, dtype=np.int32),
                          np.array([str(i) for i in range(n)]),
                          ROWS[:n], self.paths[:n])

  def _ext(self, kind, **kw):
    d = {'name': 'c', 'extractor': 'clip', 'model': self.models[kind],
         'device': 'cpu'}
    d.update(kw)
    return clip.ClipExtractor(ml_collections.ConfigDict(d))

  def _reference(self, kind):
    """Unnormalised image and text embeddings from a hand-built forward."""
    path = self.models[kind]
    model = transformers.AutoModel.from_pretrained(path).eval()
    proc = transformers.AutoImageProcessor.from_pretrained(path)
    tok = transformers.AutoTokenizer.from_pretrained(path)
    ims = [Image.open(p).convert('RGB') for p in self.paths[:3]]
    texts = ['Toy Story. Animation, Comedy', 'Heat. Action, Crime',
             'The Dark Night of the City. Horror']
    padding = 'max_length' if kind == 'siglip' else True
    enc = tok(texts, padding=padding, max_length=16, truncation=True,
              return_tensors='pt')
    with torch.no_grad():
      pv = proc(images=ims, return_tensors='pt')['pixel_values']
      vis = model.vision_model(pixel_values=pv).pooler_output
      txt = model.text_model(input_ids=enc['input_ids'],
                             attention_mask=enc['attention_mask']).pooler_output
      if kind == 'clip':
        vis = model.visual_projection(vis)
        txt = model.text_projection(txt)
      elif kind == 'align':
        # ALIGN embeds text as the projected [CLS] state.
        cls_state = model.text_model(
            input_ids=enc['input_ids'],
            attention_mask=enc['attention_mask']).last_hidden_state[:, 0]
        txt = model.text_projection(cls_state)
    return vis.numpy(), txt.numpy()

  @parameterized.parameters('clip', 'siglip', 'align')
  def test_image_and_text_match_direct_forward(self, kind):
    ref_img, ref_txt = self._reference(kind)
    img = self._ext(kind, modality='image', normalize=False).extract(
        self._batch())
    self.assertEqual(sorted(img.failed), [3])
    self.assertIn('missing', img.failed[3])
    np.testing.assert_allclose(img.values[:3], ref_img, atol=1e-5)
    np.testing.assert_array_equal(img.values[3], 0.0)
    txt_ext = self._ext(kind, modality='text', normalize=False)
    txt = txt_ext.extract(self._batch())
    self.assertEqual(sorted(txt.failed), [3])
    self.assertIn('empty text', txt.failed[3])
    np.testing.assert_allclose(txt.values[:3], ref_txt, atol=1e-5)
    m = txt_ext.manifest()
    self.assertEqual(m['architecture'], kind)
    self.assertEqual(m['text_padding'],
                     'max_length' if kind == 'siglip' else True)

  @parameterized.parameters('concat', 'sum', 'mean', 'mul')
  def test_fusion(self, fusion):
    img = self._ext('clip', modality='image').extract(self._batch(3)).values
    txt = self._ext('clip', modality='text').extract(self._batch(3)).values
    np.testing.assert_allclose(np.linalg.norm(img, axis=1), 1.0, rtol=1e-5)
    both = self._ext('clip', modality='both', fusion=fusion).extract(
        self._batch(3)).values
    expected = {'concat': np.concatenate([img, txt], 1), 'sum': img + txt,
                'mean': (img + txt) / 2, 'mul': img * txt}[fusion]
    np.testing.assert_allclose(both, expected, atol=1e-6)

  def test_both_fails_when_either_modality_fails(self):
    r = self._ext('clip', modality='both').extract(self._batch())
    self.assertEqual(sorted(r.failed), [3])
    self.assertEqual(r.values.shape, (4, 24))

  def test_batch_size_invariant(self):
    ext = self._ext('siglip', modality='both', fusion='mean')
    full = ext.extract(self._batch(3)).values
    singles = []
    for i in range(3):
      b = base.ItemBatch(np.array([i], np.int32), np.array([str(i)]),
                         [ROWS[i]], [self.paths[i]])
      singles.append(ext.extract(b).values)
    np.testing.assert_allclose(np.concatenate(singles), full, atol=1e-5)


if __name__ == '__main__':
  absltest.main()
