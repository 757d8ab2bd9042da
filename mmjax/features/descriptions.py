r"""Representations from generated text: one-hot keywords and text embeddings.

The text comes either from an external CSV (`asin,result`, as in the
published LVLM outputs of Pomo et al., CIKM 2025; `asin` is the raw item id,
other column names are set with csv.key and csv.column, and a header that
lacks them is an error naming the pair the file suggests; lines that repeat
the header are counted as `source_counts.repeated_headers`, not read as rows)
or from an LVLM run of this package: `texts_from: <lvlm representation name>`
reads `<dataset_dir>/features/<name>.generated_text.jsonl` (written by
`lvlm.py`; in the same config it is extracted first), and
`texts_jsonl` takes such a file by path. Either is mapped onto the dataset's
item map by raw id; items the source lacks fail with that reason (masked).
The manifest records the source and its sha256.

  method='keywords': parse each answer into its prompt's slots (`slots.py`),
    normalise, merge near-duplicates with MiniLM embeddings and one-hot
    encode the top 50 values per slot plus 'Other' (`keywords.py`). The
    vocabulary is fitted on every item of the dataset the source covers, so
    the matrix does not depend on sharding. Unparsed answers (refusals,
    degenerate text, no slots) fail with their reason; partial answers keep
    the slots they have. The manifest lists the vocabulary per slot and the
    parse counts, with the answers completed by the parser's position
    repair ('repaired') and why others were not ('unrepaired_reasons').
  method='text': embed the whole generated text with a text encoder
    (`text.py`, all-MiniLM-L6-v2 by default).

Spec keys: method; csv {path, key='asin', column='result', field='text'},
texts_from (an LVLM representation of this dataset) or texts_jsonl (path to
a `.generated_text.jsonl`); prompt {domain} or
prompt_slots (slot names, for 'keywords'); min_slots (3); top_k (50);
threshold (0.45); embed_model (the merging encoder); model (the 'text'
encoder); plus `text.py`'s keys for 'text'.
"""

from __future__ import annotations

import json
import os
from typing import Any

import ml_collections
import numpy as np

from mmjax.data import dataset as dataset_lib
from mmjax.data import store
from mmjax.features import base
from mmjax.features import keywords
from mmjax.features import prompts
from mmjax.features import slots as slots_lib

METHODS = ('keywords', 'text')
TEXT_FIELD = 'text'


def read_generated_jsonl(
    path: str, item_ids: np.ndarray, key: str = base.GENERATED_TEXT
) -> tuple[list[str | None], dict[int, str]]:
  """Texts of an LVLM run (`<name>.generated_text.jsonl`) by raw item id.

  Returns:
    (texts, problems): texts[i] per internal item (None where absent or
    empty) and the reason for each None.

  Raises:
    DataError: missing file or a line that is not a JSON object with
      `raw_id` and `key`.
  """
  if not os.path.exists(path):
    raise dataset_lib.DataError(f'{path}: no such generated-text file.')
  index = {str(r): i for i, r in enumerate(np.asarray(item_ids).astype(str))}
  texts: list[str | None] = [None] * len(index)
  with open(path, encoding='utf-8') as f:
    for line_no, line in enumerate(f, start=1):
      if not line.strip():
        continue
      try:
        row = json.loads(line)
        rid, text = str(row['raw_id']), row[key]
      except (ValueError, KeyError, TypeError) as e:
        raise dataset_lib.DataError(
            f'{path}:{line_no}: expected a JSON object with raw_id and {key} '
            f'({type(e).__name__}: {e}).') from e
      if rid in index:
        texts[index[rid]] = text
  problems = {}
  name = os.path.basename(path)
  for i, t in enumerate(texts):
    if t is None:
      problems[i] = f'no generated text in {name}'
    elif base.text_problem(t):
      problems[i] = f'{base.text_problem(t)} in {name}'
      texts[i] = None
  return texts, problems


def _source_kind(spec: ml_collections.ConfigDict) -> str:
  """Which text source a spec names: 'csv.path', 'texts_from', 'texts_jsonl'.

  Raises:
    ValueError: none or several of them.
  """
  csv_spec = spec.get('csv', None)
  given = [k for k, v in (('csv.path', csv_spec and csv_spec.get('path', None)),
                          ('texts_from', spec.get('texts_from', None)),
                          ('texts_jsonl', spec.get('texts_jsonl', None)))
           if v]
  if len(given) != 1:
    raise ValueError(
        f'{spec.name}: descriptions need exactly one text source: `csv.path` '
        '(asin,result), `texts_from` (an LVLM representation of this '
        'dataset) or `texts_jsonl` (an LVLM run\'s generated text); got '
        f'{given or "none"}.')
  return given[0]


def source_texts(
    spec: ml_collections.ConfigDict, ds: dataset_lib.Dataset
) -> tuple[list[str | None], dict[int, str], dict[str, Any]]:
  """Every item's generated text, the items that have none, source info."""
  kind = _source_kind(spec)
  if kind == 'csv.path':
    joined = base.spec_csv_column(spec, ds.item_ids)
    return joined.texts, joined.problems, {
        'source': joined.info['csv'],
        'source_sha256': joined.info['csv_sha256'],
        'source_counts': joined.info['csv_counts']}
  info = {}
  if kind == 'texts_from':
    path = generated_text_path(spec)
    info['texts_from'] = spec.texts_from
  else:
    path = spec.texts_jsonl
  texts, problems = read_generated_jsonl(path, ds.item_ids)
  info.update(source=os.path.abspath(path),
              source_sha256=base.file_sha256(path))
  return texts, problems, info


def generated_text_path(spec: ml_collections.ConfigDict) -> str:
  """The `.generated_text.jsonl` of the representation `spec.texts_from`.

  Raises:
    DataError: the spec has no dataset_dir (it is set by the extraction CLI),
      or that representation has stored no generated text yet.
  """
  name = spec.texts_from
  dataset_dir = spec.get('dataset_dir', None)
  if not dataset_dir:
    raise ValueError(f'{spec.name}: texts_from={name!r} needs the spec\'s '
                     'dataset_dir (the extraction CLI sets it).')
  path = os.path.join(dataset_dir, store.FEATURES_DIR,
                      f'{name}.{base.GENERATED_TEXT}.jsonl')
  if not os.path.exists(path):
    raise dataset_lib.DataError(
        f'{path}: no generated text of representation {name!r}. Extract '
        f'{name!r} first (an LVLM representation: put it in the same config, '
        f'or run it with --config.only={name}).')
  return path


def slot_names(spec: ml_collections.ConfigDict) -> tuple[str, ...]:
  names = spec.get('prompt_slots', None)
  if names:
    return tuple(names)
  p = spec.get('prompt', None) or {}
  return prompts.slots_of(p.get('domain', 'movies'))


def _domain_hint(spec: ml_collections.ConfigDict,
                 texts: list[str | None]) -> str:
  """' Its answers parse with prompt.domain=...' when another domain fits.

  A FITB file of another prompt family (a recipe file read with the default
  movie slots) is the common cause of 'no slots'; the first
  NO_SLOTS_SAMPLE answers are parsed with every domain's slots and the one
  that parses most of them (at least half) is named.
  """
  sample = [t for t in texts if t is not None][:NO_SLOTS_SAMPLE]
  if not sample:
    return ''
  min_slots = int(spec.get('min_slots', 3))
  current = tuple(slot_names(spec))
  best, best_count = None, 0
  for domain in prompts.DOMAINS:
    names = prompts.slots_of(domain)
    if names == current:
      continue
    parser = slots_lib.SlotParser(names, min_slots)
    count = sum(parser.parse(t).parsed for t in sample)
    if count > best_count:
      best, best_count = domain, count
  if best is None or 2 * best_count < len(sample):
    return ''
  return (f' Its answers parse with prompt.domain={best!r} ({best_count} of '
          f'the first {len(sample)}; slots {list(prompts.slots_of(best))}).')


def _no_slots_message(spec: ml_collections.ConfigDict, source: str,
                      num_read: int, example: str | None,
                      reasons: dict[str, int] | None = None,
                      hint: str = '') -> str:
  p = spec.get('prompt', None) or {}
  where = (f'the prompt_slots {list(slot_names(spec))}'
           if spec.get('prompt_slots', None) else
           f'the slots {list(slot_names(spec))} of the '
           f'{p.get("domain", "movies")!r} keyword prompt')
  why = f' (unparsed: {reasons})' if reasons else ''
  shown = ''
  if example:
    flat = ' '.join(example.split())
    if len(flat) > 80:
      flat = flat[:77] + '...'
    shown = f' The first reads {flat!r}.'
  return (
      f'{spec.name}: {source}: this file has no slots: none of the '
      f'{num_read} answers checked names {where}{why}.{shown}{hint} A '
      'free-text file (descriptive or task-misaligned output) has no slots: '
      "embed it with method='text' instead of 'keywords'. If it is a "
      'fill-in-the-blank file whose prompt used other slot names, set '
      'prompt_slots (or prompt.domain) to them.')


# How many answers `check_spec` parses to decide that a file has no slots.
# On the MovieLens outputs every one of the first 100 answers of each keyword
# file parses bar one, and none of the descriptive or misaligned ones does;
# parsing long free text is slow (3 s for a whole descriptive file), so the
# check before any work reads a sample and the extractor checks the rest.
NO_SLOTS_SAMPLE = 100


def check_spec(spec: ml_collections.ConfigDict,
               ds: dataset_lib.Dataset) -> None:
  """Config mistakes found before any work (see `base.check_spec`).

  A keyword spec on a file whose first answers name none of the prompt's
  slots (a descriptive or misaligned file) would parse nothing and fail
  every item after the representations before it were extracted; it is
  refused here instead. A `texts_from` source is checked when the extractor
  reads it (it may be extracted earlier in the same run).

  Raises:
    base.SpecError: an unknown method, or a keyword file without slots.
    ValueError: not exactly one text source.
    DataError: the text file is missing, or (for keywords) malformed.
  """
  method = spec.get('method', None) or 'keywords'
  if method not in METHODS:
    raise base.SpecError(f'{spec.name}: method must be one of {METHODS}, '
                         f'got {method!r}.')
  kind = _source_kind(spec)
  if kind == 'texts_from':
    return
  source = spec.csv.path if kind == 'csv.path' else spec.texts_jsonl
  if not os.path.isfile(source):
    raise dataset_lib.DataError(f'{spec.name}: {source}: no such file.')
  if method != 'keywords':
    return
  if kind == 'csv.path':
    texts = base.spec_csv_column(spec, ds.item_ids).texts
  else:
    texts, _ = read_generated_jsonl(source, ds.item_ids)
  sample = [t for t in texts if t is not None][:NO_SLOTS_SAMPLE]
  parser = slots_lib.SlotParser(slot_names(spec),
                                int(spec.get('min_slots', 3)))
  if sample and not any(parser.parse(t).parsed for t in sample):
    raise base.SpecError(_no_slots_message(
        spec, source, len(sample), sample[0],
        hint=_domain_hint(spec, sample)))


class KeywordExtractor(base.Extractor):
  """One-hot keyword matrix, fitted on the whole dataset at construction."""

  def __init__(self, spec: ml_collections.ConfigDict, ds: dataset_lib.Dataset,
               embed: keywords.Embedder | None = None):
    self.name = spec.name
    self.slots = slot_names(spec)
    texts, problems, self.source_info = source_texts(spec, ds)
    parser = slots_lib.SlotParser(self.slots, int(spec.get('min_slots', 3)))
    answers: list[dict[str, str] | None] = [None] * len(texts)
    self.failed: dict[int, str] = dict(problems)
    counts = {'ok': 0, 'partial': 0, 'unparsed': 0}
    reasons: dict[str, int] = {}
    rejected: dict[str, int] = {}
    repaired = 0
    unrepaired: dict[str, int] = {}
    for i, t in enumerate(texts):
      if t is None:
        continue
      p = parser.parse(t)
      counts[p.status] += 1
      repaired += bool(p.repaired)
      if p.unrepaired:
        unrepaired[p.unrepaired] = unrepaired.get(p.unrepaired, 0) + 1
      for r in p.rejected.values():
        rejected[r] = rejected.get(r, 0) + 1
      if p.parsed:
        answers[i] = p.slots
      else:
        reasons[p.reason] = reasons.get(p.reason, 0) + 1
        self.failed[i] = f'unparsed LVLM answer: {p.reason}'
    if counts['unparsed'] and not counts['ok'] + counts['partial']:
      # Every answer unparsed: a free-text file (`check_spec` samples the
      # start of a file; a texts_from source is first seen here).
      first = next(t for t in texts if t is not None)
      raise base.SpecError(_no_slots_message(
          spec, self.source_info.get('source', '?'), counts['unparsed'],
          first, reasons, hint=_domain_hint(spec, texts)))
    # Slot values not kept (degenerate, or prose too long for a keyword).
    self.parse_counts = dict(counts, unparsed_reasons=reasons,
                             rejected_values=rejected, repaired=repaired,
                             unrepaired_reasons=unrepaired)
    # Kept as one value each (see keywords.py); counted so a report can say
    # how often a model answered a blank with several keywords.
    self.multi_valued = {
        s: sum(1 for a in answers if a and a.get(s) and
               keywords.is_multi_valued(keywords.normalize(a[s])))
        for s in self.slots}
    self.top_k = int(spec.get('top_k', keywords.DEFAULT_TOP_K))
    self.threshold = float(spec.get('threshold', keywords.DEFAULT_THRESHOLD))
    self.embed_manifest: dict[str, Any] = {}
    if embed is None and spec.get('merge', True):
      embed, self.embed_manifest = keywords.sentence_embedder(
          spec.get('embed_model', None) or
          'sentence-transformers/all-MiniLM-L6-v2',
          str(base.torch_device(spec.get('device', None) or 'cpu')))
    self.vocab = keywords.build_vocabulary(
        answers, self.slots, embed, top_k=self.top_k,
        threshold=self.threshold)
    self.matrix = keywords.one_hot(answers, self.vocab)  # [I, sum V]

  def manifest(self) -> dict[str, Any]:
    m = {
        'extractor': 'descriptions.keywords', 'input': 'generated text',
        'slots': list(self.slots), 'top_k': self.top_k,
        'cluster_threshold': self.threshold, 'cluster_linkage': 'average',
        'cluster_metric': 'cosine', 'lemmatizer': 'simplemma (en)',
        'parse_counts': self.parse_counts, 'vocabulary': self.vocab.manifest(),
        'multi_valued': self.multi_valued,
        'multi_value_policy': 'kept as one value per slot (keywords.py)',
        'merge_model': self.embed_manifest,
        'versions': base.versions('simplemma', 'scipy',
                                  'sentence-transformers'),
    }
    m.update(self.source_info)
    return m

  def extract(self, batch: base.ItemBatch) -> base.BatchResult:
    values = self.matrix[np.asarray(batch.items, np.int64)].copy()
    failed = {int(i): self.failed[int(i)] for i in batch.items
              if int(i) in self.failed}
    return base.BatchResult(base.zero_failed(values, batch.items, failed),
                            failed)


class DescriptionTextExtractor(base.Extractor):
  """Whole-text embeddings of generated text (wraps `text.TextExtractor`)."""

  def __init__(self, spec: ml_collections.ConfigDict, ds: dataset_lib.Dataset):
    from mmjax.features import text  # pylint: disable=g-import-not-at-top

    self.name = spec.name
    self.texts, self.failed, self.source_info = source_texts(spec, ds)
    d = spec.to_dict()
    for k in ('csv', 'texts_jsonl', 'texts_from'):
      d.pop(k, None)
    d.update(fields=[TEXT_FIELD], template=None)
    inner = ml_collections.ConfigDict(d)
    self.encoder = text.TextExtractor(inner)

  def manifest(self) -> dict[str, Any]:
    m = dict(self.encoder.manifest())
    m.update(self.source_info)
    m['extractor'] = 'descriptions.text'
    m['input'] = 'generated text'
    return m

  def extract(self, batch: base.ItemBatch) -> base.BatchResult:
    rows = [{TEXT_FIELD: self.texts[int(i)] or ''} for i in batch.items]
    inner = base.ItemBatch(batch.items, batch.raw_ids, rows,
                           batch.image_paths)
    result = self.encoder.extract(inner)
    for i in batch.items:
      if int(i) in self.failed:
        result.failed[int(i)] = self.failed[int(i)]
    if result.values.shape[1] == 0:
      return result
    base.zero_failed(result.values, batch.items, result.failed)
    return result

  def close(self) -> None:
    self.encoder.close()


def make_extractor(spec: ml_collections.ConfigDict,
                   ds: dataset_lib.Dataset) -> base.Extractor:
  method = spec.get('method', None) or 'keywords'
  if method == 'keywords':
    return KeywordExtractor(spec, ds)
  if method == 'text':
    return DescriptionTextExtractor(spec, ds)
  raise ValueError(f'{spec.name}: method must be one of {METHODS}, got '
                   f'{method!r}.')
