"""Readers: source files in, `RawData` (raw string ids) out.

Every reader checks what it parses and raises `DataError` naming the file, the
1-based line and what was expected. With `on_bad_line='skip'` a malformed line
is skipped instead, counted, and reported as a manifest step
(`reader_skip_bad_lines`); nothing is dropped silently. Duplicate interactions
are kept as read: de-duplication is a preprocessing step with its own count.

Interaction files are parsed in blocks of lines with C-level splitting and
number parsing (about 2 s of CPU per million lines); only a block that holds a
bad line is re-parsed line by line to name it. Paths ending in .gz are read
with gzip.

Formats (`READERS`):
  mmrec            <dir>/<name>.inter (TSV with header userID itemID [rating]
                   [timestamp] x_label), image_feat.npy / text_feat.npy.
  elliot           <dir>/{train,val,test}.tsv (user item [rating [timestamp]],
                   no header) and per-item feature folders <dir>/<feature>/
                   <item>.npy (Ducho's layout).
  recbole          <dir>/<name>.inter/.item typed headers (user_id:token ...).
  amazon2014       reviews_*.json(.gz) + meta_*.json(.gz) (2014 meta lines are
                   Python literals); `amazon2018` is the same reader.
  amazon2023       <category>.jsonl(.gz) reviews + meta_<category>.jsonl(.gz).
  movielens100k    u.data + u.item (+ u.genre).
  movielens_latest ratings.csv + movies.csv, or ratings.tsv + movies.tsv.
"""

from __future__ import annotations

import ast
import csv
import gzip
import inspect
import io
import json
import os
import re
from typing import Any, Callable, Iterator

import numpy as np

from mmjax.data import dataset as dataset_lib

DataError = dataset_lib.DataError

ON_BAD_LINE = ('error', 'skip')


def _check_policy(on_bad_line: str) -> None:
  if on_bad_line not in ON_BAD_LINE:
    raise ValueError(f'on_bad_line must be one of {ON_BAD_LINE}, got '
                     f'{on_bad_line!r}.')


class _BadLines:
  """Collects skipped lines of one file, or raises on the first one."""

  def __init__(self, path: str, on_bad_line: str):
    _check_policy(on_bad_line)
    self.path, self.policy, self.lines = path, on_bad_line, []

  def __call__(self, line_no: int, message: str) -> None:
    if self.policy == 'error':
      raise DataError(f'{self.path}:{line_no}: {message}')
    self.lines.append(line_no)

  def step(self) -> list[dict[str, Any]]:
    if not self.lines:
      return []
    return [{'step': 'reader_skip_bad_lines', 'file': self.path,
             'removed': len(self.lines), 'examples': self.lines[:5]}]


def _open_text(path: str, encoding: str = 'utf-8') -> io.TextIOBase:
  if not os.path.exists(path):
    raise DataError(f'{path}: file not found.')
  if path.endswith('.gz'):
    return gzip.open(path, 'rt', encoding=encoding, newline='')
  return open(path, encoding=encoding, newline='')


def _decoded(f: io.TextIOBase, path: str) -> Iterator[str]:
  """Iterates the lines of `f`; undecodable or corrupt input -> DataError."""
  line_no = 0
  try:
    for line in f:
      line_no += 1
      yield line
  except UnicodeDecodeError as e:
    # Text files decode in blocks, so the line is where the block starts.
    raise DataError(f'{path}: near line {line_no + 1}: not valid '
                    f'{e.encoding} text ({e.reason}).') from None
  except (OSError, EOFError) as e:  # gzip: not gzip, or truncated.
    raise DataError(f'{path}: cannot read the file ({e}).') from None


def _first_existing(folder: str, names: tuple[str, ...]) -> str:
  for name in names:
    path = os.path.join(folder, name)
    if os.path.exists(path):
      return path
  raise DataError(f'{folder}: none of {", ".join(names)} found.')


class _BadValue(ValueError):
  """A field that does not parse; the message names the field and value."""


def _number(value: Any, kind: str, what: str) -> float | int:
  """Parses one JSON value as a finite float or an int (seconds / ms)."""
  if isinstance(value, bool):  # float(True) is 1.0: not a rating or a time.
    raise _BadValue(f'{what} {value!r} is not a number.')
  try:
    out = float(value)
  except (TypeError, ValueError):
    raise _BadValue(f'{what} {value!r} is not a number.') from None
  if not np.isfinite(out):
    raise _BadValue(f'{what} {value!r} is not finite.')
  if kind == 'int':
    return int(value) if isinstance(value, int) else int(out)
  return out


def _raw_id(value: Any, what: str) -> str:
  """A JSON id field as a string; null, empty or non-scalar -> _BadValue.

  str() would turn a null into the id 'None', one user for every record
  that lacks one.
  """
  if isinstance(value, bool) or not isinstance(value, (str, int)):
    raise _BadValue(f'{what} {value!r} is not a string id.')
  value = str(value)
  if not value.strip():
    raise _BadValue(f'{what} {value!r} is empty.')
  return value


class _Columns:
  """Accumulates interaction columns while reading JSON lines."""

  def __init__(self):
    self.users, self.items, self.ratings, self.times = [], [], [], []

  def add(self, user: str, item: str, rating: float, time: int) -> None:
    self.users.append(user)
    self.items.append(item)
    self.ratings.append(rating)
    self.times.append(time)

  def raw(self, source: str, path: str, **kwargs) -> dataset_lib.RawData:
    if not self.users:
      raise DataError(f'{path}: no interactions found.')
    return dataset_lib.RawData(
        source=source,
        users=np.asarray(self.users, dtype=str),
        items=np.asarray(self.items, dtype=str),
        rating=np.asarray(self.ratings, np.float32),
        timestamp=np.asarray(self.times, np.int64),
        **kwargs,
    )


def _delimited_rows(
    path: str, delimiter: str, encoding: str = 'utf-8'
) -> Iterator[tuple[int, list[str]]]:
  """Yields (1-based line number, fields); blank lines are skipped."""
  with _open_text(path, encoding) as f:
    for line_no, line in enumerate(_decoded(f, path), 1):
      line = line.rstrip('\r\n')
      if not line.strip():
        continue
      yield line_no, line.split(delimiter)


# Columns of a delimited file: (name, field index, kind, what), kind one of
# 'str', 'float', 'int', 'label' (an int in {TRAIN, VALID, TEST}), 'id' (a
# non-negative integer kept as its canonical decimal string: MMRec's ids).
_Spec = tuple[str, int, str, str]
# Characters of text parsed per numpy batch: bounded memory at 10M lines.
_CHUNK = 1 << 23


def _fast_numbers(values: list[str], kind: str) -> np.ndarray | None:
  """numpy's C text parser over a whole column; None unless every value is
  one clean finite number (then `_numeric` finds and names the bad ones)."""
  text = ' '.join(values)
  out = None
  if kind != 'float':
    try:
      out = np.fromstring(text, dtype=np.int64, sep=' ')
    except ValueError:
      pass  # E.g. RecBole's float-typed timestamps '881250949.0'.
  if out is None:
    try:
      out = np.fromstring(text, dtype=np.float64, sep=' ')
    except ValueError:
      return None
    if not np.isfinite(out).all():
      return None
  if len(out) != len(values):
    return None
  if kind == 'label' and not np.isin(out, (0, 1, 2)).all():
    return None
  return out


def _numeric(values: np.ndarray, kind: str
             ) -> tuple[np.ndarray, list[tuple[int, str]]]:
  """Parses a str array in bulk; returns (values, [(row, error)])."""
  try:
    if kind == 'float':
      out = values.astype(np.float64)
    else:
      try:
        out = values.astype(np.int64)
      except (ValueError, OverflowError):
        out = values.astype(np.float64)
  except (ValueError, OverflowError):
    out = None
  if out is not None and (kind != 'float' or np.isfinite(out).all()):
    if kind == 'int' and out.dtype == np.float64 and not np.isfinite(out).all():
      out = None
    elif kind == 'label':
      wrong = np.flatnonzero(~np.isin(out, (0, 1, 2)))
      return out, [(int(k), 'is not 0, 1 or 2') for k in wrong]
    else:
      return out, []
  # Slow path, only for a batch holding a bad value: find which rows.
  out = np.zeros(len(values), np.float64)
  errors = []
  for k, v in enumerate(values.tolist()):
    try:
      out[k] = float(v)
    except ValueError:
      errors.append((k, 'is not a number'))
      continue
    if not np.isfinite(out[k]):
      errors.append((k, 'is not finite'))
    elif kind == 'label' and out[k] not in (0, 1, 2):
      errors.append((k, 'is not 0, 1 or 2'))
  return out, errors


def _int_ids(values: list[str]) -> tuple[np.ndarray, list[tuple[int, str]]]:
  """Non-negative integer ids as canonical strings; returns (ids, errors).

  '007' and '7' are one id to a tool that reads ids as integers (MMRec's
  pandas does), so both become '7'. The common case (every id already
  canonical) costs one C-level parse and keeps the strings as read.
  """
  text = np.asarray(values, dtype=str)
  ids = None
  if len(text):
    try:
      ids = np.fromstring(' '.join(values), dtype=np.int64, sep=' ')
    except ValueError:
      ids = None
  if ids is not None and len(ids) == len(text) and (ids >= 0).all():
    chars = text.view(np.uint32).reshape(len(text), -1)  # [n, width]
    first = chars[:, 0]
    canonical = ((first >= ord('1')) & (first <= ord('9'))) | (
        (first == ord('0')) & ((chars != 0).sum(axis=1) == 1))
    if not canonical.all():
      text = text.astype(object)
      text[~canonical] = ids[~canonical].astype(str)
      text = text.astype(str)
    return text, []
  # Slow path, only for a batch holding a bad value: find which rows.
  out, errors = [], []
  for k, v in enumerate(text.tolist()):
    try:
      x = int(v)
    except (ValueError, OverflowError):
      errors.append((k, 'is not an integer'))
      x = 0
    if x < 0:
      errors.append((k, 'is negative'))
    out.append(str(x))
  return np.asarray(out, dtype=str), errors


def _split_uniform(lines: list[str], delimiter: str, width: int
                   ) -> list[list[str]] | None:
  """Splits lines into `width` columns at C speed, or None if any line is
  blank or has another field count (the caller then goes line by line).

  Counts delimiters per line on the utf-8 bytes (multi-byte characters never
  contain ASCII bytes) and, when every line has width - 1, splits the whole
  batch with one str.split.
  """
  if len(delimiter) != 1 or width < 2:
    return None
  text = ''.join(lines)
  if '\r' in text:
    text = text.replace('\r', '')
  if not text.endswith('\n'):
    text += '\n'
  raw = np.frombuffer(text.encode('utf-8'), np.uint8)
  newlines = np.flatnonzero(raw == 10)
  if len(newlines) != len(lines):
    return None
  per_line = np.diff(np.searchsorted(np.flatnonzero(raw == ord(delimiter)),
                                     newlines), prepend=0)
  if (per_line != width - 1).any():
    return None
  tokens = text.replace('\n', delimiter).split(delimiter)
  tokens.pop()  # After the last newline.
  return [tokens[k::width] for k in range(width)]


class _Lines:
  """Reads a text file in blocks of lines, tracking 1-based line numbers.

  Blocks come from `readlines` (no per-line Python); undecodable text or a
  corrupt gzip stream becomes a DataError naming the file.
  """

  def __init__(self, f: io.TextIOBase, path: str):
    self.f, self.path, self.next_no, self._pending = f, path, 1, []

  def _guard(self, read: Callable[[], Any]) -> Any:
    try:
      return read()
    except UnicodeDecodeError as e:
      # Text decodes in blocks, so the line is where the block starts.
      raise DataError(f'{self.path}: near line {self.next_no}: not valid '
                      f'{e.encoding} text ({e.reason}).') from None
    except (OSError, EOFError) as e:  # gzip: not gzip, or truncated.
      raise DataError(f'{self.path}: cannot read the file ({e}).') from None

  def first(self) -> tuple[int, str] | None:
    """The next non-blank (line number, line without newline), or None."""
    while True:
      line = self._guard(self.f.readline)
      if not line:
        return None
      self.next_no += 1
      if line.strip():
        return self.next_no - 1, line.rstrip('\r\n')

  def unread(self, line: str) -> None:
    """Puts back the line `first` returned (Elliot files have no header)."""
    self._pending.append(line + '\n')
    self.next_no -= 1

  def block(self) -> tuple[int, list[str]]:
    """(number of the first line, next lines); an empty list at the end."""
    lines = self._pending + self._guard(lambda: self.f.readlines(_CHUNK))
    self._pending = []
    start = self.next_no
    self.next_no += len(lines)
    return start, lines


def _parse_delimited(lines: _Lines, delimiter: str, width: int,
                     specs: list[_Spec], bad: _BadLines
                     ) -> dict[str, np.ndarray]:
  """Parses the rest of a file in numpy batches; bad lines go to `bad`.

  Args:
    lines: the file, positioned after any header; blank lines are ignored.
    delimiter: field separator.
    width: the number of fields every line must have.
    specs: the columns to return.
    bad: raises on the first bad line, or records it.

  Returns:
    name -> array over the good lines, in file order (str columns as numpy
    str arrays, numeric ones float64 / int64).
  """
  parts = {name: [] for name, *_ in specs}
  while True:
    start, block = lines.block()
    if not block:
      break
    problems = []  # (line number, message)
    columns = _split_uniform(block, delimiter, width)
    if columns is not None:
      nos = range(start, start + len(block))
      good = range(len(block))
    else:  # Some line is blank or has the wrong field count: line by line.
      stripped = [line.rstrip('\r\n') for line in block]
      nos = [start + k for k, line in enumerate(stripped) if line.strip()]
      fields = [line.split(delimiter) for line in stripped if line.strip()]
      good = [k for k, f in enumerate(fields) if len(f) == width]
      if len(good) != len(fields):
        good_set = set(good)
        problems += [(nos[k], f'expected {width} fields separated by '
                      f'{delimiter!r}, got {len(fields[k])}.')
                     for k in range(len(fields)) if k not in good_set]
      columns = list(zip(*(fields[k] for k in good))) or [()] * width
    keep = np.ones(len(good), bool)
    out = {}
    for name, index, kind, what in specs:
      if kind == 'str':
        out[name] = np.asarray(columns[index], dtype=str)
        continue
      if kind == 'id':
        out[name], errors = _int_ids(columns[index])
        for k, error in errors:
          keep[k] = False
          problems.append((nos[good[k]], f'{what} {columns[index][k]!r} '
                           f'{error}; MMRec ids are non-negative integers.'))
        continue
      fast = _fast_numbers(columns[index], kind)
      if fast is not None:
        out[name] = fast
        continue
      values = np.asarray(columns[index], dtype=str)
      out[name], errors = _numeric(values, kind)
      for k, error in errors:
        keep[k] = False
        problems.append((nos[good[k]], f'{what} {str(values[k])!r} {error}.'))
    for no, message in sorted(problems):
      bad(no, message)
    for name, _, kind, _ in specs:
      value = out[name][keep]
      if kind in ('int', 'label'):
        value = value.astype(np.int64)
      parts[name].append(value)
  return {name: np.concatenate(chunks) if chunks else np.array([], str)
          for name, chunks in parts.items()}


def _raw_from_columns(source: str, path: str, columns: dict[str, np.ndarray],
                      **kwargs) -> dataset_lib.RawData:
  """RawData from parsed columns ('user', 'item', optional 'rating', ...)."""
  if not len(columns['user']):
    raise DataError(f'{path}: no interactions found.')
  get = columns.get
  return dataset_lib.RawData(
      source=source, users=columns['user'], items=columns['item'],
      rating=None if get('rating') is None
      else get('rating').astype(np.float32),
      timestamp=None if get('timestamp') is None
      else get('timestamp').astype(np.int64),
      split=None if get('split') is None else get('split').astype(np.int8),
      **kwargs)


# --------------------------------------------------------------------------
# MMRec


def read_mmrec(path: str, name: str | None = None, *,
               on_bad_line: str = 'error') -> dataset_lib.RawData:
  """Reads an MMRec dataset folder.

  userID and itemID must be non-negative integers, as MMRec reads them (a bad
  one is a bad line, named with its file, line and value); '007' and '7' are
  the same id.

  Args:
    path: folder holding `<name>.inter` and optionally `image_feat.npy`,
      `text_feat.npy` (row = item id).
    name: dataset name; defaults to the only `*.inter` file in the folder.
    on_bad_line: 'error' or 'skip' (counted).
  """
  _check_policy(on_bad_line)
  if name is None:
    inters = sorted(f for f in os.listdir(path) if f.endswith('.inter'))
    if len(inters) != 1:
      raise DataError(f'{path}: expected exactly one *.inter file, found '
                      f'{inters or "none"}; pass name=.')
    name = inters[0][:-len('.inter')]
  inter = os.path.join(path, f'{name}.inter')
  bad = _BadLines(inter, on_bad_line)
  with _open_text(inter) as f:
    lines = _Lines(f, inter)
    first = lines.first()
    if first is None:
      raise DataError(f'{inter}: empty file.')
    header_no, header = first[0], first[1].split('\t')
    index = {h: k for k, h in enumerate(header)}
    for required in ('userID', 'itemID', 'x_label'):
      if required not in index:
        raise DataError(f'{inter}:{header_no}: header lacks {required!r} '
                        f'(has {header}).')
    # MMRec reads both ids as integers (and an item id is a feature row): a
    # token such as 'u12' would otherwise become a user MMRec cannot have.
    specs = [('user', index['userID'], 'id', 'userID'),
             ('item', index['itemID'], 'id', 'itemID'),
             ('split', index['x_label'], 'label', 'x_label')]
    if 'rating' in index:
      specs.append(('rating', index['rating'], 'float', 'rating'))
    if 'timestamp' in index:
      specs.append(('timestamp', index['timestamp'], 'int', 'timestamp'))
    columns = _parse_delimited(lines, '\t', len(header), specs, bad)
  features = {}
  for modality, file in (('image', 'image_feat.npy'),
                         ('text', 'text_feat.npy')):
    fpath = os.path.join(path, file)
    if os.path.exists(fpath):
      values = _load_floats(fpath)
      _check_feature(values, fpath)
      _check_rows_cover_items(columns['item'], len(values), fpath, inter)
      features[modality] = (values, np.arange(len(values)).astype(str))
  return _raw_from_columns(f'mmrec:{inter}', inter, columns,
                           features=features, steps=bad.step())


def _check_rows_cover_items(items: np.ndarray, rows: int, path: str,
                            inter: str) -> None:
  """MMRec's row = item id: every item id must be an int with a row."""
  try:
    ids = items.astype(np.int64)
  except ValueError:
    raise DataError(f'{inter}: itemID values must be integers (row numbers '
                    f'of {os.path.basename(path)}).') from None
  wrong = np.flatnonzero((ids < 0) | (ids >= rows))
  if len(wrong):
    raise DataError(f'{path}: {rows} rows, but {inter} has itemID '
                    f'{int(ids[wrong[0]])}; expected a row for every item id '
                    f'(row = item id).')


def _load_floats(path: str) -> np.ndarray:
  """A .npy file as float32; not numeric or not an array -> DataError."""
  try:
    values = np.load(path)
  except (ValueError, OSError, EOFError) as e:  # Pickled, truncated, not npy.
    raise DataError(f'{path}: cannot read as a numeric .npy array ({e}).'
                    ) from None
  if not isinstance(values, np.ndarray) or values.dtype.kind not in 'fiub':
    raise DataError(f'{path}: expected a numeric array, got '
                    f'{getattr(values, "dtype", type(values).__name__)}.')
  return values.astype(np.float32)


def _check_feature(values: np.ndarray, path: str) -> None:
  if values.ndim != 2:
    raise DataError(f'{path}: expected a 2-D [items, dim] array, got shape '
                    f'{values.shape}.')
  finite = np.isfinite(values).all(axis=1)
  if not finite.all():
    raise DataError(f'{path}: row {int(np.flatnonzero(~finite)[0])} holds NaN '
                    'or inf.')


# --------------------------------------------------------------------------
# Elliot / Ducho

_ELLIOT_SPLITS = (('train.tsv', dataset_lib.TRAIN),
                  ('val.tsv', dataset_lib.VALID),
                  ('test.tsv', dataset_lib.TEST))


def read_elliot(path: str, *, on_bad_line: str = 'error',
                feature_dirs: tuple[str, ...] | None = None
                ) -> dataset_lib.RawData:
  """Reads Elliot's fixed split files and Ducho-style per-item features.

  Args:
    path: folder with train.tsv, val.tsv (optional) and test.tsv, tab-separated
      `user item [rating [timestamp]]` without header.
    on_bad_line: 'error' or 'skip' (counted).
    feature_dirs: sub-folders of `path` holding `<item>.npy` vectors; default:
      every sub-folder that contains .npy files (searched recursively, the
      deepest folder holding .npy files names the feature by its path).
  """
  _check_policy(on_bad_line)
  parts = []
  steps = []
  for file, label in _ELLIOT_SPLITS:
    fpath = os.path.join(path, file)
    if not os.path.exists(fpath):
      if file == 'val.tsv':
        continue
      raise DataError(f'{fpath}: file not found (Elliot layout needs '
                      'train.tsv and test.tsv).')
    bad = _BadLines(fpath, on_bad_line)
    with _open_text(fpath) as f:
      lines = _Lines(f, fpath)
      first = lines.first()
      if first is None:  # An empty split (e.g. no validation) is allowed.
        continue
      width = len(first[1].split('\t'))
      if width < 2 or width > 4:
        raise DataError(f'{fpath}:{first[0]}: expected 2 to 4 tab-separated '
                        f'fields (user, item, rating, timestamp), got '
                        f'{width}.')
      if parts and len(parts[0]) - 1 != width:
        raise DataError(f'{fpath}:{first[0]}: {width} fields per line, but '
                        f'the previous split file has {len(parts[0]) - 1}; '
                        'all split files need the same columns.')
      specs = [('user', 0, 'str', 'user'), ('item', 1, 'str', 'item'),
               ('rating', 2, 'float', 'rating'),
               ('timestamp', 3, 'int', 'timestamp')][:width]
      lines.unread(first[1])
      columns = _parse_delimited(lines, '\t', width, specs, bad)
    columns['split'] = np.full(len(columns['user']), label, np.int8)
    parts.append(columns)
    steps += bad.step()
  if not parts:
    raise DataError(f'{path}: no interactions found in the Elliot split '
                    'files.')
  columns = {name: np.concatenate([p[name] for p in parts])
             for name in parts[0]}
  features = {}
  for rel in feature_dirs if feature_dirs is not None else _npy_dirs(path):
    folder = os.path.join(path, rel)
    files = sorted(f for f in os.listdir(folder) if f.endswith('.npy'))
    if not files:
      raise DataError(f'{folder}: no <item>.npy files.')
    rows = []
    for f in files:
      v = _load_floats(os.path.join(folder, f)).reshape(-1)
      if rows and v.shape != rows[0].shape:
        raise DataError(f'{os.path.join(folder, f)}: dim {v.shape[0]}, '
                        f'expected {rows[0].shape[0]} like the other items.')
      rows.append(v)
    values = np.stack(rows)
    _check_feature(values, folder)
    features[rel.replace(os.sep, '/')] = (
        values, np.asarray([f[:-4] for f in files], dtype=str))
  return _raw_from_columns(f'elliot:{path}', path, columns,
                           features=features, steps=steps)


def _npy_dirs(path: str) -> list[str]:
  out = []
  for root, _, files in os.walk(path):
    if root != path and any(f.endswith('.npy') for f in files):
      out.append(os.path.relpath(root, path))
  return sorted(out)


# --------------------------------------------------------------------------
# RecBole atomic files

_RECBOLE_TYPES = ('token', 'token_seq', 'float', 'float_seq')
# RecBole's MovieLens / Amazon .item fields under the item-table names the
# feature extractors look for (title, year, genres); other fields keep theirs.
_RECBOLE_ALIASES = {'movie_title': 'title', 'release_year': 'year',
                    'class': 'genres', 'genre': 'genres',
                    'categories': 'category'}


def _recbole_header(fields: list[str], path: str) -> list[tuple[str, str]]:
  out = []
  for f in fields:
    name, sep, kind = f.rpartition(':')
    if not sep or kind not in _RECBOLE_TYPES:
      raise DataError(f'{path}:1: header field {f!r} is not name:type with '
                      f'type in {_RECBOLE_TYPES}.')
    out.append((name, kind))
  return out


def read_recbole(path: str, name: str | None = None, *,
                 on_bad_line: str = 'error') -> dataset_lib.RawData:
  """Reads RecBole atomic files `<name>.inter` and, if present, `<name>.item`.

  The .inter header must name user_id and item_id (`user_id:token`); rating
  and timestamp are read when present. Every .item field goes into the item
  table (token_seq values kept as the space-separated string); movie_title,
  release_year and class are stored as title, year and genres.
  """
  _check_policy(on_bad_line)
  if name is None:
    inters = sorted(f for f in os.listdir(path) if f.endswith('.inter'))
    if len(inters) != 1:
      raise DataError(f'{path}: expected exactly one *.inter file, found '
                      f'{inters or "none"}; pass name=.')
    name = inters[0][:-len('.inter')]
  inter = os.path.join(path, f'{name}.inter')
  bad = _BadLines(inter, on_bad_line)
  with _open_text(inter) as f:
    lines = _Lines(f, inter)
    first = lines.first()
    if first is None:
      raise DataError(f'{inter}: empty file.')
    header = first[1].split('\t')
    names = [n for n, _ in _recbole_header(header, inter)]
    for required in ('user_id', 'item_id'):
      if required not in names:
        raise DataError(f'{inter}:{first[0]}: header lacks {required}:token '
                        f'(has {header}).')
    specs = [('user', names.index('user_id'), 'str', 'user_id'),
             ('item', names.index('item_id'), 'str', 'item_id')]
    for field, kind in (('rating', 'float'), ('timestamp', 'int')):
      if field in names:
        specs.append((field, names.index(field), kind, field))
    columns = _parse_delimited(lines, '\t', len(names), specs, bad)
  item_table = {}
  item_path = os.path.join(path, f'{name}.item')
  steps = bad.step()
  if os.path.exists(item_path):
    bad_items = _BadLines(item_path, on_bad_line)
    rows = _delimited_rows(item_path, '\t')
    try:
      _, header = next(rows)
    except StopIteration:
      raise DataError(f'{item_path}: empty file.') from None
    fields_meta = _recbole_header(header, item_path)
    inames = [n for n, _ in fields_meta]
    if 'item_id' not in inames:
      raise DataError(f'{item_path}:1: header lacks item_id:token.')
    k = inames.index('item_id')
    for line_no, fields in rows:
      if len(fields) != len(inames):
        bad_items(line_no, f'expected {len(inames)} fields, got '
                  f'{len(fields)}.')
        continue
      item_table[fields[k]] = {
          _RECBOLE_ALIASES.get(n, n): v
          for j, (n, v) in enumerate(zip(inames, fields)) if j != k}
    steps += bad_items.step()
  return _raw_from_columns(f'recbole:{inter}', inter, columns,
                           item_table=item_table, steps=steps)


# --------------------------------------------------------------------------
# Amazon reviews


def _json_lines(path: str, bad: _BadLines, *, literal_ok: bool
                ) -> Iterator[tuple[int, dict[str, Any]]]:
  with _open_text(path) as f:
    for line_no, line in enumerate(_decoded(f, path), 1):
      if not line.strip():
        continue
      try:
        record = json.loads(line)
      except json.JSONDecodeError:
        record = None
        if literal_ok:  # 2014 meta files hold Python dict literals.
          try:
            record = ast.literal_eval(line)
          except (ValueError, SyntaxError):
            record = None
      if not isinstance(record, dict):
        bad(line_no, 'expected one JSON object per line.')
        continue
      yield line_no, record


def _first_image(value: Any) -> str | None:
  if isinstance(value, str):
    return value or None
  if isinstance(value, list):
    for v in value:
      if isinstance(v, str) and v:
        return v
      if isinstance(v, dict):
        for key in ('hi_res', 'large', 'thumb'):
          if v.get(key):
            return v[key]
  return None


def _text(value: Any) -> str | None:
  if value is None:
    return None
  if isinstance(value, list):
    flat = []
    for v in value:
      flat.extend(v if isinstance(v, list) else [v])
    value = ' '.join(str(v) for v in flat if v)
  value = str(value).strip()
  return value or None


def _category(value: Any) -> str | None:
  if isinstance(value, list) and value and isinstance(value[0], list):
    value = value[0]  # 2014: a list of category paths; take the first.
  if isinstance(value, list):
    return ' > '.join(str(v) for v in value if v) or None
  return _text(value)


def read_amazon2014(reviews: str, meta: str | None = None, *,
                    on_bad_line: str = 'error') -> dataset_lib.RawData:
  """Reads Amazon Reviews 2014 / 2018 (`reviews_*.json.gz`, `meta_*.json.gz`).

  Interactions: reviewerID, asin, overall (rating), unixReviewTime. Item
  table from meta: title, description, category (first category path),
  brand, price, image (imUrl in 2014; the first of imageURLHighRes / image in
  2018).
  """
  _check_policy(on_bad_line)
  bad = _BadLines(reviews, on_bad_line)
  cols = _Columns()
  for line_no, rec in _json_lines(reviews, bad, literal_ok=True):
    try:
      user = _raw_id(rec['reviewerID'], 'reviewerID')
      item = _raw_id(rec['asin'], 'asin')
      rating = _number(rec['overall'], 'float', 'overall')
      time = _number(rec['unixReviewTime'], 'int', 'unixReviewTime')
    except KeyError as e:
      bad(line_no, f'missing field {e.args[0]!r}.')
      continue
    except _BadValue as e:
      bad(line_no, str(e))
      continue
    cols.add(user, item, rating, time)
  steps = bad.step()
  item_table = {}
  if meta is not None:
    bad_meta = _BadLines(meta, on_bad_line)
    for line_no, rec in _json_lines(meta, bad_meta, literal_ok=True):
      if 'asin' not in rec:
        bad_meta(line_no, "missing field 'asin'.")
        continue
      try:
        asin = _raw_id(rec['asin'], 'asin')
      except _BadValue as e:
        bad_meta(line_no, str(e))
        continue
      item_table[asin] = {
          'title': _text(rec.get('title')),
          'description': _text(rec.get('description')),
          'category': _category(rec.get('categories', rec.get('category'))),
          'brand': _text(rec.get('brand')),
          'price': _text(rec.get('price')),
          'image': _first_image(rec.get('imageURLHighRes'))
          or _first_image(rec.get('imUrl')) or _first_image(rec.get('image')),
      }
    steps += bad_meta.step()
  return cols.raw(f'amazon2014:{reviews}', reviews, item_table=item_table,
                  steps=steps)


def read_amazon2023(reviews: str, meta: str | None = None, *,
                    on_bad_line: str = 'error') -> dataset_lib.RawData:
  """Reads Amazon Reviews 2023 (`<Category>.jsonl(.gz)`, `meta_<Category>...`).

  Items are keyed by `parent_asin`; timestamps (milliseconds) are converted
  to seconds. Item table: title, description, category (categories joined,
  else main_category), features, store, price, image (first hi_res/large).
  """
  _check_policy(on_bad_line)
  bad = _BadLines(reviews, on_bad_line)
  cols = _Columns()
  for line_no, rec in _json_lines(reviews, bad, literal_ok=False):
    try:
      user = _raw_id(rec['user_id'], 'user_id')
      item = _raw_id(rec['parent_asin'], 'parent_asin')
      rating = _number(rec['rating'], 'float', 'rating')
      time = _number(rec['timestamp'], 'int', 'timestamp') // 1000
    except KeyError as e:
      bad(line_no, f'missing field {e.args[0]!r}.')
      continue
    except _BadValue as e:
      bad(line_no, str(e))
      continue
    cols.add(user, item, rating, time)
  steps = bad.step()
  item_table = {}
  if meta is not None:
    bad_meta = _BadLines(meta, on_bad_line)
    for line_no, rec in _json_lines(meta, bad_meta, literal_ok=False):
      if 'parent_asin' not in rec:
        bad_meta(line_no, "missing field 'parent_asin'.")
        continue
      try:
        asin = _raw_id(rec['parent_asin'], 'parent_asin')
      except _BadValue as e:
        bad_meta(line_no, str(e))
        continue
      item_table[asin] = {
          'title': _text(rec.get('title')),
          'description': _text(rec.get('description')),
          'category': _category(rec.get('categories'))
          or _text(rec.get('main_category')),
          'features': _text(rec.get('features')),
          'store': _text(rec.get('store')),
          'price': _text(rec.get('price')),
          'image': _first_image(rec.get('images')),
      }
    steps += bad_meta.step()
  return cols.raw(f'amazon2023:{reviews}', reviews, item_table=item_table,
                  steps=steps)


# --------------------------------------------------------------------------
# MovieLens

_ML100K_GENRES = (
    'unknown', 'Action', 'Adventure', 'Animation', "Children's", 'Comedy',
    'Crime', 'Documentary', 'Drama', 'Fantasy', 'Film-Noir', 'Horror',
    'Musical', 'Mystery', 'Romance', 'Sci-Fi', 'Thriller', 'War', 'Western')


def _ratings(path: str, delimiter: str, header: bool, on_bad_line: str
             ) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
  """Parses `user item rating timestamp` lines (MovieLens ratings files)."""
  bad = _BadLines(path, on_bad_line)
  with _open_text(path) as f:
    lines = _Lines(f, path)
    if header and lines.first() is None:
      raise DataError(f'{path}: empty file.')
    specs = [('user', 0, 'str', 'user'), ('item', 1, 'str', 'item'),
             ('rating', 2, 'float', 'rating'),
             ('timestamp', 3, 'int', 'timestamp')]
    columns = _parse_delimited(lines, delimiter, 4, specs, bad)
  return columns, bad.step()


def read_movielens100k(path: str, *, on_bad_line: str = 'error'
                       ) -> dataset_lib.RawData:
  """Reads MovieLens 100K: `u.data` (tab) and `u.item` ('|', latin-1)."""
  _check_policy(on_bad_line)
  data = os.path.join(path, 'u.data')
  columns, steps = _ratings(data, '\t', False, on_bad_line)
  genres = list(_ML100K_GENRES)
  genre_path = os.path.join(path, 'u.genre')
  if os.path.exists(genre_path):
    genres = [f[0] for _, f in _delimited_rows(genre_path, '|', 'latin-1')]
  item_table = {}
  item_path = os.path.join(path, 'u.item')
  if os.path.exists(item_path):
    bad = _BadLines(item_path, on_bad_line)
    for line_no, f in _delimited_rows(item_path, '|', 'latin-1'):
      if len(f) != 5 + len(genres):
        bad(line_no, f'expected {5 + len(genres)} "|"-separated fields, got '
            f'{len(f)}.')
        continue
      flags = f[5:]
      if any(v not in ('0', '1') for v in flags):
        # Anything but '1' would silently read as "not this genre".
        bad(line_no, f'genre flags must be 0 or 1, got {"|".join(flags)!r}.')
        continue
      title = f[1]
      year = re.search(r'\((\d{4})\)\s*$', title)
      item_table[f[0]] = {
          'title': title,
          'year': year.group(1) if year else None,
          'release_date': f[2] or None,
          'url': f[4] or None,
          'genres': '|'.join(g for g, v in zip(genres, flags) if v == '1'),
      }
    steps += bad.step()
  return _raw_from_columns(f'movielens100k:{path}', data, columns,
                           item_table=item_table, steps=steps)


def read_movielens_latest(path: str, *, on_bad_line: str = 'error'
                          ) -> dataset_lib.RawData:
  """Reads MovieLens latest: ratings.csv + movies.csv (or the .tsv variant).

  The TSV variant (`ratings.tsv`: userId movieId rating timestamp; `movies.tsv`:
  movieId title year genres) is the one in $MMJAX_SHARED_DATA/movielens-lvlm.
  """
  _check_policy(on_bad_line)
  ratings = _first_existing(path, ('ratings.csv', 'ratings.tsv'))
  tsv = ratings.endswith('.tsv')
  # MovieLens never quotes ratings fields, so both variants split plainly;
  # movies.csv titles are quoted and go through the csv module below.
  columns, steps = _ratings(ratings, '\t' if tsv else ',', True, on_bad_line)
  item_table = {}
  movies = os.path.join(path, 'movies.tsv' if tsv else 'movies.csv')
  if os.path.exists(movies):
    bad = _BadLines(movies, on_bad_line)
    with _open_text(movies) as f:
      # Strict quoting: an unclosed quote would otherwise swallow the next
      # rows into a title, and their movies would go missing unannounced.
      reader = csv.reader(_decoded(f, movies), delimiter='\t' if tsv else ',',
                          strict=True)
      line = 0
      try:
        header = next(reader, [])
        line = reader.line_num
        if header and 'movieId' not in header:
          raise DataError(f'{movies}:1: header lacks movieId (has {header}).')
        for row in reader:
          start, line = line + 1, reader.line_num
          if not row:
            continue
          if line != start:  # MovieLens fields are single-line.
            bad(start, f'a quoted field runs over lines {start}-{line} (an '
                'unclosed quote?).')
            continue
          if len(row) != len(header):
            bad(start, f'expected {len(header)} fields, got {len(row)}.')
            continue
          rec = dict(zip(header, row))
          title = rec.get('title', '')
          year = rec.get('year')
          if not year:
            m = re.search(r'\((\d{4})\)\s*$', title)
            year = m.group(1) if m else None
          item_table[rec['movieId']] = {
              'title': title, 'year': year or None,
              'genres': rec.get('genres') or None}
      except csv.Error as e:
        # The reader cannot resync after broken quoting, so no skipping.
        raise DataError(f'{movies}:{line + 1}: {e} (an unclosed quote?).'
                        ) from None
    steps += bad.step()
  return _raw_from_columns(f'movielens_latest:{path}', ratings, columns,
                           item_table=item_table, steps=steps)


READERS: dict[str, Callable[..., dataset_lib.RawData]] = {
    'mmrec': read_mmrec,
    'elliot': read_elliot,
    'recbole': read_recbole,
    'amazon2014': read_amazon2014,
    'amazon2018': read_amazon2014,
    'amazon2023': read_amazon2023,
    'movielens100k': read_movielens100k,
    'movielens_latest': read_movielens_latest,
}


def arguments(fmt: str) -> tuple[str, ...]:
  """The keyword arguments the reader of format `fmt` takes (after path)."""
  params = list(inspect.signature(READERS[fmt]).parameters)
  return tuple(params[1:])


def read(fmt: str, path: str, **kwargs) -> dataset_lib.RawData:
  """Reads `path` in format `fmt` (a key of READERS).

  Raises:
    DataError: an unknown format, or an argument the reader does not take or
      of the wrong type (named, with the arguments it takes).
  """
  if fmt not in READERS:
    raise DataError(f'unknown data format {fmt!r}; known: '
                    f'{", ".join(sorted(READERS))}.')
  params = inspect.signature(READERS[fmt]).parameters
  known = arguments(fmt)
  for key, value in kwargs.items():
    if key not in known:
      raise DataError(f'the {fmt!r} reader takes no argument {key!r} (given '
                      f'{value!r}); it takes: {", ".join(known)}.')
    if (str(params[key].annotation).startswith('str') and value is not None
        and not isinstance(value, str)):
      raise DataError(f'the {fmt!r} reader\'s argument {key!r} must be a '
                      f'string, got {value!r} ({type(value).__name__}).')
  return READERS[fmt](path, **kwargs)
