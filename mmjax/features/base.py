"""The extractor interface every representation builder implements.

An extractor turns a batch of items into a float32 [b, D] matrix. The CLI
(`mmjax/features/extract.py`) feeds it fixed shards of the dataset's items,
writes partial results, and joins them into the feature store
(`mmjax/data/store.py`). An extractor module in `mmjax.features` exposes
`make_extractor(spec, ds) -> Extractor`; `spec.extractor` names the module, so
`make_extractor` below finds it with importlib and new extractors need no
registry edit.

Failure policy (the same for every extractor):
  * Per-item problems are recorded, never guessed and never fatal: a missing,
    corrupt or truncated image, an image that exceeds the decompression-bomb
    limit, an empty text, a text that is not valid UTF-8, an item absent from
    an external text file, an LVLM answer with no parsable slot. The extractor
    puts `item id -> reason` into `BatchResult.failed` and leaves that row
    zero; the store keeps the reasons in the manifest and recommenders see the
    item through `Feature.mask == False`. A zero row is never written without
    a recorded reason.
  * Recoverable image formats are converted, not failed: grayscale, CMYK,
    RGBA/LA (composited on white), palette (P) and 16-bit images become RGB;
    images larger than `images.MAX_SIDE` on a side are downscaled on load;
    tiny images (even 1x1) are resized by the model's processor.
  * Spec mistakes are found before any work: the CLI calls `check_spec` for
    every representation of a run first (an unknown extractor; a module's
    own `check_spec`, e.g. keyword one-hots asked of a file with no slots).
  * Problems of one representation stop that representation with a clear
    error, never the others: a model that cannot be found (see
    `resolve.py`), every item failed, a partial directory written for
    another configuration or item map, a batch whose shape the extractor did
    not promise. The CLI lists them at the end and exits non-zero. Finished
    shards stay on disk and a rerun resumes after them. A dataset with
    duplicate item ids stops the whole run.

Torch is imported lazily, inside the neural extractors only: this module, the
CLI and the weight-free extractors run without torch installed.
"""

from __future__ import annotations

import abc
import csv
import dataclasses
import hashlib
import importlib
import io
import json
import os
from typing import Any, Sequence

from absl import logging
import ml_collections
import numpy as np

from mmjax.data import dataset as dataset_lib

# Item-table columns tried, in order, when a spec names no `image_field`.
IMAGE_FIELDS = ('image', 'image_path', 'imUrl', 'image_url')
# Item-table columns whose '|' separates list entries (MovieLens, RecBole).
PIPE_FIELDS = ('genres', 'genre', 'categories', 'category', 'tags')
# The `BatchResult.extra` key of an LVLM's generated text; the store keeps it
# as `<name>.generated_text.jsonl`, which `descriptions.py` reads.
GENERATED_TEXT = 'generated_text'


@dataclasses.dataclass
class ItemBatch:
  """A batch of items handed to `Extractor.extract`.

  Attributes:
    items: int32 [b], internal item ids (rows of the store).
    raw_ids: str [b], the dataset's raw item ids.
    rows: b dicts, the item-table row of each item (column -> value), plus
      any columns joined from external files (see `join_csv_column`).
    image_paths: b absolute image paths, or None where the item has none
      (or its image is a URL: extraction never downloads).
  """

  items: np.ndarray
  raw_ids: np.ndarray
  rows: list[dict[str, Any]]
  image_paths: list[str | None]

  def __len__(self) -> int:
    return len(self.items)


@dataclasses.dataclass
class BatchResult:
  """What an extractor returns for a batch.

  Attributes:
    values: float32 [b, D]; rows of failed items are zero. When every item
      of the batch failed, [b, 0] is allowed (the extractor may not know D
      without a successful forward pass).
    failed: internal item id -> reason, for items that could not be
      represented (their rows in `values` are zero).
    extra: name -> list of b JSON-serialisable values, stored beside the
      embedding as `<name>.<key>.jsonl` (one {"item", "raw_id", key} line per
      item), e.g. 'generated_text' of an LVLM.
  """

  values: np.ndarray
  failed: dict[int, str] = dataclasses.field(default_factory=dict)
  extra: dict[str, list[Any]] = dataclasses.field(default_factory=dict)


class Extractor(abc.ABC):
  """Builds one representation. Subclasses set `name` and implement both."""

  name: str = ''

  @abc.abstractmethod
  def manifest(self) -> dict[str, Any]:
    """What the store records about this representation.

    Keys as far as they apply: extractor, model, model_source, revision or
    weights_sha256, layer, pooling, prompt and prompt_sha256, fields,
    image_size, image_mean, image_std, normalize, library versions. The store
    adds name, dim, dtype, num_items, item_map_hash, failed and time.
    """

  @abc.abstractmethod
  def extract(self, batch: ItemBatch) -> BatchResult:
    """Represents a batch; per-item failures go into `BatchResult.failed`."""

  def close(self) -> None:
    """Frees models and memory; called once after the last batch."""


class SpecError(ValueError):
  """A representation's spec cannot work with its inputs.

  Raised by `check_spec` before any extraction starts (a keyword one-hot
  asked of a free-text file, an unknown method), so a config mistake costs
  seconds, not the hours of the representations extracted before it.
  """


def _extractor_module(spec: ml_collections.ConfigDict):
  """The module a spec's `extractor` names (see `make_extractor`)."""
  kind = spec.get('extractor', None)
  if not kind:
    raise ValueError(f'representation spec has no `extractor`: {spec}')
  module_name = kind if '.' in kind else f'mmjax.features.{kind}'
  try:
    module = importlib.import_module(module_name)
  except ModuleNotFoundError as e:
    if e.name != module_name:
      raise
    raise ValueError(
        f'unknown extractor {kind!r}: no module {module_name}.'
    ) from e
  if not hasattr(module, 'make_extractor'):
    raise ValueError(f'{module_name} has no make_extractor(spec, ds).')
  return module


def make_extractor(
    spec: ml_collections.ConfigDict, ds: dataset_lib.Dataset
) -> Extractor:
  """Builds the extractor a spec names.

  Args:
    spec: `spec.extractor` is a module of `mmjax.features` (e.g. 'weightfree',
      'text', 'visual', 'clip', 'lvlm', 'descriptions') or a dotted module
      path; that module's `make_extractor(spec, ds)` builds it. Common keys:
      `name` (the representation name), `device`, `dtype`, `batch_size`.
    ds: the dataset whose items are represented.

  Raises:
    ValueError: no such extractor module, or it has no `make_extractor`.
  """
  return _extractor_module(spec).make_extractor(spec, ds)


def check_spec(
    spec: ml_collections.ConfigDict, ds: dataset_lib.Dataset
) -> None:
  """Finds a spec's config mistakes before any representation is extracted.

  The CLI calls this for every representation of a run first, so that a
  mistake in the eleventh representation stops the run before the first ten
  are extracted, not after. It imports the extractor module (an unknown
  `extractor` fails here) and calls its optional `check_spec(spec, ds)`,
  which must be cheap (no model loading): modules need no registry edit.

  Raises:
    ValueError (SpecError, DataError): what is wrong and how to fix it.
  """
  module = _extractor_module(spec)
  check = getattr(module, 'check_spec', None)
  if check is not None:
    check(spec, ds)


# ---------------------------------------------------------------- helpers


def sha256_text(text: str) -> str:
  return hashlib.sha256(text.encode('utf-8')).hexdigest()


def file_sha256(path: str) -> str:
  """sha256 of a file's bytes."""
  h = hashlib.sha256()
  with open(path, 'rb') as f:
    while chunk := f.read(1 << 22):
      h.update(chunk)
  return h.hexdigest()


def check_unique_items(item_ids: np.ndarray, where: str) -> None:
  """Raises DataError when two internal items share a raw id."""
  ids = np.asarray(item_ids).astype(str)
  uniq, counts = np.unique(ids, return_counts=True)
  if len(uniq) != len(ids):
    dup = uniq[counts > 1]
    raise dataset_lib.DataError(
        f'{where}: {len(dup)} raw item ids occur more than once (first '
        f'{dup[0]!r}); a feature row must mean one item. Re-prepare the '
        'dataset.'
    )


def image_field(spec: ml_collections.ConfigDict, ds: dataset_lib.Dataset):
  """The item-table column holding image paths, or None."""
  name = spec.get('image_field', None)
  if name:
    if name not in ds.item_table:
      raise ValueError(
          f'image_field {name!r} is not an item-table column (have '
          f'{sorted(ds.item_table)}).'
      )
    return name
  for name in IMAGE_FIELDS:
    if name in ds.item_table:
      return name
  return None


def resolve_image_path(value: Any, roots: Sequence[str]) -> str | None:
  """An absolute path for an item-table image value, or None.

  Relative paths are tried under each root in order (the first that exists
  wins; otherwise the path under the first root is returned, so the missing
  file is reported by the image loader). URLs give None: extraction never
  downloads.
  """
  if value is None:
    return None
  if isinstance(value, (list, tuple)):
    value = value[0] if value else None
    if value is None:
      return None
  value = str(value).strip()
  if not value or '://' in value:
    return None
  if os.path.isabs(value):
    return value
  for root in roots:
    path = os.path.join(root, value)
    if os.path.exists(path):
      return os.path.abspath(path)
  return os.path.abspath(os.path.join(roots[0], value)) if roots else value


def field_text(value: Any, list_sep: str = ', ') -> str:
  """A text value for an item-table cell (lists joined, None -> '')."""
  if value is None:
    return ''
  if isinstance(value, (list, tuple)):
    return list_sep.join(field_text(v, list_sep) for v in value if v)
  if isinstance(value, float) and not np.isfinite(value):
    return ''
  return str(value)


def item_text(
    row: dict[str, Any],
    fields: Sequence[str],
    *,
    template: str | None = None,
    separator: str = '. ',
    pipe_to: str | None = ', ',
    pipe_fields: Sequence[str] = PIPE_FIELDS,
) -> str:
  """Joins an item's text fields.

  Args:
    row: the item's row (column -> value).
    fields: columns to use, in order; missing or empty ones are skipped.
    template: optional `str.format` template over the fields, e.g.
      '{title}. Genres: {genres}'; overrides `separator`.
    separator: put between non-empty fields when there is no template.
    pipe_to: replaces '|' inside the values of `pipe_fields`, where it
      separates list entries (MovieLens genres 'A|B' -> 'A, B'); None keeps
      it. Other fields (titles, generated text) are never altered.
    pipe_fields: the columns whose '|' is a list separator.

  Returns:
    The text, stripped; '' when every field is empty.
  """
  values = {}
  for f in fields:
    text = field_text(row.get(f)).strip()
    if pipe_to is not None and f in pipe_fields:
      text = text.replace('|', pipe_to)
    values[f] = text
  if template:
    return template.format(**values).strip()
  return separator.join(v for v in values.values() if v).strip()


def text_problem(text: str | None) -> str | None:
  """Why a text cannot be encoded (None if it can)."""
  if text is None:
    return 'no text'
  if not text.strip():
    return 'empty text'
  try:
    text.encode('utf-8')
  except UnicodeEncodeError:
    # Lone surrogates: what `errors='surrogateescape'` leaves of bad bytes.
    return 'text is not valid UTF-8'
  return None


def _suggest_columns(
    fieldnames: Sequence[str], rows: list[dict[str, Any]],
    index: dict[str, int],
) -> tuple[str | None, str | None, int]:
  """A plausible (id column, text column) pair of a CSV, for an error.

  The id column is the one holding the most of the dataset's item ids; the
  text column the other one with the longest cells on average.

  Returns:
    (key, column, matched ids of key); (None, None, 0) without any match.
  """
  matched = {f: sum(1 for r in rows if str(r.get(f) or '').strip() in index)
             for f in fieldnames}
  key = max(fieldnames, key=lambda f: matched[f], default=None)
  if key is None or not matched[key]:
    return None, None, 0
  others = [f for f in fieldnames if f != key]
  def mean_length(f):
    cells = [len(str(r.get(f) or '')) for r in rows]
    return sum(cells) / max(len(cells), 1)
  column = max(others, key=mean_length, default=None)
  return key, column, matched[key]


def _header_error(path: str, fieldnames: Sequence[str] | None, key: str,
                  column: str, rows: list[dict[str, Any]],
                  index: dict[str, int]) -> dataset_lib.DataError:
  """The error for a CSV whose header lacks the configured columns."""
  if not fieldnames:
    return dataset_lib.DataError(
        f'{path}: empty file; expected a header line naming the id column '
        f'{key!r} (csv.key) and the text column {column!r} (csv.column).')
  missing = [c for c in (key, column) if c not in fieldnames]
  message = (
      f'{path}: the header line is {list(fieldnames)}, which has no '
      f'{" and no ".join(repr(c) for c in missing)} column. Name the item-id '
      f'column with the spec option csv.key (now {key!r}) and the text '
      f'column with csv.column (now {column!r}).')
  id_names = [f for f in fieldnames if str(f).strip() in index]
  if id_names:
    return dataset_lib.DataError(
        f'{message} The first line holds the item id {id_names[0]!r}, so '
        'the file seems to have no header line: add one (e.g. '
        f'"{key},{column}") at its top.')
  guess_key, guess_column, matched = _suggest_columns(fieldnames, rows, index)
  if guess_key is not None and guess_column is not None:
    message += (
        f' This file suggests csv.key={guess_key!r} ({matched} of its '
        f'{len(rows)} rows name an item of the dataset) and '
        f'csv.column={guess_column!r}.')
  else:
    message += ' No column of this file holds the dataset\'s item ids.'
  return dataset_lib.DataError(message)


def _is_header_line(row: dict[str, Any], fieldnames: Sequence[str]) -> bool:
  """True for a data row that repeats the header (files concatenated)."""
  return all(str(row.get(f) or '').strip() == str(f).strip()
             for f in fieldnames)


def join_csv_column(
    path: str,
    item_ids: np.ndarray,
    *,
    key: str = 'asin',
    column: str = 'result',
) -> tuple[list[str | None], dict[int, str], dict[str, int]]:
  """Reads a per-item text column from a CSV (e.g. LVLM outputs asin,result).

  Rows are matched to items by raw id (`str(row[key]) == item_ids[i]`). Cells
  may span lines (the csv module handles quoting). A line that repeats the
  header (`asin,result` again, as in files written by appending batches) is
  a header, not a row: it is skipped and counted.

  Args:
    path: the CSV file (header row required).
    item_ids: str [I], the dataset's raw item ids.
    key: the id column (a spec's `csv.key`).
    column: the text column (a spec's `csv.column`).

  Returns:
    (texts, problems, counts): texts[i] for each internal item (None where the
    CSV has no row or the cell is not UTF-8), problems[i] the reason for each
    None, counts of rows read / not in the dataset / duplicates, and
    'repeated_headers' (lines repeating the header) when there are any.

  Raises:
    DataError: missing file; a header without `key` or `column` (the message
      names the header found, the spec options csv.key / csv.column and, when
      one column holds the dataset's item ids, the pair to set); an id given
      twice with different texts.
  """
  if not os.path.exists(path):
    raise dataset_lib.DataError(f'{path}: no such CSV file.')
  with open(path, 'rb') as f:
    raw = f.read()
  # Decoding per line would split quoted multi-line cells; decode the file
  # with surrogateescape so a bad byte marks only the cell that holds it.
  text = raw.decode('utf-8-sig', errors='surrogateescape')
  reader = csv.DictReader(io.StringIO(text, newline=''))
  index = {str(r): i for i, r in enumerate(np.asarray(item_ids).astype(str))}
  fieldnames = reader.fieldnames
  if not fieldnames or key not in fieldnames or column not in fieldnames:
    raise _header_error(path, fieldnames, key, column,
                        list(reader) if fieldnames else [], index)
  texts: list[str | None] = [None] * len(index)
  problems: dict[int, str] = {}
  seen: dict[str, str] = {}
  counts = {'rows': 0, 'not_in_dataset': 0, 'duplicate_rows': 0}
  headers = 0
  for row in reader:
    # The reader's line count, so multi-line cells do not shift it.
    line = reader.line_num
    if _is_header_line(row, fieldnames):
      headers += 1
      continue
    counts['rows'] += 1
    rid = str(row[key]).strip()
    value = row[column] if row[column] is not None else ''
    if rid in seen:
      if seen[rid] != value:
        raise dataset_lib.DataError(
            f'{path}: near line {line}: id {rid!r} appears twice with '
            'different texts.'
        )
      counts['duplicate_rows'] += 1
      continue
    seen[rid] = value
    if rid not in index:
      counts['not_in_dataset'] += 1
      continue
    texts[index[rid]] = value
  if headers:
    counts['repeated_headers'] = headers
    logging.warning('%s: %d lines repeat the header %s; read as headers, '
                    'not rows.', path, headers, ','.join(fieldnames))
  for i, value in enumerate(texts):
    if value is None:
      problems[i] = f'not in {os.path.basename(path)}'
    else:
      problem = text_problem(value)
      if problem == 'text is not valid UTF-8':
        texts[i] = None
        problems[i] = f'{problem} in {os.path.basename(path)}'
  return texts, problems, counts


def batch_texts(
    batch: ItemBatch,
    fields: Sequence[str],
    template: str | None = None,
    failed: dict[int, str] | None = None,
) -> tuple[list[str], dict[int, str]]:
  """Each item's text (`item_text`) and the items whose text cannot be used.

  Args:
    batch: the items.
    fields: item-table columns, joined as in `item_text`.
    template: optional format template over the fields.
    failed: reasons found earlier (e.g. a missing image); an item keeps its
      first reason. Not modified.

  Returns:
    (texts, failed): b texts ('' for failed items) and item -> reason.
  """
  failed = dict(failed or {})
  texts = []
  for item, row in zip(batch.items, batch.rows):
    text = item_text(row, fields, template=template)
    problem = text_problem(text)
    if problem:
      failed.setdefault(int(item), f'{problem} in fields {list(fields)}')
      text = ''
    texts.append(text)
  return texts, failed


def scatter_result(
    batch: ItemBatch,
    keep: Sequence[int],
    encoded: np.ndarray | None,
    failed: dict[int, str],
    extra: dict[str, list[Any]] | None = None,
) -> BatchResult:
  """A BatchResult from the rows computed for some positions of a batch.

  Rows that came out NaN or inf (half precision overflows) fail with that
  reason instead of stopping the run or being stored.

  Args:
    batch: the whole batch.
    keep: batch positions that were encoded, in the order of `encoded`.
    encoded: float [len(keep), D], or None when `keep` is empty.
    failed: item -> reason for the other positions (updated in place).
    extra: per-item extra outputs, as in BatchResult.

  Returns:
    values [b, D] (zeros outside `keep`), or [b, 0] when nothing was encoded.
  """
  extra = extra or {}
  if not len(keep):
    return BatchResult(np.zeros((len(batch), 0), np.float32), failed, extra)
  encoded = np.asarray(encoded, np.float32)
  values = np.zeros((len(batch), encoded.shape[1]), np.float32)
  values[list(keep)] = encoded
  bad = ~np.isfinite(encoded).all(axis=1)
  for j in np.flatnonzero(bad):
    failed[int(batch.items[keep[j]])] = (
        'non-finite model output (half-precision overflow?)')
  return BatchResult(zero_failed(values, batch.items, failed), failed, extra)


def image_processor_manifest(processor: Any) -> dict[str, Any]:
  """Preprocessing facts of an image processor (size, crop, mean/std)."""
  out = {}
  for key in ('size', 'crop_size', 'do_center_crop', 'do_resize',
              'do_normalize', 'image_mean', 'image_std', 'rescale_factor',
              'resample', 'min_pixels', 'max_pixels', 'max_image_size',
              'do_image_splitting'):
    value = getattr(processor, key, None)
    if value is None:
      continue
    if hasattr(value, 'items'):
      value = dict(value)
    elif isinstance(value, (list, tuple)):
      value = [float(v) for v in value]
    elif not isinstance(value, (bool, int, float, str)):
      value = str(value)
    out[key] = value
  out['processor'] = type(processor).__name__
  return out


@dataclasses.dataclass
class JoinedColumn:
  """A spec's `csv` column joined onto the dataset's items.

  Attributes:
    field: the item-row key the texts go under.
    texts: per internal item, the text or None (see `join_csv_column`).
    problems: item -> reason for each None.
    info: manifest entries: the CSV's path, sha256 and row counts.
  """

  field: str
  texts: list[str | None]
  problems: dict[int, str]
  info: dict[str, Any]


def spec_csv_column(spec: ml_collections.ConfigDict,
                    item_ids: np.ndarray) -> JoinedColumn | None:
  """Joins `spec.csv` {path, key='asin', column='result', field='text'}.

  The one reader of a spec's external text column (the CLI, TF-IDF's
  vocabulary and the descriptions extractor all use it). None when the
  spec has no `csv.path`. `info['csv_counts']` holds the counts of
  `join_csv_column` (repeated header lines included), so manifests report
  them.

  Raises:
    DataError: as `join_csv_column`, prefixed with the spec's name.
  """
  csv_spec = spec.get('csv', None)
  if not csv_spec or not csv_spec.get('path', None):
    return None
  try:
    texts, problems, counts = join_csv_column(
        csv_spec.path, item_ids, key=csv_spec.get('key', None) or 'asin',
        column=csv_spec.get('column', None) or 'result')
  except dataset_lib.DataError as e:
    # Which representation's csv.* options to fix.
    name = spec.get('name', None)
    if not name:
      raise
    raise dataset_lib.DataError(f'{name}: {e}') from e
  return JoinedColumn(
      field=csv_spec.get('field', None) or 'text', texts=texts,
      problems=problems,
      info={'csv': os.path.abspath(csv_spec.path),
            'csv_sha256': file_sha256(csv_spec.path), 'csv_counts': counts})


def zero_failed(values: np.ndarray, items: np.ndarray,
                failed: dict[int, str]) -> np.ndarray:
  """Zeroes the rows of failed items (in place) and returns `values`."""
  if failed:
    pos = {int(it): k for k, it in enumerate(items)}
    for it in failed:
      values[pos[int(it)]] = 0.0
  return values


def check_result(result: BatchResult, batch: ItemBatch, where: str) -> None:
  """Raises ValueError when an extractor broke the BatchResult contract."""
  v = result.values
  if not isinstance(v, np.ndarray) or v.ndim != 2 or v.shape[0] != len(batch):
    raise ValueError(
        f'{where}: values must be [b={len(batch)}, D], got '
        f'{getattr(v, "shape", type(v))}.'
    )
  if v.shape[1] == 0 and len(result.failed) != len(batch):
    raise ValueError(f'{where}: values are [b, 0] but not every item failed.')
  if v.dtype != np.float32:
    raise ValueError(f'{where}: values must be float32, got {v.dtype}.')
  items = set(int(i) for i in batch.items)
  for it in result.failed:
    if int(it) not in items:
      raise ValueError(f'{where}: failed item {it} is not in the batch.')
  ok = np.ones(len(batch), bool)
  pos = {int(it): k for k, it in enumerate(batch.items)}
  for it in result.failed:
    ok[pos[int(it)]] = False
  if not np.isfinite(v[ok]).all():
    bad = batch.items[ok][~np.isfinite(v[ok]).all(axis=1)]
    raise ValueError(
        f'{where}: NaN or inf for items {bad[:5].tolist()} that were not '
        'marked failed.'
    )
  for key, values in result.extra.items():
    if len(values) != len(batch):
      raise ValueError(
          f'{where}: extra[{key!r}] has {len(values)} entries, batch '
          f'{len(batch)}.'
      )


# How a two-tower extractor (clip.py, audio.py's CLAP) joins its two
# embeddings when asked for both.
FUSIONS = ('concat', 'sum', 'mean', 'mul')


def fuse(fusion: str, a: np.ndarray, b: np.ndarray, name: str,
         towers: tuple[str, str]) -> np.ndarray:
  """Fuses two [b, D] tower embeddings (`FUSIONS`; `towers` names them in
  the error when a non-concat fusion meets unequal dims)."""
  if fusion == 'concat':
    return np.concatenate([a, b], axis=1)
  if a.shape[1] != b.shape[1]:
    raise ValueError(f'{name}: fusion {fusion} needs equal dims, got '
                     f'{towers[0]} {a.shape[1]} and {towers[1]} {b.shape[1]}.')
  if fusion == 'sum':
    return a + b
  if fusion == 'mean':
    return (a + b) / 2.0
  return a * b


def versions(*names: str) -> dict[str, str]:
  """Installed versions of the named distributions (missing ones skipped)."""
  from importlib import metadata  # pylint: disable=g-import-not-at-top

  out = {'numpy': np.__version__}
  for n in names:
    try:
      out[n] = metadata.version(n)
    except metadata.PackageNotFoundError:
      pass
  return out


def spec_fingerprint(spec: ml_collections.ConfigDict) -> str:
  """sha256 of a spec's JSON form, for checking that partials match it."""
  d = spec.to_dict() if hasattr(spec, 'to_dict') else dict(spec)
  # Keys that do not change the numbers (throughput and placement only; a
  # dataset moved to another folder keeps its features).
  for k in ('batch_size', 'device', 'dataset_dir'):
    d.pop(k, None)
  return sha256_text(json.dumps(d, sort_keys=True, default=str))


# ---------------------------------------------------------------- torch side


def torch_device(name: str | None):
  """A torch.device for 'cpu' | 'cuda' | 'cuda:1' | 'auto' (imports torch)."""
  import torch  # pylint: disable=g-import-not-at-top

  name = name or 'auto'
  if name == 'auto':
    name = 'cuda' if torch.cuda.is_available() else 'cpu'
  if name.startswith('cuda') and not torch.cuda.is_available():
    raise ValueError("device 'cuda' asked for, but torch sees no GPU.")
  return torch.device(name)


def torch_dtype(name: str | None, device):
  """torch dtype for 'float32' | 'float16' | 'bfloat16'; CPU stays float32."""
  import torch  # pylint: disable=g-import-not-at-top

  name = name or 'float32'
  table = {
      'float32': torch.float32,
      'float16': torch.float16,
      'bfloat16': torch.bfloat16,
  }
  if name not in table:
    raise ValueError(f'dtype must be one of {sorted(table)}, got {name!r}.')
  # Half precision on CPU is slow and, for float16, often unsupported.
  if device.type == 'cpu' and name == 'float16':
    return torch.float32
  return table[name]


def run_config(*, batch_size: int = 32, shard_size: int = 2048,
               device: str = 'auto', dtype: str = 'float32',
               only: str = '') -> ml_collections.ConfigDict:
  """The run section every configs/features/*.py shares (before its specs).

  Args:
    batch_size: items per extractor call.
    shard_size: items per resumable shard.
    device: 'auto', 'cpu' or 'cuda'.
    dtype: compute dtype of the neural extractors.
    only: comma-separated representation names to run ('' = all).
  """
  config = ml_collections.ConfigDict()
  config.dataset_dir = ''
  config.batch_size = batch_size
  config.shard_size = shard_size
  config.device = device
  config.dtype = dtype
  config.store_dtype = 'float32'
  config.image_root = ''
  config.audio_root = ''
  config.only = only
  config.overwrite = False
  config.quiet = False
  return config
