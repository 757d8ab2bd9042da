r"""Prepare a dataset: reader -> preprocessing -> split -> dataset directory.

  python -m mmjax.data.prepare --config synthetic
  python -m mmjax.data.prepare --config synthetic:visual \
      --config.synthetic.num_users=500 --config.out_dir=/tmp/syn-visual
  python -m mmjax.data.prepare --config path/to/mydata.py
  python -m mmjax.data.prepare --config.name=recipes \
      --config.format=elliot --config.path=/x/recipes --config.split=fixed

`--config` names a built-in dataset (`datasets.BUILTIN`: synthetic, ml_lvlm,
ml100k, with an optional `:variant`) or a data config file anywhere; without
it the data is defined by the `--config.<field>=` flags alone, on
`datasets.base_config()` (the fields, and where data is read and written,
are described in mmjax/data/datasets.py). `--config.<field>=None` sets an
optional field (a placeholder such as implicit_threshold, reader_name or
cold) to None.

Prints a summary table (users, items, interactions, density, per-split
counts, what each step removed, and a `WARNING:` line, last, when held-out
interactions of users or items unseen in training were dropped). Without
`out_dir` the dataset goes to `<root>/<name>-<hash8>`, the hash being that of
the resolved preparation config, so two configs never share a directory and
training configs find the dataset they describe (`ensure_dataset`). A prepare
writes into a temporary folder and renames it when complete: an interrupted
prepare leaves nothing half-written. Preparing again into a directory never
deletes its extracted features: they are kept when the dataset is the same
one (same source and item map), and moved aside to `features.stale-<time>/`
otherwise (`prepare`).
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import json
import os
import shutil
import sys
from typing import Any, Sequence

from absl import app
from absl import flags
from absl import logging
import ml_collections
from ml_collections import config_flags
import numpy as np
import tqdm

from mmjax.data import dataset as dataset_lib
from mmjax.data import datasets
from mmjax.data import preprocess
from mmjax.data import splits
from mmjax.data import store
from mmjax.utils import cli as cli_lib

# Data configs are described, and the built-in ones defined, in datasets.py.
base_config = datasets.base_config
load_data_config = datasets.load
resolve_training_data = datasets.resolve_training_data
# $MMJAX_SHARED_DATA, the raw data of the built-in datasets (read at import;
# `datasets.shared_path` reads it at each call).
SHARED_DATA = datasets.shared_path()


def config_hash(cfg: ml_collections.ConfigDict) -> str:
  """Hash of what determines the dataset (not where it is written)."""
  d = cfg.to_dict()
  for key in ('out_dir', 'root', 'on_bad_line'):
    d.pop(key, None)
  if d.get('format') != 'synthetic':
    # The generator's defaults do not shape a real dataset.
    d.pop('synthetic', None)
  text = json.dumps(d, sort_keys=True, default=str)
  return hashlib.sha256(text.encode()).hexdigest()


def _csv_keys(path: str, key: str) -> set[str]:
  """The values of column `key` of a CSV file.

  Strict quoting, and every row must have the header's field count: an
  unclosed quote would otherwise swallow the following rows into one field,
  and their keys would silently go missing from the restriction.
  """
  if not os.path.exists(path):
    raise dataset_lib.DataError(f'{path}: file not found (restrict_items_csv).')
  keys = set()
  with open(path, encoding='utf-8', newline='') as f:
    reader = csv.reader(f, strict=True)
    line = 0
    try:
      header = next(reader, [])
      if key not in header:
        raise dataset_lib.DataError(f'{path}:1: no column {key!r} (has '
                                    f'{header}).')
      k, line = header.index(key), reader.line_num
      for row in reader:
        start, line = line + 1, reader.line_num
        if not row:
          continue
        if len(row) != len(header) or '\n' in row[k] or '\r' in row[k]:
          raise dataset_lib.DataError(
              f'{path}:{start}: expected {len(header)} fields with a one-line '
              f'{key!r}, got {len(row)} fields over lines {start}-{line} (an '
              'unclosed quote?).')
        keys.add(row[k])
    except csv.Error as e:
      raise dataset_lib.DataError(
          f'{path}:{line + 1}: {e} (an unclosed quote?).') from None
  return keys


# Optional data config fields -> the reader argument each one sets.
_READER_FIELDS = {'meta_path': 'meta', 'reader_name': 'name'}


def _check_path(cfg: ml_collections.ConfigDict) -> None:
  """Raises DataError when the reader's input is not there, saying why."""
  if not cfg.path:
    raise dataset_lib.DataError(
        f'dataset {cfg.name!r} (format {cfg.format!r}): no path; set it '
        '(--config.path=DIR in prepare, --config.data.path=DIR in a '
        'training config).')
  if os.path.exists(cfg.path):
    return
  hint = ''
  if f'${datasets.SHARED_DATA_ENV}' in cfg.path:
    hint = (f' (the environment variable {datasets.SHARED_DATA_ENV}, the '
            'folder that holds the raw data of the built-in datasets, is not '
            'set)')
  raise dataset_lib.DataError(f'{cfg.path}: data not found for dataset '
                              f'{cfg.name!r}{hint}.')


def check_choices(cfg: ml_collections.ConfigDict) -> None:
  """Raises DataError for a field outside its choices, before any reading.

  A typo in the split kind or the cold policy would otherwise surface only
  after the (possibly long) read and preprocessing.
  """
  from mmjax.data import readers  # pylint: disable=g-import-not-at-top
  choices = {
      'format': tuple(sorted(readers.READERS)) + ('synthetic',),
      'split': splits.KINDS, 'rounding': splits.ROUNDING,
      'cold': splits.COLD + (None,), 'on_bad_line': readers.ON_BAD_LINE,
  }
  for field, allowed in choices.items():
    if cfg[field] not in allowed:
      shown = ', '.join(str(a) for a in allowed)
      raise dataset_lib.DataError(
          f'dataset {cfg.name!r}: {field}={cfg[field]!r}: expected one of '
          f'{shown} (--config.{field}= in prepare, --config.data.{field}= '
          'in a training config).')


def build(cfg: ml_collections.ConfigDict, image_dir: str | None = None
          ) -> tuple[dataset_lib.Dataset, dict[str, Any]]:
  """Runs reader, preprocessing and split; returns (dataset, raw features)."""
  check_choices(cfg)
  if cfg.format == 'synthetic':
    from mmjax.data import synthetic  # pylint: disable=g-import-not-at-top
    raw = synthetic.to_raw(cfg.synthetic, cfg.seed, image_dir)
  else:
    from mmjax.data import readers  # pylint: disable=g-import-not-at-top
    _check_path(cfg)
    kwargs = {'on_bad_line': cfg.on_bad_line}
    for field, arg in _READER_FIELDS.items():
      value = cfg[field]
      if value in (None, ''):
        continue
      if (cfg.format in readers.READERS
          and arg not in readers.arguments(cfg.format)):
        raise dataset_lib.DataError(
            f'{field}={value!r}: the {cfg.format!r} reader takes no {arg!r} '
            f'(it takes: {", ".join(readers.arguments(cfg.format))}); leave '
            f'{field} unset (--config.{field}=None).')
      kwargs[arg] = value
    raw = readers.read(cfg.format, cfg.path, **kwargs)
  steps = list(raw.steps)
  steps.insert(0, {'step': 'read', 'interactions': len(raw), 'removed': 0})
  x = preprocess.from_raw(raw)
  src = f'dataset {cfg.name!r} ({raw.source})'
  preprocess.check_nonempty(x, steps, src)
  if cfg.restrict_items_csv:
    allowed = None
    for path in cfg.restrict_items_csv:
      keys = _csv_keys(path, cfg.restrict_items_key)
      allowed = keys if allowed is None else allowed & keys
    x = preprocess.restrict_items(
        x, allowed, steps,
        reason=f'in all {len(cfg.restrict_items_csv)} restrict_items_csv')
    preprocess.check_nonempty(x, steps, src)
  x = preprocess.implicit_threshold(x, cfg.implicit_threshold, steps)
  preprocess.check_nonempty(x, steps, src)
  if cfg.required_fields:
    x = preprocess.require_modalities(x, raw.item_table, cfg.required_fields,
                                      steps, raw.features)
    preprocess.check_nonempty(x, steps, src)
  x = preprocess.deduplicate(x, steps)
  x = preprocess.k_core(x, cfg.min_user, cfg.min_item, steps)
  preprocess.check_nonempty(x, steps, src)
  kind = cfg.split
  try:
    label = splits.assign(x.user, x.item, x.timestamp, x.split, kind=kind,
                          seed=cfg.seed, ratios=tuple(cfg.ratios),
                          cold_share=cfg.cold_share, rounding=cfg.rounding,
                          cutoffs=tuple(cfg.cutoffs))
  except ValueError as e:  # An option this data cannot take (fixed, ...).
    raise dataset_lib.DataError(f'{src}: {e}') from None
  # Warm splits evaluate known users and items only; the cold-item split's
  # point is items without training interactions.
  cold = cfg.cold or ('keep' if kind == 'cold_item' else 'drop')
  keep = splits.handle_cold(x.user, x.item, label, cold, steps)
  x, label = x.take(keep), label[keep]
  steps.append({'step': 'split', 'kind': kind,
                **splits.options(kind, ratios=tuple(cfg.ratios),
                                 rounding=cfg.rounding,
                                 cutoffs=tuple(cfg.cutoffs),
                                 cold_share=cfg.cold_share),
                'removed': 0})
  user, item, user_ids, item_ids = preprocess.remap(x, cfg.seed)
  # Catalogue items that lost (or never had) interactions leave the dataset.
  unused = len(set(map(str, raw.item_table)) - set(map(str, item_ids)))
  steps.append({'step': 'drop_items_without_interactions',
                'items_removed': unused, 'removed': 0})
  steps.append({'step': 'remap', 'method': 'seeded permutation',
                'removed': 0})
  ds = dataset_lib.Dataset(
      user=user, item=item, split=label, user_ids=user_ids,
      item_ids=item_ids, rating=x.rating, timestamp=x.timestamp,
      item_table=preprocess.item_table_columns(raw.item_table, item_ids),
      manifest={'name': cfg.name, 'source': raw.source, 'seed': cfg.seed,
                'steps': steps, 'config': json.loads(cfg.to_json()),
                'config_hash': config_hash(cfg)},
  )
  ds.validate()
  return ds, raw.features


# What a prepare writes into a dataset directory. Everything else an old
# directory holds (the feature store, moved-aside stores, a user's notes) is
# carried into the new one: preparing again must never destroy extracted
# features, which can take GPU-hours to make.
_PREPARED = frozenset({dataset_lib.MANIFEST, 'interactions', 'user_ids.npy',
                       'item_ids.npy', 'items.json', 'images'})
STALE_PREFIX = 'features.stale-'
# `extractor` of the representations `_write` copies from the source data:
# made again from the source at no cost, so never worth moving aside.
_SOURCE_EXTRACTORS = ('source', 'synthetic')


def prepare(cfg: ml_collections.ConfigDict, out_dir: str | None = None,
            *, quiet: bool = False) -> str:
  """Prepares the dataset described by `cfg` into `out_dir`; returns it.

  The dataset is written into `<out_dir>.partial` and swapped in only when
  complete. Preparing into a directory that already holds a dataset keeps
  its feature store (`features/`, extracted representations included):

  * same dataset identity (`dataset.identity`: the same source and item
    map, so every stored row still describes the same item): the old
    representations are kept byte-identical in the new `features/`, beside
    the source features this prepare writes (which replace their old
    copies);
  * another identity (the item map or the source changed), or an old
    directory without a readable manifest: the old `features/` is moved
    aside whole to `features.stale-<UTC time>/` inside the new directory,
    and a line on stdout says so. The store reader never looks there; move
    representations back by hand only if they really fit. A store holding
    only the source features an earlier prepare copied (made again from the
    source at no cost) is dropped instead.

  Anything else the old directory held that a prepare does not write itself
  is carried over too. The swap is a few renames, each atomic: an
  interrupted swap leaves the old directory at `<out_dir>.replaced`, and the
  next prepare into `out_dir` finishes it before anything else, so no
  interruption loses a representation.

  Args:
    cfg: a data config (`base_config()` fields).
    out_dir: where to write; default `cfg.out_dir`, else
      `<cfg.root>/<cfg.name>-<config hash[:8]>`.
    quiet: print neither the summary nor progress bars (a moved-aside
      feature store is reported even then).

  Returns:
    The dataset directory.
  """
  out_dir = os.path.normpath(out_dir or cfg.out_dir or dataset_dir(cfg))
  tmp, old = out_dir + '.partial', out_dir + '.replaced'
  _finish_swap(out_dir, old, quiet)  # Of an earlier, interrupted prepare.
  if os.path.exists(out_dir) and not os.path.isdir(out_dir):
    raise dataset_lib.DataError(f'{out_dir}: exists and is not a directory.')
  if os.path.exists(tmp):
    shutil.rmtree(tmp)
  os.makedirs(tmp)
  try:
    ds = _write(cfg, tmp, quiet)
  except BaseException:
    # Nothing half-written survives a failure or an interrupt.
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  if os.path.exists(out_dir):
    os.replace(out_dir, old)
  os.replace(tmp, out_dir)
  _finish_swap(out_dir, old, quiet)
  if not quiet:
    print(format_summary(ds))
    print(f'dataset written to {out_dir}')
  return out_dir


def _finish_swap(out_dir: str, old: str, quiet: bool) -> None:
  """Carries what `old` (the replaced directory) holds into `out_dir`.

  Idempotent, so that a swap interrupted at any point is finished by the
  next call: `old` is removed only after everything worth keeping left it.
  """
  if not os.path.exists(old):
    return
  if not os.path.exists(out_dir):
    # Interrupted between the two renames: the old dataset is whole again.
    os.replace(old, out_dir)
    return
  for entry in sorted(os.listdir(old)):
    target = os.path.join(out_dir, entry)
    if entry == store.FEATURES_DIR:
      _carry_features(old, out_dir, quiet)
    elif entry not in _PREPARED and not os.path.exists(target):
      os.replace(os.path.join(old, entry), target)
  shutil.rmtree(old)


def _manifest_of(dataset_dir: str) -> dict[str, Any] | None:
  return _manifest_of_file(os.path.join(dataset_dir, dataset_lib.MANIFEST))


def _manifest_of_file(path: str) -> dict[str, Any] | None:
  try:
    with open(path, encoding='utf-8') as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def _source_feature_files(folder: str) -> set[str]:
  """Files of the representations a prepare wrote from its source."""
  out = set()
  for entry in os.listdir(folder):
    if entry.endswith('.json'):
      manifest = _manifest_of_file(os.path.join(folder, entry)) or {}
      if manifest.get('extractor') in _SOURCE_EXTRACTORS:
        out.update((entry, entry[:-5] + '.npy'))
  return out


def _carry_features(old: str, new: str, quiet: bool) -> None:
  """Keeps `old`'s feature store in `new`, or moves it aside (see prepare)."""
  src = os.path.join(old, store.FEATURES_DIR)
  entries = sorted(os.listdir(src))
  if not entries:
    return
  dst = os.path.join(new, store.FEATURES_DIR)
  old_m, new_m = _manifest_of(old), _manifest_of(new) or {}
  old_id = None if old_m is None else dataset_lib.identity(old_m)
  if old_id is not None and old_id == dataset_lib.identity(new_m):
    os.makedirs(dst, exist_ok=True)
    kept = []
    for entry in entries:
      if not os.path.exists(os.path.join(dst, entry)):
        os.replace(os.path.join(src, entry), os.path.join(dst, entry))
        kept.append(entry)
    names = sorted(e[:-5] for e in kept if e.endswith('.json'))
    if names and not quiet:
      print(f'kept {len(names)} stored representations (same source and '
            f'item map): {", ".join(names)}')
    table = 'items.json'
    if names and (old_m.get('checksums', {}).get(table)
                  != new_m.get('checksums', {}).get(table)):
      # Same items, but their titles, descriptions or images changed: what
      # was extracted from them may no longer describe them.
      print(f'{new}: note: the item table changed since the kept '
            f'representations were stored ({", ".join(names)}); extract '
            'again those that read titles, descriptions or images.')
    return
  if set(entries) <= _source_feature_files(src):
    return  # Only what a prepare writes from the source: nothing to keep.
  stamp = datetime.datetime.now(datetime.timezone.utc).strftime(
      '%Y%m%dT%H%M%SZ')
  stale = os.path.join(new, STALE_PREFIX + stamp)
  k = 1
  while os.path.exists(stale):
    stale = os.path.join(new, f'{STALE_PREFIX}{stamp}-{k}')
    k += 1
  os.replace(src, stale)
  names = sorted(e[:-5] for e in entries if e.endswith('.json'))
  why = ('the previous directory has no readable manifest' if old_id is None
         else 'the source or the item map changed')
  print(f'{new}: the stored features ({len(names)} representations: '
        f'{", ".join(names) or "none complete"}) describe another dataset '
        f'({why}); moved to {stale}. Extract them again for this dataset.')


def _write(cfg: ml_collections.ConfigDict, tmp: str, quiet: bool
           ) -> dataset_lib.Dataset:
  """Builds the dataset and its source features into the folder `tmp`."""
  image_dir = os.path.join(tmp, 'images') if cfg.format == 'synthetic' else None
  ds, features = build(cfg, image_dir)
  dataset_lib.save(ds, tmp)
  index = {r: k for k, r in enumerate(ds.item_ids)}
  for name, (values, rows) in tqdm.tqdm(
      features.items(), desc='features', disable=quiet or not features):
    full = np.zeros((ds.num_items, values.shape[1]), np.float32)
    present = np.zeros(ds.num_items, bool)
    for row, raw_id in enumerate(rows):
      k = index.get(str(raw_id))
      if k is not None:
        full[k], present[k] = values[row], True
    failed = {int(k): 'no feature row in the source'
              for k in np.flatnonzero(~present)}
    store.save(tmp, name.replace('/', '_'), full,
               {'extractor': 'source' if cfg.format != 'synthetic'
                else 'synthetic', 'source': ds.manifest['source'],
                'feature': name}, ds.item_ids, failed)
  return ds


def dataset_dir(cfg: ml_collections.ConfigDict) -> str:
  """`<root>/<name>-<config hash[:8]>`: where `cfg`'s dataset is prepared."""
  return os.path.join(datasets.data_root(cfg.root),
                      f'{cfg.name}-{config_hash(cfg)[:8]}')


def ensure_dataset(data_cfg: ml_collections.ConfigDict) -> str:
  """The dataset directory a training config's `data` section describes.

  Prepares it first when it does not exist yet, or when its manifest's
  config hash differs from the resolved config's; only then is the full
  summary printed (once per dataset, not once per launch: a launch prints
  `format_summary_line`).
  """
  cfg = resolve_training_data(data_cfg)
  out_dir = dataset_dir(cfg)
  manifest = os.path.join(out_dir, dataset_lib.MANIFEST)
  if os.path.exists(manifest):
    with open(manifest, encoding='utf-8') as f:
      if json.load(f).get('config_hash') == config_hash(cfg):
        return out_dir
  logging.info('Preparing dataset %s into %s', cfg.name, out_dir)
  return prepare(cfg, out_dir)


def format_summary(ds: dataset_lib.Dataset) -> str:
  """A readable table: counts, density, splits, and each step's removals.

  Every number says what it counts: the split rows and the first removal
  column count interactions, the second column items (filled only by the
  steps that remove items as such), and the detail text names each count's
  unit in its key.
  """
  s = ds.summary()
  name = ds.manifest.get('name', '?')
  rows = [
      f'dataset {name}  ({ds.manifest.get("source", "")})',
      f'  {"users":<30}{s["users"]:>12,}',
      f'  {"items":<30}{s["items"]:>12,}',
      f'  {"interactions":<30}{s["interactions"]:>12,}',
      f'  {"density (share of pairs)":<30}{s["density"]:>12.5f}',
  ]
  for split in dataset_lib.SPLIT_NAMES:
    rows.append(f'  {split + " interactions":<30}{s[split]:>12,}')
  steps = ds.manifest.get('steps', [])
  if steps:
    rows.append(f'  {"preprocessing step":<34}{"interactions":>13}'
                f'{"items":>8}')
    rows.append(f'  {"":<34}{"removed":>13}{"removed":>8}')
    for st in steps:
      items = st.get('items_removed')
      detail = ', '.join(
          f'{_UNITS.get(k, k)}={v}' for k, v in st.items()
          if k not in ('step', 'removed', 'items_removed', 'examples'))
      rows.append(f'    {st["step"]:<32}{st.get("removed", 0):>13,}'
                  f'{"" if items is None else f"{items:,}":>8}  {detail}'
                  .rstrip())
  note = cold_note(ds)
  if note:
    rows.append(note)
  return '\n'.join(rows)


def _cold_step(ds: dataset_lib.Dataset) -> dict[str, Any] | None:
  """The manifest's cold_in_heldout step when it dropped something."""
  for st in ds.manifest.get('steps', []):
    if st.get('step') == 'cold_in_heldout' and st.get('removed'):
      return st
  return None


# Where the held-out interactions of cold users/items are reported once kept:
# the evaluators (mmjax/eval/evaluators.py) that the study uses for them.
_COLD_EVALUATOR = {
    'user': 'the cold-user evaluator (eval.evaluators kind user_groups; its '
            'lowest group, from 0 training interactions, holds them)',
    'item': 'the cold-item evaluator (eval.evaluators kind cold_items_only)',
}


def cold_note(ds: dataset_lib.Dataset) -> str | None:
  """One line saying held-out interactions of cold users/items were dropped.

  None when the `cold` policy dropped nothing. Dropping them is the default
  of the warm splits (`cold=drop`): on a sparse dataset it can remove much of
  valid and test, which the user must not miss; the line says how many, the
  option that keeps them and the evaluator that reports them once kept.
  """
  st = _cold_step(ds)
  if st is None:
    return None
  removed, policy = st['removed'], st.get('policy', 'drop')
  s = ds.summary()
  share = removed / max(removed + s['valid'] + s['test'], 1)
  whose, where = [], []
  for kind in ('user', 'item'):
    if kind == 'item' and policy == 'drop_users':
      continue
    if st.get(f'cold_{kind}_interactions'):
      n = st.get(f'cold_{kind}s')  # Absent in older manifests.
      whose.append(f'{kind}s' if n is None
                   else f'{n:,} {kind}{"" if n == 1 else "s"}')
      where.append(_COLD_EVALUATOR[kind])
  return (f'WARNING: {removed:,} valid/test interactions ({share:.0%} of '
          f'them) of {" and ".join(whose)} unseen in training were DROPPED '
          f'(cold={policy}); keep them with --config.cold=keep '
          '(--config.data.cold=keep in a training config), and '
          f'{" and ".join(where)} reports them.')


# Step details whose key does not say what it counts.
_UNITS = {'interactions': 'interactions_read',
          'min_user': 'min_interactions_per_user',
          'min_item': 'min_interactions_per_item'}


def format_summary_line(ds: dataset_lib.Dataset,
                        dataset_dir: str | None = None) -> str:
  """The dataset in one line, for a training run's log.

  The full table (`format_summary`) is printed once, when the dataset is
  prepared; every launch after that needs only to say which dataset it
  trains on.

  Args:
    ds: the dataset.
    dataset_dir: its directory; default `ds.root` (set by `dataset.load`).
  """
  s = ds.summary()
  where = dataset_dir or ds.root or '(not saved)'
  st = _cold_step(ds)
  cold = ('' if st is None else f' ({st["removed"]:,} valid/test of cold '
          f'users/items DROPPED, cold={st.get("policy", "drop")}; '
          'data.cold=keep keeps them)')
  return (f'dataset {ds.manifest.get("name", "?")}: {s["users"]:,} users, '
          f'{s["items"]:,} items, {s["train"]:,}/{s["valid"]:,}/'
          f'{s["test"]:,} train/valid/test interactions{cold}, in {where}')


# The value of a `--config.<path>=` flag that sets an optional field to None.
NONE = 'None'


def is_optional(cfg: ml_collections.ConfigDict, path: str) -> bool:
  """Whether the dotted `path` of `cfg` is an optional field.

  An optional field is a `config_dict.placeholder` (whatever its current
  value, e.g. a data config's `implicit_threshold = 4.0`) or a field whose
  value is None.
  """
  *parents, last = path.split('.')
  node = cfg
  for part in parents:
    if not isinstance(node, ml_collections.ConfigDict) or part not in node:
      return False
    node = node[part]
  if not isinstance(node, ml_collections.ConfigDict) or last not in node:
    return False
  field = dict(node.items(preserve_field_references=True))[last]
  return field is None or isinstance(
      field, ml_collections.config_dict.FieldReference)


def split_none_overrides(
    argv: Sequence[str], cfg: ml_collections.ConfigDict | None,
    name: str = 'config') -> tuple[list[str], list[str]]:
  """Takes `--<name>.<path>=None` of the optional fields of `cfg` out of argv.

  config_flags parses an override with the field's type: `None` is then
  "could not convert string to float" for a float placeholder, and the
  string 'None' for a str one. Parse the rest, then `set_none` the paths.

  Args:
    argv: the command line.
    cfg: the config the `--<name>` flag loads (None: nothing is taken out).
    name: the config flag's name.

  Returns:
    (argv without those overrides, their dotted paths).
  """
  rest, paths = [], []
  prefix = f'--{name}.'
  for arg in argv:
    path, eq, value = arg[len(prefix):].partition('=')
    if (cfg is not None and arg.startswith(prefix) and eq and value == NONE
        and is_optional(cfg, path)):
      paths.append(path)
    else:
      rest.append(arg)
  return rest, paths


def set_none(cfg: ml_collections.ConfigDict, paths: Sequence[str]) -> None:
  """Sets each dotted path of `cfg` to None."""
  for path in paths:
    *parents, last = path.split('.')
    node = cfg
    for part in parents:
      node = node[part]
    node[last] = None


def _without_config_arg(argv: Sequence[str]) -> list[str]:
  """argv without `--config=X` / `--config X` (its `--config.` flags stay)."""
  out, skip = [], False
  for i, arg in enumerate(argv):
    if skip:
      skip = False
    elif arg == '--config' and i + 1 < len(argv):
      skip = True
    elif not arg.startswith('--config='):
      out.append(arg)
  return out


def parse_flags(argv: list[str]) -> list[str]:
  """`app.run`'s flag parser; defines `--config` from what argv names.

  `--config` names a built-in dataset or a data config file (`datasets.
  load`), or is absent (`datasets.base_config()`); the config is loaded here
  and the `--config.<field>=` flags apply to it, `None` setting an optional
  field to None.
  """
  spec = cli_lib.config_arg(argv)
  try:
    cfg = datasets.load(spec) if spec else datasets.base_config()
  except dataset_lib.DataError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(1)
  argv, nones = split_none_overrides(_without_config_arg(argv), cfg)
  config_flags.DEFINE_config_dict(
      'config', cfg, 'Data preparation config: --config <built-in name | '
      'file.py>[:arg], or none (inline --config.<field>= flags).',
      lock_config=True, sys_argv=argv)  # Overrides are read from sys_argv.
  try:
    args = flags.FLAGS(argv)
  except flags.Error as e:
    print(f'FATAL Flags parsing error: {e}', file=sys.stderr)
    print('Pass --helpshort or --helpfull to see help on flags.',
          file=sys.stderr)
    sys.exit(1)
  set_none(flags.FLAGS.config, nones)
  return args


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Too many command-line arguments.')
  cfg = flags.FLAGS.config
  if not cfg.format:
    print('error: no dataset: pass --config <built-in name | data config '
          f'file.py> (built in: {", ".join(sorted(datasets.BUILTIN))}), or '
          'define the data with --config.format=... --config.path=... '
          '(see mmjax/data/datasets.py).', file=sys.stderr)
    sys.exit(1)
  if not cfg.name:
    with cfg.unlocked():
      cfg.name = os.path.basename(os.path.normpath(cfg.path)) or cfg.format
  try:
    prepare(cfg)
  except (dataset_lib.DataError, FileNotFoundError) as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(1)


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
