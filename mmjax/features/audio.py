r"""Audio encoders: wav2vec 2.0 / HuBERT-style models and CLAP (audio and text).

  python -m mmjax.features.extract --config configs/features/audio_wav2vec2.py \
      --config.dataset_dir=data/music --config.audio_root=/data/music/clips

Where each item's audio comes from (as images come from `image_field` and
`image_root`; `check_spec` checks it before any work):
  audio_pattern: a path template formatted per item with `{raw_id}`, `{item}`
    (the internal id) and the item-table columns, e.g. 'clips/{raw_id}.wav'.
    Glob characters are allowed: '{raw_id}.*' takes whichever extension
    exists, and more than one match fails the item as ambiguous (the values
    put into the template are glob-escaped). Takes precedence over the field.
  audio_field: otherwise, the item-table column holding each item's path
    (default: the first of AUDIO_FIELDS the table has).
  Relative paths are looked up under `audio_root`, then the dataset
  directory; the first that exists wins. URLs are never downloaded.

Reading (`load_audio`, no torch): soundfile (libsndfile: WAV, FLAC, OGG,
MP3, AIFF, ...) as float32; several channels are mixed down to mono by
their mean; a clip longer than `max_duration_s` is cropped (`crop`: 'start'
keeps the first seconds, 'center' the middle ones; only those frames are
read); then it is resampled to the model's rate with
`scipy.signal.resample_poly` (polyphase FIR, Kaiser window beta 5, the
up/down factors of the two rates reduced by their gcd). The manifest states
the method, target rate, mixdown and crop; each item's source rate, channels
and durations go to `<name>.audio.jsonl` (lines of failed items are null, or
absent where a whole batch failed). An item fails, with its reason and never
as silent zeros, when it has no audio path, its file is missing, unreadable
or corrupt, it holds no samples or non-finite ones, or it is shorter than
the model's receptive field.

Spec keys (`extractor='audio'`; the model's config.json picks the kind):
  model: hub id or local path, resolved offline (see `resolve.py`).
  max_duration_s: crop length in seconds (None: whole clips). Default 30 for
    frame encoders (self-attention cost grows with the square of the
    length) and the feature extractor's `max_length_s` (10) for CLAP, which
    refuses longer crops: its feature extractor would crop them at random.
  crop: 'start' (default) or 'center'.
  normalize: L2-normalise the vectors (default False for frame encoders,
    True for CLAP, whose towers are compared normalised).
Frame encoders (wav2vec2, HuBERT, WavLM, data2vec-audio: any model with a
convolutional feature encoder, `conv_kernel` and `conv_stride`):
  layer: -1 (default: the last hidden state) or an index into hidden_states
    (0: the input of the first transformer layer).
  pooling: 'mean' over the valid frames of each clip (the only one).
  Clips are batched with padding and an attention mask when the feature
  extractor asks for one (`return_attention_mask`, models with layer-norm
  convolutions); otherwise (group-norm models such as wav2vec2-base and
  hubert-base, which were trained without a mask and would read padding as
  signal) each clip is encoded alone.
CLAP (`ClapModel`): `modality` 'audio' (default), 'text' or 'both';
  `fusion`, `fields`, `template`, `max_length` as in `clip.py`. Embeddings
  are the projections of the audio and text towers (what
  get_audio_features / get_text_features return before their normalisation,
  which `normalize` applies or not). Every clip is passed with
  is_longer=False: the feature extractor marks a random clip as longer when
  none is, and the model then fuses that clip's features differently, so
  the result would depend on chance and batch composition.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import math
import os
import string
from typing import Any, Sequence

import ml_collections
import numpy as np

from mmjax.data import dataset as dataset_lib
from mmjax.features import base
from mmjax.features import resolve

# Item-table columns tried, in order, when a spec names no `audio_field`.
AUDIO_FIELDS = ('audio', 'audio_path', 'audio_file', 'sound')
CROPS = ('start', 'center')
FUSIONS = base.FUSIONS
MODALITIES = ('audio', 'text', 'both')
# scipy.signal.resample_poly's default window, stated in the manifest.
RESAMPLE_WINDOW = ('kaiser', 5.0)
DEFAULT_ENCODER_MAX_S = 30.0


@dataclasses.dataclass
class Clip:
  """A mono clip at the model's rate, and what it was made from.

  Attributes:
    waveform: float32 [T], mono, at `rate`.
    rate: its sampling rate (the model's).
    source_rate: the file's sampling rate.
    channels: the file's channel count (mixed down to mono by their mean).
    source_seconds: the file's duration.
    used_seconds: the duration read (after the crop), at the source rate.
  """

  waveform: np.ndarray
  rate: int
  source_rate: int
  channels: int
  source_seconds: float
  used_seconds: float

  def info(self) -> dict[str, Any]:
    return {'source_rate': self.source_rate, 'channels': self.channels,
            'source_seconds': round(self.source_seconds, 4),
            'used_seconds': round(self.used_seconds, 4)}


def resample(x: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
  """Resamples a 1-D signal with scipy's polyphase filter (float64 inside).

  Args:
    x: [T] samples at `source_rate`.
    source_rate, target_rate: in Hz.

  Returns:
    float32 [ceil(T * target_rate / source_rate)].
  """
  if source_rate == target_rate:
    return np.asarray(x, np.float32)
  from scipy import signal  # pylint: disable=g-import-not-at-top

  g = math.gcd(int(source_rate), int(target_rate))
  y = signal.resample_poly(np.asarray(x, np.float64), target_rate // g,
                           source_rate // g, window=RESAMPLE_WINDOW)
  return y.astype(np.float32)


def load_audio(
    path: str | None,
    target_rate: int,
    *,
    max_duration_s: float | None = None,
    crop: str = 'start',
    min_samples: int = 1,
) -> tuple[Clip | None, str | None]:
  """Reads an audio file as a mono clip at `target_rate`.

  Args:
    path: an absolute path, or None for an item without audio.
    target_rate: the model's sampling rate.
    max_duration_s: read at most this many seconds (None: all).
    crop: 'start' or 'center': which part of a longer file is read.
    min_samples: fewer samples after resampling fail the item (the model's
      receptive field).

  Returns:
    (clip, None) on success, (None, reason) when the item must fail; the
    reason's text before the first ':' is its kind (counted in the
    manifest).
  """
  import soundfile  # pylint: disable=g-import-not-at-top

  if path is None:
    return None, 'no audio'
  if not os.path.exists(path):
    return None, f'audio file missing: {path}'
  if not os.path.isfile(path):
    return None, f'audio path is not a file: {path}'
  try:
    with soundfile.SoundFile(path) as f:
      rate, channels, frames = int(f.samplerate), int(f.channels), f.frames
      start, count = 0, -1
      if max_duration_s is not None:
        count = max(1, int(round(max_duration_s * rate)))
        if crop == 'center' and frames > count:
          start = (frames - count) // 2
          f.seek(start)
      data = f.read(count, dtype='float32', always_2d=True)  # [T, C]
  except (RuntimeError, OSError, ValueError, TypeError, EOFError) as e:
    # soundfile.LibsndfileError is a RuntimeError: unknown format, a
    # corrupt header, a truncated stream.
    return None, f'unreadable audio: {path}: {type(e).__name__}: {e}'
  if data.shape[0] == 0 or rate <= 0:
    return None, f'empty audio: {path} holds no samples'
  if not np.isfinite(data).all():
    return None, f'non-finite audio samples: {path} holds NaN or inf'
  mono = data.mean(axis=1) if channels > 1 else data[:, 0]
  wave = resample(mono, rate, target_rate)
  if len(wave) < min_samples:
    return None, (f'audio too short: {path}: {len(wave)} samples at '
                  f'{target_rate} Hz, the model needs at least {min_samples}')
  source_frames = frames if frames > 0 else data.shape[0]
  return Clip(wave, int(target_rate), rate, channels, source_frames / rate,
              data.shape[0] / rate), None


# ------------------------------------------------------------ audio sources


@dataclasses.dataclass
class AudioSource:
  """How items find their audio files (see the module docstring).

  Attributes:
    pattern: a path template, or None.
    field: the item-table column, or None (when `pattern` is set).
    roots: folders tried, in order, for relative paths.
  """

  pattern: str | None
  field: str | None
  roots: list[str]

  def manifest(self) -> dict[str, Any]:
    return {'audio_pattern': self.pattern, 'audio_field': self.field,
            'audio_roots': self.roots}

  def paths(self, batch: base.ItemBatch) -> tuple[list[str | None],
                                                  dict[int, str]]:
    """Each item's audio path (None where it has none) and why not."""
    paths: list[str | None] = []
    failed: dict[int, str] = {}
    for item, raw_id, row in zip(batch.items, batch.raw_ids, batch.rows):
      path, reason = self._path(int(item), str(raw_id), row)
      paths.append(path)
      if reason:
        failed[int(item)] = reason
    return paths, failed

  def _path(self, item: int, raw_id: str,
            row: dict[str, Any]) -> tuple[str | None, str | None]:
    if self.pattern:
      values = {k: glob.escape(base.field_text(v)) for k, v in row.items()}
      values.update(raw_id=glob.escape(raw_id), item=item)
      rel = self.pattern.format(**values)
      if not glob.has_magic(rel):
        return base.resolve_image_path(rel, self.roots), None
      roots = self.roots if self.roots and not os.path.isabs(rel) else ['']
      for root in roots:
        matches = sorted(glob.glob(os.path.join(root, rel)))
        if len(matches) == 1:
          return os.path.abspath(matches[0]), None
        if len(matches) > 1:
          return None, (f'ambiguous audio: {len(matches)} files match '
                        f'{os.path.join(root, rel)} (first {matches[:2]})')
      return None, (f'audio file missing: no file matches {rel} under '
                    + ', '.join(r or os.getcwd() for r in roots))
    value = row.get(self.field)
    text = base.field_text(value[0] if isinstance(value, (list, tuple))
                           and value else value).strip()
    if not text:
      return None, f'no audio: empty {self.field!r}'
    if '://' in text:
      return None, f'no audio: {text} is a URL (extraction never downloads)'
    return base.resolve_image_path(text, self.roots), None


def audio_source(spec: ml_collections.ConfigDict,
                 columns: Sequence[str]) -> AudioSource:
  """The spec's AudioSource, checked against the item-table columns.

  Raises:
    base.SpecError: no way to find the audio, or a template naming a column
      the item table does not have.
  """
  roots = [r for r in (spec.get('audio_root', None),
                       spec.get('dataset_dir', None)) if r]
  pattern = spec.get('audio_pattern', None)
  if pattern:
    known = set(columns) | {'raw_id', 'item'}
    try:
      names = {f for _, f, _, _ in string.Formatter().parse(pattern) if f}
    except ValueError as e:
      raise base.SpecError(f'audio_pattern {pattern!r}: {e}') from None
    unknown = sorted(n for n in names if n not in known)
    if unknown:
      raise base.SpecError(
          f'audio_pattern {pattern!r} names {unknown}, which are neither '
          f'raw_id, item nor item-table columns (have {sorted(columns)}).')
    return AudioSource(pattern, None, roots)
  field = spec.get('audio_field', None)
  if field:
    if field not in columns:
      raise base.SpecError(
          f'audio_field {field!r} is not an item-table column (have '
          f'{sorted(columns)}).')
    return AudioSource(None, field, roots)
  for field in AUDIO_FIELDS:
    if field in columns:
      return AudioSource(None, field, roots)
  raise base.SpecError(
      'no audio source: the item table has none of the columns '
      f'{list(AUDIO_FIELDS)} (have {sorted(columns)}); set audio_field to '
      "the column of audio paths, or audio_pattern (e.g. '{raw_id}.wav') "
      'with audio_root the folder of the files.')


def _options(spec: ml_collections.ConfigDict) -> tuple[str, str]:
  """The spec's crop and modality, checked."""
  crop = spec.get('crop', None) or 'start'
  if crop not in CROPS:
    raise base.SpecError(f'crop must be one of {CROPS}, got {crop!r}.')
  modality = spec.get('modality', None) or 'audio'
  if modality not in MODALITIES:
    raise base.SpecError(
        f'modality must be one of {MODALITIES}, got {modality!r}.')
  fusion = spec.get('fusion', None) or 'concat'
  if fusion not in FUSIONS:
    raise base.SpecError(f'fusion must be one of {FUSIONS}, got {fusion!r}.')
  pooling = spec.get('pooling', None) or 'mean'
  if pooling != 'mean':
    raise base.SpecError(f"pooling must be 'mean', got {pooling!r}.")
  max_s = spec.get('max_duration_s', None)
  if max_s is not None and not float(max_s) > 0:
    raise base.SpecError(f'max_duration_s must be > 0 or None, got {max_s}.')
  return crop, modality


def check_spec(spec: ml_collections.ConfigDict,
               ds: dataset_lib.Dataset) -> None:
  """Spec mistakes, found before any extraction (no model is loaded)."""
  _, modality = _options(spec)
  if modality != 'text':
    audio_source(spec, list(ds.item_table))


# -------------------------------------------------------------- extractors


def receptive_field(conv_kernel: Sequence[int],
                    conv_stride: Sequence[int]) -> int:
  """The fewest samples a convolutional feature encoder turns into a frame."""
  need = 1
  for k, s in reversed(list(zip(conv_kernel, conv_stride))):
    need = (need - 1) * s + k
  return need


def num_frames(num_samples: int, conv_kernel: Sequence[int],
               conv_stride: Sequence[int]) -> int:
  """Frames a convolutional feature encoder makes of `num_samples` samples.

  The frames of a padded clip whose receptive field lies within its own
  samples: exactly the ones that padding does not touch.
  """
  n = num_samples
  for k, s in zip(conv_kernel, conv_stride):
    n = (n - k) // s + 1
  return max(n, 0)


class _AudioExtractor(base.Extractor):
  """What both kinds share: the spec, the model, reading the clips."""

  default_max_s: float | None = DEFAULT_ENCODER_MAX_S
  default_normalize = False

  def __init__(self, spec: ml_collections.ConfigDict,
               resolved: resolve.Resolved, columns: Sequence[str]):
    # soundfile is first used per item; a missing install should stop the
    # representation here, with the package's name, not fail every item.
    import soundfile  # noqa: F401  # pylint: disable=g-import-not-at-top,unused-import
    import torch  # pylint: disable=g-import-not-at-top

    self.name = spec.name
    try:
      self.crop, self.modality = _options(spec)
    except base.SpecError as e:
      raise base.SpecError(f'{self.name}: {e}') from None
    self.source = (audio_source(spec, columns) if self.modality != 'text'
                   else None)
    # Absent: the kind's default; None: whole clips (CLAP: its limit).
    max_s = spec.get('max_duration_s', self.default_max_s)
    self.max_s = None if max_s is None else float(max_s)
    normalize = spec.get('normalize', None)
    self.normalize = (self.default_normalize if normalize is None
                      else bool(normalize))
    self.resolved = resolved
    self.device = base.torch_device(spec.get('device', None))
    self.dtype = base.torch_dtype(spec.get('dtype', None), self.device)
    torch.use_deterministic_algorithms(True, warn_only=True)
    self.rate = 0
    self.min_samples = 1

  def _audio_manifest(self) -> dict[str, Any]:
    import soundfile  # pylint: disable=g-import-not-at-top

    m = dict(self.source.manifest())
    m.update(
        reader=f'soundfile {soundfile.__version__} (libsndfile '
               f'{soundfile.__libsndfile_version__})',
        mixdown='mean of channels', sampling_rate=self.rate,
        resample={'method': 'scipy.signal.resample_poly',
                  'window': list(RESAMPLE_WINDOW), 'target_rate': self.rate,
                  'source_rates': f'per item in {self.name}.audio.jsonl'},
        max_duration_s=self.max_s, crop=self.crop if self.max_s else None,
        crop_at='source rate, before resampling',
        min_samples=self.min_samples,
    )
    return m

  def load(self, batch: base.ItemBatch) -> tuple[list[Clip | None],
                                                 dict[int, str]]:
    """Each item's clip (None where it failed) and item -> reason."""
    paths, failed = self.source.paths(batch)
    clips: list[Clip | None] = []
    for item, path in zip(batch.items, paths):
      if int(item) in failed:
        clips.append(None)
        continue
      clip, reason = load_audio(path, self.rate, max_duration_s=self.max_s,
                                crop=self.crop, min_samples=self.min_samples)
      clips.append(clip)
      if reason:
        failed[int(item)] = reason
    return clips, failed

  def _finish(self, out) -> np.ndarray:
    import torch  # pylint: disable=g-import-not-at-top

    out = out.float()
    if self.normalize:
      out = torch.nn.functional.normalize(out, dim=-1)
    return out.cpu().numpy().astype(np.float32)

  def close(self) -> None:
    del self.model


class EncoderExtractor(_AudioExtractor):
  """Mean-pooled frames of a wav2vec 2.0 / HuBERT-style encoder."""

  def __init__(self, spec: ml_collections.ConfigDict,
               resolved: resolve.Resolved, columns: Sequence[str]):
    import transformers  # pylint: disable=g-import-not-at-top

    super().__init__(spec, resolved, columns)
    if self.modality != 'audio':
      raise base.SpecError(f'{self.name}: a frame encoder embeds audio only; '
                           f'modality={self.modality!r} needs a CLAP model.')
    self.layer = int(spec.get('layer', -1))
    self.model = transformers.AutoModel.from_pretrained(
        resolved.path, local_files_only=True, dtype=self.dtype)
    self.model.to(self.device).eval()
    cfg = self.model.config
    self.model_type = getattr(cfg, 'model_type', '')
    self.conv_kernel = list(getattr(cfg, 'conv_kernel', None) or [])
    self.conv_stride = list(getattr(cfg, 'conv_stride', None) or [])
    if not self.conv_kernel or len(self.conv_kernel) != len(self.conv_stride):
      raise ValueError(
          f'{self.name}: {resolved.model_id} ({self.model_type}) is not a '
          'wav2vec2-style encoder (no conv_kernel/conv_stride in its config);'
          ' the audio extractor takes those and CLAP models.')
    if getattr(cfg, 'add_adapter', False):
      raise ValueError(f'{self.name}: models with an adapter (add_adapter) '
                       'change the frame count; not supported.')
    num_layers = int(cfg.num_hidden_layers)
    if not -1 <= self.layer <= num_layers:
      raise ValueError(f'{self.name}: layer must be -1 or in 0..{num_layers},'
                       f' got {self.layer}.')
    self.feature_extractor = transformers.AutoFeatureExtractor.from_pretrained(
        resolved.path, local_files_only=True)
    self.rate = int(self.feature_extractor.sampling_rate)
    self.padded = bool(getattr(self.feature_extractor,
                               'return_attention_mask', False))
    self.min_samples = receptive_field(self.conv_kernel, self.conv_stride)

  def manifest(self) -> dict[str, Any]:
    fe = self.feature_extractor
    m = self.resolved.manifest()
    m.update(
        extractor='audio.encoder', input='audio',
        architecture=self.model_type, layer=self.layer,
        pooling='mean over valid frames', normalize=self.normalize,
        compute_dtype=str(self.dtype).replace('torch.', ''),
        feature_extractor=type(fe).__name__,
        do_normalize=bool(getattr(fe, 'do_normalize', False)),
        batching=('padded, with attention mask' if self.padded else
                  'one clip per forward pass (the model takes no mask)'),
        versions=base.versions('torch', 'transformers', 'soundfile', 'scipy'),
    )
    m.update(self._audio_manifest())
    return m

  def forward(self, waves: list[np.ndarray]) -> np.ndarray:
    """float32 [len(waves), D] for mono clips at `self.rate`."""
    if self.padded:
      return self._forward(waves)
    return np.concatenate([self._forward([w]) for w in waves])

  def _forward(self, waves: list[np.ndarray]) -> np.ndarray:
    import torch  # pylint: disable=g-import-not-at-top

    inputs = self.feature_extractor(
        waves, sampling_rate=self.rate, padding=True,
        return_attention_mask=self.padded, return_tensors='pt')
    values = inputs['input_values'].to(self.device, self.dtype)  # [b, T]
    mask = inputs.get('attention_mask', None)
    if mask is not None:
      mask = mask.to(self.device)
    with torch.inference_mode():
      out = self.model(values, attention_mask=mask,
                       output_hidden_states=self.layer != -1)
    hidden = (out.last_hidden_state if self.layer == -1
              else out.hidden_states[self.layer]).float()  # [b, F, H]
    lengths = torch.tensor(
        [num_frames(len(w), self.conv_kernel, self.conv_stride)
         for w in waves], device=hidden.device)  # [b]
    # The longest clip is unpadded: its frame count must be the model's.
    assert int(lengths.max()) == hidden.shape[1], (lengths, hidden.shape)
    valid = (torch.arange(hidden.shape[1], device=hidden.device)[None, :]
             < lengths[:, None]).unsqueeze(-1).float()  # [b, F, 1]
    pooled = (hidden * valid).sum(1) / lengths[:, None].float()
    return self._finish(pooled)

  def extract(self, batch: base.ItemBatch) -> base.BatchResult:
    clips, failed = self.load(batch)
    keep = [k for k, c in enumerate(clips) if c is not None]
    if not keep:
      return base.scatter_result(batch, keep, None, failed)
    enc = self.forward([clips[k].waveform for k in keep])
    info = [c.info() if c is not None else None for c in clips]
    return base.scatter_result(batch, keep, enc, failed, {'audio': info})


class ClapExtractor(_AudioExtractor):
  """Audio and/or text embeddings of a CLAP audio-text dual encoder."""

  default_max_s = None  # The feature extractor's max_length_s.
  default_normalize = True

  def __init__(self, spec: ml_collections.ConfigDict,
               resolved: resolve.Resolved, columns: Sequence[str]):
    import transformers  # pylint: disable=g-import-not-at-top

    super().__init__(spec, resolved, columns)
    self.fusion = spec.get('fusion', None) or 'concat'
    self.fields = list(spec.get('fields', None) or ('title', 'genres'))
    self.template = spec.get('template', None)
    self.model = transformers.AutoModel.from_pretrained(
        resolved.path, local_files_only=True, dtype=self.dtype)
    self.model.to(self.device).eval()
    self.model_type = getattr(self.model.config, 'model_type', '')
    self.feature_extractor = None
    self.tokenizer = None
    if self.modality in ('audio', 'both'):
      fe = transformers.AutoFeatureExtractor.from_pretrained(
          resolved.path, local_files_only=True)
      self.feature_extractor = fe
      self.rate = int(fe.sampling_rate)
      limit = fe.nb_max_samples / fe.sampling_rate
      if self.max_s is None:
        self.max_s = float(limit)
      if self.max_s > limit:
        raise ValueError(
            f'{self.name}: max_duration_s={self.max_s} is longer than the '
            f"model's {limit:g} s; its feature extractor would crop at "
            'random. Use a value <= that.')
    if self.modality in ('text', 'both'):
      self.tokenizer = transformers.AutoTokenizer.from_pretrained(
          resolved.path, local_files_only=True)
      max_length = spec.get('max_length', None)
      if max_length is None:
        text_cfg = self.model.config.text_config
        # RoBERTa positions start after the padding index.
        positions = int(text_cfg.max_position_embeddings) - (
            int(text_cfg.pad_token_id or 0) + 1)
        max_length = min(int(self.tokenizer.model_max_length), 512, positions)
      self.max_length = int(max_length)

  def manifest(self) -> dict[str, Any]:
    m = self.resolved.manifest()
    m.update(
        extractor=f'audio.clap.{self.modality}', architecture=self.model_type,
        input=self.modality, normalize=self.normalize,
        layer='projection (audio_projection / text_projection)',
        pooling='model default',
        compute_dtype=str(self.dtype).replace('torch.', ''),
        versions=base.versions('torch', 'transformers', 'soundfile', 'scipy'),
    )
    if self.modality == 'both':
      m['fusion'] = self.fusion
    if self.tokenizer is not None:
      m.update(fields=self.fields, template=self.template,
               max_length=self.max_length)
    if self.feature_extractor is not None:
      fe = self.feature_extractor
      m.update(self._audio_manifest())
      m.update(feature_extractor=type(fe).__name__,
               truncation=getattr(fe, 'truncation', None),
               padding=getattr(fe, 'padding', None),
               is_longer='False for every clip (crop is deterministic)')
    return m

  def audio_features(self, waves: list[np.ndarray]) -> np.ndarray:
    import torch  # pylint: disable=g-import-not-at-top

    inputs = self.feature_extractor(waves, sampling_rate=self.rate,
                                    return_tensors='pt')
    feats = inputs['input_features'].to(self.device, self.dtype)
    is_longer = torch.zeros((len(waves), 1), dtype=torch.bool,
                            device=self.device)
    with torch.inference_mode():
      pooled = self.model.audio_model(input_features=feats,
                                      is_longer=is_longer).pooler_output
      out = self.model.audio_projection(pooled)
    return self._finish(out)

  def text_features(self, texts: list[str]) -> np.ndarray:
    import torch  # pylint: disable=g-import-not-at-top

    enc = self.tokenizer(texts, padding=True, truncation=True,
                         max_length=self.max_length, return_tensors='pt')
    with torch.inference_mode():
      pooled = self.model.text_model(
          input_ids=enc['input_ids'].to(self.device),
          attention_mask=enc['attention_mask'].to(self.device)).pooler_output
      out = self.model.text_projection(pooled)
    return self._finish(out)

  def extract(self, batch: base.ItemBatch) -> base.BatchResult:
    failed: dict[int, str] = {}
    clips, texts = None, None
    if self.feature_extractor is not None:
      clips, failed = self.load(batch)
    if self.tokenizer is not None:
      texts, failed = base.batch_texts(batch, self.fields, self.template,
                                       failed)
    keep = [k for k, it in enumerate(batch.items) if int(it) not in failed]
    if not keep:
      return base.scatter_result(batch, keep, None, failed)
    parts = []
    if clips is not None:
      parts.append(self.audio_features([clips[k].waveform for k in keep]))
    if texts is not None:
      parts.append(self.text_features([texts[k] for k in keep]))
    enc = parts[0] if len(parts) == 1 else base.fuse(
        self.fusion, *parts, self.name, ('audio', 'text'))
    extra = {}
    if clips is not None:
      extra['audio'] = [c.info() if c is not None else None for c in clips]
    return base.scatter_result(batch, keep, enc, failed, extra)


def model_type(path: str) -> str:
  """The `model_type` of a model folder's config.json ('' if none)."""
  cfg = os.path.join(path, 'config.json')
  if not os.path.exists(cfg):
    return ''
  with open(cfg, encoding='utf-8') as f:
    return str(json.load(f).get('model_type', ''))


def make_extractor(
    spec: ml_collections.ConfigDict, ds: dataset_lib.Dataset
) -> base.Extractor:
  if not spec.get('model', None):
    raise ValueError(f'{spec.name}: the audio extractor needs `model`.')
  resolved = resolve.resolve(spec.model, spec.get('revision', None))
  columns = list(ds.item_table)
  if model_type(resolved.path) == 'clap':
    return ClapExtractor(spec, resolved, columns)
  return EncoderExtractor(spec, resolved, columns)
