"""Readers: source files in, `RawData` (raw string ids) out.

Every reader checks what it parses and raises `DataError` naming the file, the
1-based line and what was expected. With `on_bad_line='skip'` a malformed line
is skipped instead, counted, and reported as a manifest step
(`reader_skip_bad_lines`); nothing is dropped silently. Duplicate interactions
are kept as read: de-duplication is a preprocessing step with its own count.

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


def _first_existing(folder: str, names: tuple[str, ...]) -> str:
  for name in names:
    path = os.path.join(folder, name)
    if os.path.exists(path):
      return path
  raise DataError(f'{folder}: none of {", ".join(names)} found.')


def _float(value: str, path: str, line_no: int, what: str) -> float:
  try:
    out = float(value)
  except ValueError:
    raise DataError(
        f'{path}:{line_no}: {what} {value!r} is not a number.') from None
  if not np.isfinite(out):
    raise DataError(f'{path}:{line_no}: {what} {value!r} is not finite.')
  return out


def _int(value: str, path: str, line_no: int, what: str) -> int:
  try:
    return int(float(value)) if '.' in value or 'e' in value else int(value)
  except ValueError:
    raise DataError(
        f'{path}:{line_no}: {what} {value!r} is not an integer.') from None


class _Columns:
  """Accumulates interaction columns while reading."""

  def __init__(self):
    self.users, self.items, self.ratings, self.times, self.splits = (
        [], [], [], [], [])

  def add(self, user, item, rating=None, time=None, split=None):
    self.users.append(user)
    self.items.append(item)
    self.ratings.append(rating)
    self.times.append(time)
    self.splits.append(split)

  def raw(self, source: str, **kwargs) -> dataset_lib.RawData:
    def column(values, dtype):
      if not values or any(v is None for v in values):
        return None
      return np.asarray(values, dtype=dtype)
    return dataset_lib.RawData(
        source=source,
        users=np.asarray(self.users, dtype=str),
        items=np.asarray(self.items, dtype=str),
        rating=column(self.ratings, np.float32),
        timestamp=column(self.times, np.int64),
        split=column(self.splits, np.int8),
        **kwargs,
    )


def _delimited_rows(
    path: str, delimiter: str, encoding: str = 'utf-8'
) -> Iterator[tuple[int, list[str]]]:
  """Yields (1-based line number, fields); blank lines are skipped."""
  with _open_text(path, encoding) as f:
    for line_no, line in enumerate(f, 1):
      line = line.rstrip('\r\n')
      if not line.strip():
        continue
      yield line_no, line.split(delimiter)


def _check_empty(cols: _Columns, path: str) -> None:
  if not cols.users:
    raise DataError(f'{path}: no interactions found.')


# --------------------------------------------------------------------------
# MMRec


def read_mmrec(path: str, name: str | None = None, *,
               on_bad_line: str = 'error') -> dataset_lib.RawData:
  """Reads an MMRec dataset folder.

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
  cols = _Columns()
  rows = _delimited_rows(inter, '\t')
  try:
    _, header = next(rows)
  except StopIteration:
    raise DataError(f'{inter}: empty file.') from None
  index = {h: k for k, h in enumerate(header)}
  for required in ('userID', 'itemID', 'x_label'):
    if required not in index:
      raise DataError(f'{inter}:1: header lacks {required!r} (has {header}).')
  u, i, s = index['userID'], index['itemID'], index['x_label']
  r, t = index.get('rating'), index.get('timestamp')
  for line_no, fields in rows:
    if len(fields) != len(header):
      bad(line_no, f'expected {len(header)} tab-separated fields, got '
          f'{len(fields)}.')
      continue
    label = _int(fields[s], inter, line_no, 'x_label')
    if label not in (0, 1, 2):
      bad(line_no, f'x_label {label} is not 0, 1 or 2.')
      continue
    cols.add(fields[u], fields[i],
             None if r is None else _float(fields[r], inter, line_no, 'rating'),
             None if t is None else _int(fields[t], inter, line_no,
                                         'timestamp'),
             label)
  _check_empty(cols, inter)
  features = {}
  for modality, file in (('image', 'image_feat.npy'), ('text', 'text_feat.npy')):
    fpath = os.path.join(path, file)
    if os.path.exists(fpath):
      values = np.asarray(np.load(fpath), np.float32)
      _check_feature(values, fpath)
      features[modality] = (values, np.arange(len(values)).astype(str))
  return cols.raw(f'mmrec:{inter}', features=features, steps=bad.step())


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
  cols = _Columns()
  steps = []
  found = False
  for file, label in _ELLIOT_SPLITS:
    fpath = os.path.join(path, file)
    if not os.path.exists(fpath):
      if file == 'val.tsv':
        continue
      raise DataError(f'{fpath}: file not found (Elliot layout needs '
                      'train.tsv and test.tsv).')
    found = True
    bad = _BadLines(fpath, on_bad_line)
    width = None
    for line_no, fields in _delimited_rows(fpath, '\t'):
      if width is None:
        width = len(fields)
        if width < 2 or width > 4:
          raise DataError(f'{fpath}:{line_no}: expected 2 to 4 fields (user, '
                          f'item, rating, timestamp), got {width}.')
      if len(fields) != width:
        bad(line_no, f'expected {width} fields, got {len(fields)}.')
        continue
      cols.add(fields[0], fields[1],
               _float(fields[2], fpath, line_no, 'rating') if width > 2
               else None,
               _int(fields[3], fpath, line_no, 'timestamp') if width > 3
               else None, label)
    steps += bad.step()
  if not found:
    raise DataError(f'{path}: no Elliot split files.')
  _check_empty(cols, path)
  features = {}
  for rel in feature_dirs if feature_dirs is not None else _npy_dirs(path):
    folder = os.path.join(path, rel)
    files = sorted(f for f in os.listdir(folder) if f.endswith('.npy'))
    if not files:
      raise DataError(f'{folder}: no <item>.npy files.')
    rows = []
    for f in files:
      v = np.asarray(np.load(os.path.join(folder, f)), np.float32).reshape(-1)
      if rows and v.shape != rows[0].shape:
        raise DataError(f'{os.path.join(folder, f)}: dim {v.shape[0]}, '
                        f'expected {rows[0].shape[0]} like the other items.')
      rows.append(v)
    values = np.stack(rows)
    _check_feature(values, folder)
    features[rel.replace(os.sep, '/')] = (
        values, np.asarray([f[:-4] for f in files], dtype=str))
  return cols.raw(f'elliot:{path}', features=features, steps=steps)


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
      raise DataError(f'{path}:1: header field {f!r} is not name:type with type '
                      f'in {_RECBOLE_TYPES}.')
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
  rows = _delimited_rows(inter, '\t')
  try:
    _, header = next(rows)
  except StopIteration:
    raise DataError(f'{inter}: empty file.') from None
  names = [n for n, _ in _recbole_header(header, inter)]
  for required in ('user_id', 'item_id'):
    if required not in names:
      raise DataError(f'{inter}:1: header lacks {required}:token (has '
                      f'{header}).')
  u, i = names.index('user_id'), names.index('item_id')
  r = names.index('rating') if 'rating' in names else None
  t = names.index('timestamp') if 'timestamp' in names else None
  cols = _Columns()
  for line_no, fields in rows:
    if len(fields) != len(names):
      bad(line_no, f'expected {len(names)} tab-separated fields, got '
          f'{len(fields)}.')
      continue
    cols.add(fields[u], fields[i],
             None if r is None else _float(fields[r], inter, line_no, 'rating'),
             None if t is None else _int(fields[t], inter, line_no,
                                         'timestamp'))
  _check_empty(cols, inter)
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
  return cols.raw(f'recbole:{inter}', item_table=item_table, steps=steps)


# --------------------------------------------------------------------------
# Amazon reviews


def _json_lines(path: str, bad: _BadLines, *, literal_ok: bool
                ) -> Iterator[tuple[int, dict[str, Any]]]:
  with _open_text(path) as f:
    for line_no, line in enumerate(f, 1):
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
      user, item = rec['reviewerID'], rec['asin']
    except KeyError as e:
      bad(line_no, f'missing field {e.args[0]!r}.')
      continue
    rating = rec.get('overall')
    time = rec.get('unixReviewTime')
    cols.add(str(user), str(item),
             None if rating is None else _float(str(rating), reviews, line_no,
                                                'overall'),
             None if time is None else _int(str(time), reviews, line_no,
                                            'unixReviewTime'))
  _check_empty(cols, reviews)
  steps = bad.step()
  item_table = {}
  if meta is not None:
    bad_meta = _BadLines(meta, on_bad_line)
    for line_no, rec in _json_lines(meta, bad_meta, literal_ok=True):
      if 'asin' not in rec:
        bad_meta(line_no, "missing field 'asin'.")
        continue
      item_table[str(rec['asin'])] = {
          'title': _text(rec.get('title')),
          'description': _text(rec.get('description')),
          'category': _category(rec.get('categories', rec.get('category'))),
          'brand': _text(rec.get('brand')),
          'price': _text(rec.get('price')),
          'image': _first_image(rec.get('imageURLHighRes'))
          or _first_image(rec.get('imUrl')) or _first_image(rec.get('image')),
      }
    steps += bad_meta.step()
  return cols.raw(f'amazon2014:{reviews}', item_table=item_table, steps=steps)


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
      user, item = rec['user_id'], rec['parent_asin']
    except KeyError as e:
      bad(line_no, f'missing field {e.args[0]!r}.')
      continue
    rating, time = rec.get('rating'), rec.get('timestamp')
    cols.add(str(user), str(item),
             None if rating is None else _float(str(rating), reviews, line_no,
                                                'rating'),
             None if time is None else _int(str(time), reviews, line_no,
                                            'timestamp') // 1000)
  _check_empty(cols, reviews)
  steps = bad.step()
  item_table = {}
  if meta is not None:
    bad_meta = _BadLines(meta, on_bad_line)
    for line_no, rec in _json_lines(meta, bad_meta, literal_ok=False):
      if 'parent_asin' not in rec:
        bad_meta(line_no, "missing field 'parent_asin'.")
        continue
      item_table[str(rec['parent_asin'])] = {
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
  return cols.raw(f'amazon2023:{reviews}', item_table=item_table, steps=steps)


# --------------------------------------------------------------------------
# MovieLens

_ML100K_GENRES = (
    'unknown', 'Action', 'Adventure', 'Animation', "Children's", 'Comedy',
    'Crime', 'Documentary', 'Drama', 'Fantasy', 'Film-Noir', 'Horror',
    'Musical', 'Mystery', 'Romance', 'Sci-Fi', 'Thriller', 'War', 'Western')


def _ratings(path: str, delimiter: str, header: bool, on_bad_line: str
             ) -> tuple[_Columns, list[dict[str, Any]]]:
  bad = _BadLines(path, on_bad_line)
  cols = _Columns()
  rows = _delimited_rows(path, delimiter)
  if header:
    next(rows, None)
  for line_no, f in rows:
    if len(f) != 4:
      bad(line_no, f'expected 4 fields (user, item, rating, timestamp), got '
          f'{len(f)}.')
      continue
    cols.add(f[0], f[1], _float(f[2], path, line_no, 'rating'),
             _int(f[3], path, line_no, 'timestamp'))
  _check_empty(cols, path)
  return cols, bad.step()


def read_movielens100k(path: str, *, on_bad_line: str = 'error'
                       ) -> dataset_lib.RawData:
  """Reads MovieLens 100K: `u.data` (tab) and `u.item` ('|', latin-1)."""
  _check_policy(on_bad_line)
  cols, steps = _ratings(os.path.join(path, 'u.data'), '\t', False,
                         on_bad_line)
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
  return cols.raw(f'movielens100k:{path}', item_table=item_table, steps=steps)


def read_movielens_latest(path: str, *, on_bad_line: str = 'error'
                          ) -> dataset_lib.RawData:
  """Reads MovieLens latest: ratings.csv + movies.csv (or the .tsv variant).

  The TSV variant (`ratings.tsv`: userId movieId rating timestamp; `movies.tsv`:
  movieId title year genres) is the one in ../shared/data/movielens-lvlm.
  """
  _check_policy(on_bad_line)
  ratings = _first_existing(path, ('ratings.csv', 'ratings.tsv'))
  tsv = ratings.endswith('.tsv')
  if tsv:
    cols, steps = _ratings(ratings, '\t', True, on_bad_line)
  else:
    bad = _BadLines(ratings, on_bad_line)
    cols = _Columns()
    with _open_text(ratings) as f:
      reader = csv.reader(f)
      next(reader, None)
      for line_no, row in enumerate(reader, 2):
        if not row:
          continue
        if len(row) != 4:
          bad(reader.line_num, f'expected 4 fields, got {len(row)}.')
          continue
        cols.add(row[0], row[1], _float(row[2], ratings, line_no, 'rating'),
                 _int(row[3], ratings, line_no, 'timestamp'))
    _check_empty(cols, ratings)
    steps = bad.step()
  item_table = {}
  movies = os.path.join(path, 'movies.tsv' if tsv else 'movies.csv')
  if os.path.exists(movies):
    bad = _BadLines(movies, on_bad_line)
    with _open_text(movies) as f:
      reader = csv.reader(f, delimiter='\t' if tsv else ',')
      header = next(reader, [])
      for row in reader:
        if not row:
          continue
        if len(row) != len(header):
          bad(reader.line_num, f'expected {len(header)} fields, got '
              f'{len(row)}.')
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
    steps += bad.step()
  return cols.raw(f'movielens_latest:{path}', item_table=item_table,
                  steps=steps)


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


def read(fmt: str, path: str, **kwargs) -> dataset_lib.RawData:
  """Reads `path` in format `fmt` (a key of READERS)."""
  if fmt not in READERS:
    raise DataError(f'unknown data format {fmt!r}; known: '
                    f'{", ".join(sorted(READERS))}.')
  return READERS[fmt](path, **kwargs)
