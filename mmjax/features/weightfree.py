"""Weight-free, torch-free representations: the quick start's default.

They need no model download and run anywhere, so the whole pipeline works
offline; reports name them as weight-free baselines, not learned features.

  method='color_histogram': joint RGB histogram with `bins` levels per
    channel (bins**3 values, summing to 1), computed on the image downscaled
    to at most `hist_side` pixels per side (bilinear), so the result does not
    depend on the stored resolution more than necessary.
  method='pixels': the image resized (squashed, bilinear) to `size` x `size`,
    RGB scaled to [0, 1], flattened row-major: size*size*3 values.
  method='tfidf': TF-IDF of the item text (`fields`, joined as in
    `base.item_text`), vocabulary fitted on every item of the dataset: the
    `max_features` terms of highest document frequency (ties by term) among
    those in at least `min_df` items; idf = ln((1 + N) / (1 + df)) + 1 (the
    smoothed form); tf = raw count (or 1 + ln(count) with `sublinear_tf`);
    rows L2-normalised. An item with empty text, or none of whose terms is in
    the vocabulary, fails (a zero row would look like a real, empty item).
"""

from __future__ import annotations

import collections
import hashlib
import re
from typing import Any

import ml_collections
import numpy as np
from PIL import Image

from mmjax.data import dataset as dataset_lib
from mmjax.features import base
from mmjax.features import images

_TOKEN = re.compile(r'\w+', re.UNICODE)


def tokenize(text: str, min_len: int = 2) -> list[str]:
  """Lower-cased word tokens (unicode \\w+) of at least `min_len` chars."""
  return [t for t in _TOKEN.findall(text.lower()) if len(t) >= min_len]


def color_histogram(image: Image.Image, bins: int, side: int) -> np.ndarray:
  """float32 [bins**3]: joint RGB histogram of an RGB image, sum 1."""
  im = image
  if max(im.size) > side:
    im = im.copy()
    im.thumbnail((side, side), Image.Resampling.BILINEAR)
  a = np.asarray(im, dtype=np.uint8).reshape(-1, 3).astype(np.int64)
  q = (a * bins) // 256  # Level of each channel, in [0, bins).
  idx = (q[:, 0] * bins + q[:, 1]) * bins + q[:, 2]
  hist = np.bincount(idx, minlength=bins**3).astype(np.float64)
  return (hist / hist.sum()).astype(np.float32)


def pixels(image: Image.Image, size: int) -> np.ndarray:
  """float32 [size*size*3]: the image squashed to size x size, in [0, 1]."""
  im = image.resize((size, size), Image.Resampling.BILINEAR)
  return (np.asarray(im, dtype=np.float32) / 255.0).reshape(-1)


class ImageExtractor(base.Extractor):
  """Colour histograms or downsampled pixels."""

  def __init__(self, spec: ml_collections.ConfigDict):
    self.name = spec.name
    self.method = spec.method
    self.bins = int(spec.get('bins', 8))
    self.hist_side = int(spec.get('hist_side', 256))
    self.size = int(spec.get('size', 16))
    if self.method == 'color_histogram' and not 1 <= self.bins <= 64:
      raise ValueError(
          f'{self.name}: bins must be in [1, 64], got {self.bins}.')
    if self.method == 'pixels' and self.size < 1:
      raise ValueError(f'{self.name}: size must be >= 1, got {self.size}.')
    self.dim = self.bins**3 if self.method == 'color_histogram' else (
        self.size * self.size * 3)

  def manifest(self) -> dict[str, Any]:
    m = {'extractor': f'weightfree.{self.method}', 'weight_free': True,
         'input': 'image', 'versions': base.versions('pillow')}
    if self.method == 'color_histogram':
      m.update(bins_per_channel=self.bins, color_space='RGB',
               image_size=f'<= {self.hist_side} px per side (bilinear)',
               normalization='histogram sums to 1')
    else:
      m.update(image_size=[self.size, self.size], resample='bilinear',
               normalization='RGB / 255')
    return m

  def extract(self, batch: base.ItemBatch) -> base.BatchResult:
    ims, failed = images.load_batch(batch.image_paths, batch.items)
    out = np.zeros((len(batch), self.dim), np.float32)
    for k, im in enumerate(ims):
      if im is None:
        continue
      if self.method == 'color_histogram':
        out[k] = color_histogram(im, self.bins, self.hist_side)
      else:
        out[k] = pixels(im, self.size)
    return base.BatchResult(out, failed)


class TfidfExtractor(base.Extractor):
  """TF-IDF over item text, vocabulary fitted on all the dataset's items."""

  def __init__(self, spec: ml_collections.ConfigDict, ds: dataset_lib.Dataset):
    self.name = spec.name
    self.fields = list(spec.get('fields', None) or ('title',))
    self.template = spec.get('template', None)
    self.max_features = int(spec.get('max_features', 4096))
    self.min_df = int(spec.get('min_df', 1))
    self.sublinear = bool(spec.get('sublinear_tf', False))
    # The vocabulary needs every item's text, so the CSV column the CLI
    # joins per batch is joined here for all items too.
    column = base.spec_csv_column(spec, ds.item_ids)
    joined = {column.field: column.texts} if column else {}
    df = collections.Counter()
    for i in range(ds.num_items):
      row = {c: v[i] for c, v in ds.item_table.items()}
      row.update({c: v[i] for c, v in joined.items()})
      text = self._text(row)
      if base.text_problem(text) is None:
        df.update(set(tokenize(text)))
    self.num_docs = ds.num_items
    terms = sorted((t for t, c in df.items() if c >= self.min_df),
                   key=lambda t: (-df[t], t))[:self.max_features]
    if not terms:
      raise ValueError(
          f'{self.name}: empty TF-IDF vocabulary from fields {self.fields} '
          f'(min_df={self.min_df}); do those item-table columns hold text?'
      )
    terms.sort()
    self.vocab = {t: j for j, t in enumerate(terms)}
    dfs = np.array([df[t] for t in terms], np.float64)
    self.idf = np.log((1.0 + self.num_docs) / (1.0 + dfs)) + 1.0

  def _text(self, row: dict[str, Any]) -> str:
    return base.item_text(row, self.fields, template=self.template)

  def manifest(self) -> dict[str, Any]:
    vocab_text = '\n'.join(self.vocab)
    return {
        'extractor': 'weightfree.tfidf', 'weight_free': True, 'input': 'text',
        'fields': self.fields, 'template': self.template,
        'max_features': self.max_features, 'min_df': self.min_df,
        'sublinear_tf': self.sublinear, 'vocab_size': len(self.vocab),
        'vocab_sha256': hashlib.sha256(vocab_text.encode()).hexdigest(),
        'idf': 'ln((1 + N) / (1 + df)) + 1', 'normalization': 'l2',
        'tokenizer': 'lowercase unicode \\w+, length >= 2',
        'versions': base.versions(),
    }

  def extract(self, batch: base.ItemBatch) -> base.BatchResult:
    out = np.zeros((len(batch), len(self.vocab)), np.float32)
    failed = {}
    for k, (item, row) in enumerate(zip(batch.items, batch.rows)):
      text = self._text(row)
      problem = base.text_problem(text)
      if problem:
        failed[int(item)] = f'{problem} in fields {self.fields}'
        continue
      counts = collections.Counter(
          t for t in tokenize(text) if t in self.vocab)
      if not counts:
        failed[int(item)] = 'no term of the TF-IDF vocabulary'
        continue
      idx = np.array([self.vocab[t] for t in counts])
      tf = np.array(list(counts.values()), np.float64)
      if self.sublinear:
        tf = 1.0 + np.log(tf)
      v = tf * self.idf[idx]
      out[k, idx] = v / np.linalg.norm(v)
    return base.BatchResult(out, failed)


METHODS = ('color_histogram', 'pixels', 'tfidf')


def make_extractor(
    spec: ml_collections.ConfigDict, ds: dataset_lib.Dataset
) -> base.Extractor:
  """spec.method: 'color_histogram' | 'pixels' | 'tfidf' (module docstring)."""
  method = spec.get('method', None)
  if method not in METHODS:
    raise ValueError(
        f'{spec.get("name")}: weightfree method must be one of {METHODS}, '
        f'got {method!r}.'
    )
  if method == 'tfidf':
    return TfidfExtractor(spec, ds)
  return ImageExtractor(spec)
