"""Tests for the audio extractors on tiny random wav2vec2, HuBERT and CLAP.

Each model is built from a small config with random weights (seeded) and
saved with its feature extractor (and, for CLAP, a word-level tokenizer) to
a temporary folder, so the real offline loading code runs. The waveforms are
sines the tests write with soundfile. Tolerances: pooled vectors against a
hand-written torch forward, 1e-5 (float32 sums in another order); a file at
twice (and 2.76 times) the target rate against the same signal generated
at the target rate, 1e-3 on the samples (the ripple and stop-band leakage of
resample_poly's Kaiser beta=5 filter; measured 4.8e-4 and 6.7e-4 on a signal
of peak 0.8) and 1e-3 on the embeddings.
"""

import json
import os
import tempfile
import types

from absl.testing import absltest
from absl.testing import parameterized
import ml_collections
import numpy as np

try:
  # The `extract` extra (torch, transformers, tokenizers, soundfile); without
  # it these tests skip and the rest of the suite still runs.
  import soundfile
  import torch
  import transformers
except ImportError:
  torch = None

from mmjax.data import store
from mmjax.features import audio
from mmjax.features import base
from mmjax.features import extract
from tests.testing import extraction
from tests.testing import fixtures

RATE = 16000  # The frame encoders' rate.
CLAP_RATE = 8000  # The tiny CLAP's rate, with a 1 s window.
CONV = dict(conv_dim=(8, 8, 8), conv_stride=(4, 4, 4), conv_kernel=(8, 8, 8))
RECEPTIVE_FIELD = 148  # 8 + 4 * (8 - 1) + 16 * (8 - 1) samples.


def signal(rate: int, seconds: float, freqs=(300.0, 1100.0)) -> np.ndarray:
  """Samples of sines under a sin^2 fade over `seconds`: band-limited and
  zero at both ends, the same continuous signal at every rate."""
  t = np.arange(int(round(rate * seconds))) / rate
  x = sum(np.sin(2 * np.pi * f * t) for f in freqs) / len(freqs)
  return (0.8 * np.sin(np.pi * t / seconds) ** 2 * x).astype(np.float32)


def save_encoder(kind: str, path: str) -> None:
  """A tiny wav2vec2 (layer-norm convolutions, attention mask) or HuBERT
  (group norm, no mask) with its feature extractor."""
  torch.manual_seed(3)
  kw = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=20, num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=2, **CONV)
  if kind == 'wav2vec2':
    model = transformers.Wav2Vec2Model(
        transformers.Wav2Vec2Config(feat_extract_norm='layer', **kw))
  else:
    model = transformers.HubertModel(
        transformers.HubertConfig(feat_extract_norm='group', **kw))
  fe = transformers.Wav2Vec2FeatureExtractor(
      feature_size=1, sampling_rate=RATE, padding_value=0.0,
      do_normalize=kind == 'wav2vec2',
      return_attention_mask=kind == 'wav2vec2')
  model.eval()
  model.save_pretrained(path)
  fe.save_pretrained(path)


def save_clap(path: str, fusion: bool = False) -> None:
  torch.manual_seed(4)
  cfg = transformers.ClapConfig(
      text_config=dict(vocab_size=len(extraction.WORDS) + 5, hidden_size=16,
                       num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=32, max_position_embeddings=32,
                       pad_token_id=extraction.PAD,
                       bos_token_id=extraction.BOS,
                       eos_token_id=extraction.EOS),
      audio_config=dict(window_size=4, num_mel_bins=32, spec_size=64,
                        patch_size=2, patch_stride=2, depths=[1, 2],
                        num_attention_heads=[2, 2],
                        patch_embeds_hidden_size=16, hidden_size=32,
                        enable_fusion=fusion),
      projection_dim=12)
  model = transformers.ClapModel(cfg).eval()
  fe = transformers.ClapFeatureExtractor(
      feature_size=32, sampling_rate=CLAP_RATE, hop_length=80, max_length_s=1,
      fft_window_size=256, frequency_min=50, frequency_max=4000,
      truncation='fusion' if fusion else 'rand_trunc', padding='repeatpad')
  model.save_pretrained(path)
  fe.save_pretrained(path)
  extraction.build_tokenizer(16).save_pretrained(path)


def batch_of(paths, rows=None):
  n = len(paths)
  rows = rows or [{'audio': p} for p in paths]
  return base.ItemBatch(np.arange(n, dtype=np.int32),
                        np.array([f'm{i}' for i in range(n)]), rows,
                        [None] * n)


def spec_for(model: str, **kw) -> ml_collections.ConfigDict:
  d = {'name': 'a', 'extractor': 'audio', 'model': model, 'device': 'cpu',
       'dtype': 'float32', 'audio_field': 'audio'}
  d.update(kw)
  return ml_collections.ConfigDict(d)


def make(spec):
  ds = types.SimpleNamespace(item_table={'audio': [], 'title': []})
  return audio.make_extractor(spec, ds)


@absltest.skipUnless(torch is not None, 'needs soundfile, torch and '
                     'transformers (the extract extra)')
class LoadAudioTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = fixtures.new_tempdir(self)

  def _write(self, name, data, rate, subtype='FLOAT'):
    path = os.path.join(self.dir, name)
    soundfile.write(path, data, rate, subtype=subtype)
    return path

  def test_resampled_file_equals_signal_made_at_target_rate(self):
    for source in (2 * RATE, 44100):
      # Plus an 11 kHz tone, above the target's Nyquist frequency: the
      # anti-aliasing filter must remove it (plain decimation x[::2] would
      # fold it to 5 kHz and miss by 0.4).
      data = signal(source, 0.5) + 0.5 * signal(source, 0.5, (11000.0,))
      path = self._write(f's{source}.wav', data, source)
      clip, reason = audio.load_audio(path, RATE)
      self.assertIsNone(reason)
      want = signal(RATE, 0.5)
      self.assertEqual(clip.waveform.shape, want.shape)
      self.assertEqual((clip.source_rate, clip.rate), (source, RATE))
      np.testing.assert_allclose(clip.waveform, want, atol=1e-3)
      self.assertGreater(np.abs(want).max(), 0.3)

  def test_stereo_mixdown_and_crops(self):
    left, right = signal(RATE, 1.0, (440.0,)), signal(RATE, 1.0, (660.0,))
    path = self._write('st.wav', np.stack([left, right], axis=1), RATE)
    clip, _ = audio.load_audio(path, RATE)
    np.testing.assert_allclose(clip.waveform, (left + right) / 2, atol=1e-7)
    self.assertEqual(clip.info(), {'source_rate': RATE, 'channels': 2,
                                   'source_seconds': 1.0,
                                   'used_seconds': 1.0})
    start, _ = audio.load_audio(path, RATE, max_duration_s=0.25)
    np.testing.assert_allclose(start.waveform, ((left + right) / 2)[:4000],
                               atol=1e-7)
    center, _ = audio.load_audio(path, RATE, max_duration_s=0.25,
                                 crop='center')
    np.testing.assert_allclose(center.waveform,
                               ((left + right) / 2)[6000:10000], atol=1e-7)
    self.assertEqual(center.info()['used_seconds'], 0.25)

  def test_bad_files_fail_with_their_reason(self):
    empty = self._write('empty.wav', np.zeros((0,), np.float32), RATE)
    zero_bytes = os.path.join(self.dir, 'zero.wav')
    open(zero_bytes, 'wb').close()
    corrupt = os.path.join(self.dir, 'corrupt.wav')
    with open(corrupt, 'wb') as f:
      f.write(b'RIFF\x24\x00\x00\x00WAVEfmt garbage that is not audio')
    short = self._write('short.wav', signal(RATE, 0.005), RATE)  # 80 < 148.
    nan = self._write('nan.wav', np.full(400, np.nan, np.float32), RATE)
    cases = {None: 'no audio', empty: 'empty audio',
             zero_bytes: 'unreadable audio', corrupt: 'unreadable audio',
             os.path.join(self.dir, 'nope.wav'): 'audio file missing',
             self.dir: 'audio path is not a file',
             short: 'audio too short', nan: 'non-finite audio samples'}
    for path, kind in cases.items():
      clip, reason = audio.load_audio(path, RATE,
                                      min_samples=RECEPTIVE_FIELD)
      self.assertIsNone(clip, path)
      self.assertEqual(reason.split(':', 1)[0], kind, reason)

  def test_receptive_field_and_frames(self):
    kernel, stride = CONV['conv_kernel'], CONV['conv_stride']
    self.assertEqual(audio.receptive_field(kernel, stride), RECEPTIVE_FIELD)
    self.assertEqual(audio.num_frames(RECEPTIVE_FIELD, kernel, stride), 1)
    self.assertEqual(audio.num_frames(RECEPTIVE_FIELD - 1, kernel, stride), 0)
    # wav2vec2-base's encoder: 25 ms windows, 20 ms hop at 16 kHz.
    base_kernel, base_stride = (10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2)
    self.assertEqual(audio.receptive_field(base_kernel, base_stride), 400)
    self.assertEqual(audio.num_frames(RATE, base_kernel, base_stride), 49)


@absltest.skipUnless(torch is not None, 'needs soundfile, torch and '
                     'transformers (the extract extra)')
class EncoderTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls._tmp = tempfile.TemporaryDirectory()
    root = cls._tmp.name
    cls.models = {}
    for kind in ('wav2vec2', 'hubert'):
      cls.models[kind] = os.path.join(root, kind)
      save_encoder(kind, cls.models[kind])
    cls.waves = [signal(RATE, s, (f,)) for s, f in
                 ((0.2, 220.0), (0.45, 500.0), (0.3, 1500.0))]
    cls.paths = []
    for i, w in enumerate(cls.waves):
      cls.paths.append(os.path.join(root, f'c{i}.wav'))
      soundfile.write(cls.paths[-1], w, RATE, subtype='FLOAT')
    cls.corrupt = os.path.join(root, 'corrupt.wav')
    with open(cls.corrupt, 'wb') as f:
      f.write(b'not audio at all')
    cls.twice = os.path.join(root, 'twice.wav')
    soundfile.write(cls.twice, signal(2 * RATE, 0.45, (500.0,)), 2 * RATE,
                    subtype='FLOAT')

  @classmethod
  def tearDownClass(cls):
    cls._tmp.cleanup()
    super().tearDownClass()

  def _reference(self, kind, layer):
    """Each clip alone (no padding): hidden states averaged over frames."""
    model = transformers.AutoModel.from_pretrained(self.models[kind]).eval()
    fe = transformers.AutoFeatureExtractor.from_pretrained(self.models[kind])
    rows = []
    for w in self.waves:
      values = fe(w, sampling_rate=RATE, return_tensors='pt')['input_values']
      with torch.no_grad():
        out = model(values, output_hidden_states=True)
      hidden = out.last_hidden_state if layer == -1 else (
          out.hidden_states[layer])
      rows.append(hidden[0].mean(0).numpy())
    return np.stack(rows)

  @parameterized.parameters(('wav2vec2', -1), ('hubert', -1),
                            ('wav2vec2', 1))
  def test_pooled_vector_is_the_mean_of_valid_frames(self, kind, layer):
    ext = make(spec_for(self.models[kind], layer=layer))
    missing = os.path.join(self._tmp.name, 'missing.wav')
    paths = self.paths[:2] + [missing, self.corrupt, self.paths[2]]
    result = ext.extract(batch_of(paths))
    self.assertEqual(result.values.shape, (5, 16))
    self.assertEqual(sorted(result.failed), [2, 3])
    self.assertStartsWith(result.failed[2], 'audio file missing')
    self.assertStartsWith(result.failed[3], 'unreadable audio')
    np.testing.assert_array_equal(result.values[[2, 3]], 0.0)
    # wav2vec2 pads the batch (its clips differ in length) and masks; the
    # reference encodes each clip alone.
    np.testing.assert_allclose(result.values[[0, 1, 4]],
                               self._reference(kind, layer), atol=1e-5)
    self.assertEqual(result.extra['audio'][2], None)
    self.assertEqual(result.extra['audio'][1]['used_seconds'], 0.45)
    m = ext.manifest()
    self.assertEqual((m['extractor'], m['architecture'], m['layer']),
                     ('audio.encoder', kind, layer))
    self.assertEqual(m['batching'].startswith('padded'), kind == 'wav2vec2')
    self.assertEqual(m['resample']['method'], 'scipy.signal.resample_poly')
    self.assertEqual((m['sampling_rate'], m['max_duration_s'], m['crop']),
                     (RATE, 30.0, 'start'))
    self.assertEqual(m['min_samples'], RECEPTIVE_FIELD)

  def test_file_at_twice_the_rate_gives_the_same_vector(self):
    ext = make(spec_for(self.models['wav2vec2'], normalize=True))
    v = ext.extract(batch_of([self.paths[1], self.twice])).values
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(v[1], v[0], atol=1e-3)
    # The vectors do tell clips apart: not a constant output.
    other = ext.extract(batch_of([self.paths[2]])).values[0]
    self.assertGreater(np.abs(other - v[0]).max(), 1e-2)

  def test_spec_mistakes(self):
    with self.assertRaisesRegex(base.SpecError, 'CLAP'):
      make(spec_for(self.models['hubert'], modality='text'))
    with self.assertRaisesRegex(ValueError, 'layer must be'):
      make(spec_for(self.models['hubert'], layer=7))
    ds = types.SimpleNamespace(item_table={'title': []})
    with self.assertRaisesRegex(base.SpecError, 'no audio source'):
      audio.check_spec(spec_for('x', audio_field=None), ds)
    with self.assertRaisesRegex(base.SpecError, r"\['artist'\]"):
      audio.check_spec(spec_for('x', audio_pattern='{artist}/{raw_id}.wav'),
                       ds)


@absltest.skipUnless(torch is not None, 'needs soundfile, torch, '
                     'transformers and tokenizers (the extract extra)')
class ClapTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls._tmp = tempfile.TemporaryDirectory()
    root = cls._tmp.name
    cls.model = os.path.join(root, 'clap')
    cls.fused = os.path.join(root, 'clap_fused')
    save_clap(cls.model)
    save_clap(cls.fused, fusion=True)
    cls.waves = [signal(CLAP_RATE, s, (f,)) for s, f in
                 ((0.3, 200.0), (1.5, 700.0), (0.6, 1300.0))]
    cls.paths = []
    for i, w in enumerate(cls.waves):
      cls.paths.append(os.path.join(root, f'c{i}.wav'))
      soundfile.write(cls.paths[-1], w, CLAP_RATE, subtype='FLOAT')
    cls.rows = [{'audio': p, 'title': t} for p, t in zip(
        cls.paths, ('Toy Story', 'Heat', ''))]

  @classmethod
  def tearDownClass(cls):
    cls._tmp.cleanup()
    super().tearDownClass()

  def test_audio_and_text_match_direct_forward(self):
    model = transformers.ClapModel.from_pretrained(self.model).eval()
    fe = transformers.AutoFeatureExtractor.from_pretrained(self.model)
    tok = transformers.AutoTokenizer.from_pretrained(self.model)
    # The 1.5 s clip is cropped to the model's 1 s window, from the start.
    waves = [self.waves[0], self.waves[1][:CLAP_RATE], self.waves[2]]
    with torch.no_grad():
      feats = fe(waves, sampling_rate=CLAP_RATE,
                 return_tensors='pt')['input_features']
      ref_audio = model.audio_projection(model.audio_model(
          input_features=feats).pooler_output).numpy()
      enc = tok(['Toy Story', 'Heat'], padding=True, return_tensors='pt')
      ref_text = model.text_projection(model.text_model(
          **enc).pooler_output).numpy()
    a = make(spec_for(self.model, normalize=False, fields=['title']))
    got = a.extract(batch_of(self.paths, self.rows))
    self.assertEqual(got.failed, {})
    np.testing.assert_allclose(got.values, ref_audio, atol=1e-5)
    self.assertEqual(got.extra['audio'][1]['used_seconds'], 1.0)
    t = make(spec_for(self.model, modality='text', normalize=False,
                      fields=['title']))
    got = t.extract(batch_of(self.paths, self.rows))
    self.assertEqual(list(got.failed), [2])
    self.assertStartsWith(got.failed[2], 'empty text')
    np.testing.assert_allclose(got.values[:2], ref_text, atol=1e-5)
    m = a.manifest()
    self.assertEqual((m['extractor'], m['max_duration_s'], m['sampling_rate']),
                     ('audio.clap.audio', 1.0, CLAP_RATE))
    self.assertEqual(t.manifest()['extractor'], 'audio.clap.text')

  def test_both_is_normalised_concat_and_fails_with_either(self):
    kw = dict(fields=['title'])
    audio_v = make(spec_for(self.model, **kw)).extract(
        batch_of(self.paths, self.rows)).values
    text_v = make(spec_for(self.model, modality='text', **kw)).extract(
        batch_of(self.paths, self.rows)).values
    np.testing.assert_allclose(np.linalg.norm(audio_v, axis=1), 1.0,
                               rtol=1e-5)
    both = make(spec_for(self.model, modality='both', **kw)).extract(
        batch_of(self.paths, self.rows))
    self.assertEqual(list(both.failed), [2])
    self.assertEqual(both.values.shape, (3, 24))
    np.testing.assert_allclose(
        both.values[:2], np.concatenate([audio_v, text_v], 1)[:2], atol=1e-6)

  def test_fused_model_does_not_depend_on_the_batch(self):
    # The feature extractor marks a random clip of a batch as "longer";
    # the extractor passes is_longer=False, so batch and singles agree.
    ext = make(spec_for(self.fused))
    full = ext.extract(batch_of(self.paths, self.rows)).values
    singles = np.concatenate([
        ext.extract(batch_of([p], [r])).values
        for p, r in zip(self.paths, self.rows)])
    np.testing.assert_allclose(singles, full, atol=1e-5)

  def test_crop_longer_than_the_model_window_is_refused(self):
    with self.assertRaisesRegex(ValueError, 'crop at random'):
      make(spec_for(self.model, max_duration_s=2.0))


@absltest.skipUnless(torch is not None, 'needs soundfile, torch and '
                     'transformers (the extract extra)')
class ExtractRunTest(absltest.TestCase):

  def test_cli_run_stores_audio_features_with_manifest(self):
    d = fixtures.new_tempdir(self)
    model = os.path.join(d, 'w2v')
    save_encoder('wav2vec2', model)
    extraction.make_dataset(d, num_items=6, with_images=False)
    clips = os.path.join(d, 'clips')
    os.makedirs(clips)
    # m0..m2 at three rates (m1 stereo, as FLAC), m3 empty, m4 corrupt, m5
    # missing; '{raw_id}.*' finds each whatever its extension.
    soundfile.write(os.path.join(clips, 'm0.wav'), signal(RATE, 0.3), RATE)
    soundfile.write(os.path.join(clips, 'm1.flac'),
                    np.stack([signal(22050, 0.4)] * 2, axis=1), 22050)
    soundfile.write(os.path.join(clips, 'm2.wav'), signal(8000, 0.25), 8000)
    soundfile.write(os.path.join(clips, 'm3.wav'), np.zeros(0), RATE)
    with open(os.path.join(clips, 'm4.wav'), 'wb') as f:
      f.write(b'RIFF garbage')
    cfg = extraction.weightfree_config(d, shard_size=4, batch_size=2)
    cfg.representations = ml_collections.ConfigDict({'sound': {
        'extractor': 'audio', 'model': model, 'audio_root': clips,
        'audio_pattern': '{raw_id}.*'}})
    (outcome,) = extract.run(cfg)
    self.assertEqual(outcome.status, 'stored', outcome.error)
    self.assertEqual(outcome.num_failed, 3)
    f = store.load(d, 'sound')
    self.assertEqual(f.values.shape, (6, 16))
    self.assertEqual(f.mask.tolist(), [True] * 3 + [False] * 3)
    self.assertTrue(np.all(np.abs(f.values[:3]).sum(1) > 0))
    with open(os.path.join(d, 'features', 'sound.json')) as fh:
      m = json.load(fh)
    self.assertEqual(m['failed_reasons'], {'empty audio': 1,
                                           'unreadable audio': 1,
                                           'audio file missing': 1})
    self.assertEqual(m['resample']['target_rate'], RATE)
    self.assertEqual((m['mixdown'], m['audio_pattern'], m['crop']),
                     ('mean of channels', '{raw_id}.*', 'start'))
    self.assertEqual(m['extra_files'], ['sound.audio.jsonl'])
    with open(os.path.join(d, 'features', 'sound.audio.jsonl')) as fh:
      lines = {r['raw_id']: r['audio'] for r in map(json.loads, fh)}
    self.assertEqual(lines['m1']['source_rate'], 22050)
    self.assertEqual(lines['m1']['channels'], 2)
    self.assertEqual(lines['m2']['source_rate'], 8000)
    self.assertIsNone(lines['m3'])

  def test_missing_audio_source_stops_the_run_before_any_work(self):
    d = fixtures.new_tempdir(self)
    extraction.make_dataset(d, num_items=3, with_images=False)
    cfg = extraction.weightfree_config(d)
    cfg.representations.sound = {'extractor': 'audio',
                                 'model': '/nonexistent/model'}
    with self.assertRaisesRegex(base.SpecError, 'sound: no audio source'):
      extract.run(cfg)
    self.assertFalse(os.path.exists(os.path.join(d, 'features', 'hist.npy')))


if __name__ == '__main__':
  absltest.main()
