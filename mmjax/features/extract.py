r"""Extracts item representations into a dataset's feature store.

Usage:
  python -m mmjax.features.extract --config configs/features/weightfree.py \
      --config.dataset_dir=/path/to/dataset [--shard 0/2] [--merge]

The config (ml_collections) holds:
  dataset_dir: the prepared dataset; or `data`, a dataset config resolved
    with `mmjax.data.prepare.ensure_dataset` when `dataset_dir` is empty.
  representations: name -> spec; `spec.extractor` names a module of
    `mmjax.features` (see `base.make_extractor`); other keys are the
    extractor's own (model, fields, pooling, ...). A spec may carry `csv`
    (path, key, column, field) to join a per-item text column from an
    external CSV (e.g. LVLM outputs `asin,result`) into the item rows under
    `field`; items absent from the CSV fail with that reason.
  batch_size, device ('cpu' | 'cuda' | 'auto'), dtype (model compute dtype:
    'float32' | 'float16' | 'bfloat16'), store_dtype ('float32' | 'float16'),
    shard_size, image_root (extra folder for relative image paths), only
    (comma-separated names to run), overwrite (recompute a representation the
    store already holds for the same spec).

Items are processed in fixed shards of `shard_size` items; shard k is written
to `<dataset_dir>/features/.partial/<name>/shard_<k>.npz` (values of the
items that succeeded) plus `shard_<k>.json` (failed items and reasons, extra
outputs), the JSON last, so a shard is complete iff its JSON exists. An
interrupted run resumes at the first missing shard. `--shard i/n` computes the
shards k with k % n == i; whichever run finds every shard complete (or is
given `--merge`) joins them into the store and removes the partials. The
manifest's `compute_seconds` sums the shards' extraction time; `time` is when
the merge finished.

A lock directory (`merging.lock`) keeps two processes from merging at once.
It records its owner (pid, host, boot id and the process's start time, in
`owner.json`), so a run killed while merging does not block the next one: a
plain restart on the same host finds the owner gone (no such pid, the pid
reused by a later process, or the machine rebooted) and takes the lock over.
An owner alive on this host leaves the representation 'pending' (it is being
merged). An owner on another host cannot be checked from here: the
representation is 'locked', the CLI prints the command that finishes it
(`--merge`, which takes over any lock but a live one of this host) and exits
non-zero.

Before any work, every representation's spec is checked (`base.check_spec`:
an unknown extractor, a keyword one-hot asked of a file that has no slots, a
`texts_from` source that is neither stored nor in the run); any problem stops
the run with all of them listed. After that, one representation that fails
(every item failed, a missing model, a bad input file) does not stop the
others: the CLI extracts the rest, prints a summary of what failed and why,
and only then exits non-zero.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import shlex
import shutil
import socket
import sys
import time
from typing import Any, Callable

from absl import app
from absl import flags
from absl import logging
import ml_collections
from ml_collections import config_flags
import numpy as np
import tqdm

from mmjax.data import dataset as dataset_lib
from mmjax.data import store
from mmjax.features import base
from mmjax.features import resolve
from mmjax.utils import cli as cli_lib

PARTIAL_DIR = '.partial'
SPEC_FILE = 'spec.json'
MERGE_LOCK = 'merging.lock'
OWNER_FILE = 'owner.json'
# A lock without an owner file is being created right now (the file follows
# the lock's mkdir within microseconds) or was left by an older version that
# wrote none; after this many seconds it is taken for the latter.
OWNERLESS_GRACE_S = 60.0
# A representation failing with one of these is recorded and the run goes on
# with the others; anything else (a bug, an interrupt) stops the run.
REPRESENTATION_ERRORS = (ValueError, OSError, ImportError, RuntimeError)
# Keys a spec inherits from the top level of the config when it lacks them.
# Every spec also gets `dataset_dir` (the resolved dataset directory), so an
# extractor can read what an earlier representation stored there (e.g.
# descriptions' `texts_from`).
INHERITED = ('batch_size', 'device', 'dtype', 'image_root', 'audio_root')

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Extraction config.')
_SHARD = flags.DEFINE_string(
    'shard', None, "'i/n': compute only the shards k with k % n == i."
)
_MERGE = flags.DEFINE_bool(
    'merge', False, 'Only join complete shards into the store.'
)


@dataclasses.dataclass
class Outcome:
  """What `run` did for one representation.

  Attributes:
    name: the representation.
    status: 'stored' (merged into the store), 'pending' (shards left for
      other processes, or another live process of this host is merging),
      'skipped' (already in the store for this spec), 'locked' (the merge
      lock of a process on another host; see the module docstring) or
      'failed' (see `error`).
    computed_shards: shard indices this call computed.
    path: the stored .npy path when status is 'stored'.
    num_items: items of the dataset (when stored).
    num_failed: items stored as failed (masked), unparsed ones included.
    num_unparsed: of those, LVLM answers that could not be parsed.
    note: why a representation is pending or locked.
    error: why it failed.
  """

  name: str
  status: str
  computed_shards: list[int]
  path: str | None = None
  num_items: int = 0
  num_failed: int = 0
  num_unparsed: int = 0
  note: str | None = None
  error: str | None = None

  @property
  def manifest_path(self) -> str | None:
    return self.path[:-len('.npy')] + '.json' if self.path else None


class MergeError(ValueError):
  """Finished shards cannot be joined into the store (the message says why)."""


class NothingStoredError(MergeError):
  """Every item of a representation failed: there is nothing to store."""


# Input problems whose message says everything: no traceback in the log.
_EXPECTED_ERRORS = (dataset_lib.DataError, base.SpecError,
                    resolve.ModelNotFoundError, MergeError)


def parse_shard(text: str | None) -> tuple[int, int]:
  """'i/n' -> (i, n); None -> (0, 1)."""
  if not text:
    return 0, 1
  try:
    i, n = (int(x) for x in text.split('/'))
  except ValueError:
    raise ValueError(f"--shard must look like 'i/n', got {text!r}.") from None
  if n < 1 or not 0 <= i < n:
    raise ValueError(f'--shard {text}: need 0 <= i < n.')
  return i, n


def resolve_dataset_dir(config: ml_collections.ConfigDict) -> str:
  """The dataset directory a config names (prepared on demand)."""
  path = config.get('dataset_dir', '')
  if path:
    return os.path.abspath(os.path.expanduser(path))
  data = config.get('data', None)
  if data is None:
    raise ValueError('config needs dataset_dir or data (a dataset config).')
  try:
    from mmjax.data import prepare  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ValueError(
        'config.data needs mmjax.data.prepare, which is not available; set '
        'config.dataset_dir instead.'
    ) from e
  if not hasattr(prepare, 'ensure_dataset'):
    raise ValueError('mmjax.data.prepare has no ensure_dataset(data_config); '
                     'set config.dataset_dir instead.')
  return os.path.abspath(os.fspath(prepare.ensure_dataset(data)))


def _spec_for(
    config: ml_collections.ConfigDict, name: str, dataset_dir: str
) -> ml_collections.ConfigDict:
  spec = ml_collections.ConfigDict(config.representations[name].to_dict())
  with spec.unlocked():
    spec.name = spec.get('name', None) or name
    spec.dataset_dir = dataset_dir
    for key in INHERITED:
      if spec.get(key, None) is None and config.get(key, None) is not None:
        spec[key] = config[key]
  return spec


def _prefailed(
    spec: ml_collections.ConfigDict, ds: dataset_lib.Dataset
) -> tuple[dict[str, list[Any]], dict[int, str], dict[str, Any]]:
  """Joined CSV columns, items that fail before extraction, and counts."""
  joined = base.spec_csv_column(spec, ds.item_ids)
  if joined is None:
    return {}, {}, {}
  info = dict(joined.info, csv_field=joined.field)
  return {joined.field: joined.texts}, joined.problems, info


def _shard_paths(partial: str, k: int) -> tuple[str, str]:
  return (os.path.join(partial, f'shard_{k:05d}.npz'),
          os.path.join(partial, f'shard_{k:05d}.json'))


def _write_json(path: str, obj: Any) -> None:
  with open(path + '.tmp', 'w', encoding='utf-8') as f:
    json.dump(obj, f, ensure_ascii=False)
  os.replace(path + '.tmp', path)


def _check_partial(partial: str, header: dict[str, Any], restart: bool):
  """Creates the partial dir or checks it was made for this exact run."""
  path = os.path.join(partial, SPEC_FILE)
  if os.path.exists(path):
    with open(path, encoding='utf-8') as f:
      old = json.load(f)
    keys = ('spec_sha256', 'item_map_hash', 'shard_size', 'num_items')
    if any(old.get(k) != header[k] for k in keys):
      if not restart:
        raise ValueError(
            f'{partial} holds shards of another configuration or item map '
            f'(spec {old.get("spec_sha256", "")[:12]} vs '
            f'{header["spec_sha256"][:12]}, shard_size {old.get("shard_size")}'
            f' vs {header["shard_size"]}). Delete it or rerun with '
            '--config.overwrite=True.'
        )
      shutil.rmtree(partial)
    else:
      return old
  os.makedirs(partial, exist_ok=True)
  _write_json(path, header)
  return header


def _make_batch(
    ds: dataset_lib.Dataset,
    items: np.ndarray,
    joined: dict[str, list[Any]],
    image_col: str | None,
    roots: list[str],
) -> base.ItemBatch:
  rows = []
  paths = []
  for it in items:
    row = {col: values[it] for col, values in ds.item_table.items()}
    for col, values in joined.items():
      row[col] = values[it]
    rows.append(row)
    paths.append(base.resolve_image_path(row.get(image_col), roots)
                 if image_col else None)
  return base.ItemBatch(
      items=items.astype(np.int32),
      raw_ids=np.asarray(ds.item_ids)[items],
      rows=rows,
      image_paths=paths,
  )


def _merge(
    dataset_dir: str,
    name: str,
    partial: str,
    header: dict[str, Any],
    ds: dataset_lib.Dataset,
    store_dtype: str,
) -> tuple[str, dict[int, str]]:
  """Joins complete shards into the store.

  Returns:
    The .npy path and the failed items (item -> reason).

  Raises:
    NothingStoredError: every item failed.
    ValueError: values beyond float16 range for a float16 store.
  """
  num_items = ds.num_items
  values = None
  failed: dict[int, str] = {}
  extra: dict[str, dict[int, Any]] = {}
  seconds = 0.0
  for k in range(header['num_shards']):
    npz, js = _shard_paths(partial, k)
    with open(js, encoding='utf-8') as f:
      meta = json.load(f)
    with np.load(npz) as z:
      items, vals = z['items'], z['values']
    if len(items):
      if values is None:
        values = np.zeros((num_items, vals.shape[1]), np.float32)
      if vals.shape[1] != values.shape[1]:
        raise MergeError(f'{npz}: dim {vals.shape[1]}, other shards '
                         f'{values.shape[1]}.')
      values[items] = vals
    failed.update({int(i): r for i, r in meta['failed'].items()})
    seconds += float(meta.get('seconds', 0.0))
    for key, per_item in meta.get('extra', {}).items():
      extra.setdefault(key, {}).update({int(i): v for i, v in per_item.items()})
  if values is None:
    kinds = sorted(_reason_kinds(failed).items(), key=lambda kv: -kv[1])
    first = failed[min(failed)] if failed else 'no items'
    where = 'kept in ' + partial if extra else 'removed: a rerun recomputes'
    if not extra:
      # Shards of failures hold nothing worth keeping, and a rerun after the
      # input or spec is fixed must not trip over them. Extra outputs (an
      # LVLM's generated text) cost compute and explain the failure: kept.
      shutil.rmtree(partial, ignore_errors=True)
    first = '' if first in dict(kinds) else f'; first: {first!r}'
    raise NothingStoredError(
        f'{name}: every item failed, nothing to store ('
        + ', '.join(f'{kind}: {n}' for kind, n in kinds[:3])
        + f'{first}; shards {where}).')
  values[np.fromiter(failed, np.int64, len(failed))] = 0.0
  if store_dtype == 'float16':
    big = np.flatnonzero(np.abs(values).max(axis=1) > np.finfo(np.float16).max)
    if len(big):
      raise MergeError(
          f'{name}: {len(big)} items (first {big[0]}) have values beyond '
          'float16 range; store them as float32 (--config.store_dtype='
          'float32). The shards are kept.')
  values = values.astype(np.dtype(store_dtype))
  manifest = dict(header['manifest'])
  reason_counts = _reason_kinds(failed)
  manifest.update(
      spec=header['spec'],
      spec_sha256=header['spec_sha256'],
      shard_size=header['shard_size'],
      num_shards=header['num_shards'],
      num_failed=len(failed),
      failed_reasons=reason_counts,
      extra_files=[f'{name}.{key}.jsonl' for key in sorted(extra)],
      # Summed over shards (and processes): what the extraction cost.
      compute_seconds=round(seconds, 3),
      time=datetime.datetime.now(datetime.timezone.utc).isoformat(),
  )
  features = os.path.join(dataset_dir, store.FEATURES_DIR)
  os.makedirs(features, exist_ok=True)
  for key, per_item in extra.items():
    path = os.path.join(features, f'{name}.{key}.jsonl')
    with open(path + '.tmp', 'w', encoding='utf-8') as f:
      for it in sorted(per_item):
        f.write(json.dumps({'item': it, 'raw_id': str(ds.item_ids[it]),
                            key: per_item[it]}, ensure_ascii=False) + '\n')
    os.replace(path + '.tmp', path)
  path = store.save(dataset_dir, name, values, manifest, ds.item_ids, failed)
  shutil.rmtree(partial)
  return path, failed


def _reason_kinds(failed: dict[int, str]) -> dict[str, int]:
  """Failure counts by the reason's kind (text before the first ':').

  Grouped by kind, not by the whole reason, which may name a file per item.
  """
  counts: dict[str, int] = {}
  for r in failed.values():
    kind = r.split(':', 1)[0]
    counts[kind] = counts.get(kind, 0) + 1
  return counts


def _is_unparsed(reason: str) -> bool:
  # descriptions.KeywordExtractor's reason for an answer without its slots.
  return reason.startswith('unparsed')


# ------------------------------------------------------------ merge lock


def _boot_id() -> str | None:
  try:
    with open('/proc/sys/kernel/random/boot_id', encoding='ascii') as f:
      return f.read().strip()
  except OSError:
    return None


def _process_start(pid: int) -> str | None:
  """When process `pid` started (clock ticks after boot); None if unknown."""
  try:
    with open(f'/proc/{pid}/stat', 'rb') as f:
      stat = f.read()
  except OSError:
    return None
  # starttime is field 22; field 2, the command name, may hold ' ' and ')'.
  return stat[stat.rindex(b')') + 2:].split()[19].decode()


def lock_owner() -> dict[str, Any]:
  """What a merge lock records about the process that holds it."""
  pid = os.getpid()
  return {
      'pid': pid,
      'host': socket.gethostname(),
      'boot_id': _boot_id(),
      # With the pid: a pid reused by a later process is not the owner.
      'start': _process_start(pid),
      'since': datetime.datetime.now(datetime.timezone.utc).isoformat(),
  }


def _read_owner(lock: str) -> dict[str, Any] | None:
  try:
    with open(os.path.join(lock, OWNER_FILE), encoding='utf-8') as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def _acquire_lock(lock: str) -> bool:
  """Creates the merge lock (True) or finds it held (False)."""
  try:
    os.mkdir(lock)  # Atomic, on NFS too: one process wins.
  except FileExistsError:
    return False
  _write_json(os.path.join(lock, OWNER_FILE), lock_owner())
  return True


def owner_state(lock: str) -> tuple[str, dict[str, Any] | None]:
  """Whether the process holding a merge lock is 'alive', 'dead' or 'unknown'.

  Returns:
    The state and the recorded owner (None when the lock has no owner file).
    'unknown' means it cannot be told from here: the owner is on another
    host, or an owner-less lock is older than `OWNERLESS_GRACE_S`.
  """
  owner = _read_owner(lock)
  if owner is None:
    try:
      age = time.time() - os.stat(lock).st_mtime
    except FileNotFoundError:
      return 'dead', None  # Released meanwhile.
    return ('alive' if age < OWNERLESS_GRACE_S else 'unknown'), None
  if owner.get('host') != socket.gethostname():
    return 'unknown', owner
  boot = _boot_id()
  if boot and owner.get('boot_id') and owner['boot_id'] != boot:
    return 'dead', owner  # The machine restarted since.
  pid = owner.get('pid')
  if not isinstance(pid, int) or pid <= 0:
    return 'unknown', owner  # os.kill(0 or -1) would signal a whole group.
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return 'dead', owner
  except PermissionError:
    pass  # Alive, another user's.
  start = _process_start(pid)
  if start and owner.get('start') and start != owner['start']:
    return 'dead', owner  # The pid now belongs to a later process.
  return 'alive', owner


def _take_over(lock: str, owner: dict[str, Any] | None) -> bool:
  """Replaces a lock held by `owner` with this process's; False if beaten.

  Two restarts may find the same stale lock. The lock is renamed aside first
  (one rename wins) and its owner compared with the stale one: if another
  process had replaced it with its own lock in between, that lock is put
  back and this process leaves the merge to it.
  """
  aside = f'{lock}.stale-{os.getpid()}-{time.monotonic_ns()}'
  try:
    os.rename(lock, aside)
  except FileNotFoundError:
    return _acquire_lock(lock)  # Released meanwhile.
  if _read_owner(aside) != owner:
    try:
      os.rename(aside, lock)
    except OSError:
      pass
    return False
  shutil.rmtree(aside, ignore_errors=True)
  return _acquire_lock(lock)


def _remove_finished_partial(partial: str) -> None:
  """Removes the shards of a merge that died after saving the store.

  The representation is stored for this spec, and the merge lock of a dead
  owner says a merge was killed between `store.save` and removing its
  shards: nothing there is needed any more.
  """
  lock = os.path.join(partial, MERGE_LOCK)
  if os.path.isdir(lock) and owner_state(lock)[0] == 'dead':
    logging.info('%s: removing the shards of a finished merge.', partial)
    shutil.rmtree(partial, ignore_errors=True)


def _describe_owner(owner: dict[str, Any] | None) -> str:
  if owner is None:
    return 'a process that recorded no owner (an older mmjax?)'
  return (f'pid {owner.get("pid")} on host {owner.get("host")} (since '
          f'{owner.get("since")})')


def _already_stored(dataset_dir: str, name: str, spec_sha: str,
                    ds: dataset_lib.Dataset, store_dtype: str) -> bool:
  _, js = store.feature_paths(dataset_dir, name)
  if name not in store.list_features(dataset_dir):
    return False
  with open(js, encoding='utf-8') as f:
    m = json.load(f)
  if not (m.get('spec_sha256') == spec_sha and m.get('dtype') == store_dtype
          and
          m.get('item_map_hash') == dataset_lib.item_map_hash(ds.item_ids)):
    return False
  # Copied in from another dataset whose item map hashes alike: the store
  # refuses it at load, so it must be extracted again, not skipped.
  mismatch = store.identity_mismatch(dataset_dir, m)
  if mismatch:
    logging.info('%s: %s', name, mismatch)
    return False
  # A representation built from a file (descriptions of an LVLM run that was
  # since re-extracted, an edited CSV) is stale when that file changed.
  for path_key, sha_key in (('source', 'source_sha256'), ('csv', 'csv_sha256')):
    source, sha = m.get(path_key, None), m.get(sha_key, None)
    if source and sha and os.path.isfile(source) and (
        base.file_sha256(source) != sha):
      logging.info('%s: %s changed since it was extracted.', name, source)
      return False
  return True


def run_one(
    config: ml_collections.ConfigDict,
    name: str,
    ds: dataset_lib.Dataset,
    dataset_dir: str,
    *,
    shard: tuple[int, int] = (0, 1),
    merge: bool = False,
    on_shard: Callable[[str, int], None] | None = None,
) -> Outcome:
  """Extracts one representation (see the module docstring)."""
  spec = _spec_for(config, name, dataset_dir)
  shard_size = int(config.get('shard_size', 1024))
  if shard_size < 1:
    raise ValueError(f'shard_size must be >= 1, got {shard_size}.')
  num_items = ds.num_items
  num_shards = max(1, math.ceil(num_items / shard_size))
  spec_sha = base.spec_fingerprint(spec)
  overwrite = bool(config.get('overwrite', False))
  store_dtype = config.get('store_dtype', 'float32')
  if not overwrite and _already_stored(dataset_dir, name, spec_sha, ds,
                                       store_dtype):
    logging.info('%s: already stored for this spec; skipped.', name)
    _remove_finished_partial(os.path.join(
        dataset_dir, store.FEATURES_DIR, PARTIAL_DIR, name))
    return Outcome(name, 'skipped', [])
  partial = os.path.join(dataset_dir, store.FEATURES_DIR, PARTIAL_DIR, name)
  header = {
      'spec_sha256': spec_sha,
      'spec': spec.to_dict(),
      'item_map_hash': dataset_lib.item_map_hash(ds.item_ids),
      'shard_size': shard_size,
      'num_items': num_items,
      'num_shards': num_shards,
  }
  if merge:
    if not os.path.exists(os.path.join(partial, SPEC_FILE)):
      raise ValueError(f'{partial}: nothing to merge for {name!r}.')
    header = _check_partial(partial, header, restart=False)
  else:
    header = _check_partial(partial, header, restart=overwrite)
  i, n = shard
  mine = [k for k in range(num_shards) if k % n == i]
  todo = [k for k in mine if not os.path.exists(_shard_paths(partial, k)[1])]
  computed = []
  if todo and not merge:
    try:
      joined, prefailed, join_info = _prefailed(spec, ds)
      extractor = base.make_extractor(spec, ds)
    except Exception:
      # A model or input that cannot be found: leave no empty partial dir.
      if not any(f.startswith('shard_') for f in os.listdir(partial)):
        shutil.rmtree(partial, ignore_errors=True)
      raise
    try:
      if 'manifest' not in header:
        manifest = dict(extractor.manifest())
        manifest.update(join_info)
        header['manifest'] = manifest
        _write_json(os.path.join(partial, SPEC_FILE), header)
      image_col = base.image_field(spec, ds)
      roots = [r for r in (spec.get('image_root', None), dataset_dir) if r]
      batch_size = int(spec.get('batch_size', None) or 32)
      total = sum(min(shard_size, num_items - k * shard_size) for k in todo)
      bar = tqdm.tqdm(total=total, desc=name, unit='item', dynamic_ncols=True,
                      disable=config.get('quiet', False))
      for k in todo:
        lo, hi = k * shard_size, min((k + 1) * shard_size, num_items)
        all_items = np.arange(lo, hi)
        failed = {int(it): prefailed[int(it)] for it in all_items
                  if int(it) in prefailed}
        items = np.array([it for it in all_items if int(it) not in failed],
                         np.int64)
        done_items, done_vals = [], []
        extra: dict[str, dict[str, Any]] = {}
        shard_start = time.perf_counter()
        for s in range(0, len(items), batch_size):
          batch = _make_batch(ds, items[s:s + batch_size], joined, image_col,
                              roots)
          result = extractor.extract(batch)
          base.check_result(result, batch, f'{name} shard {k}')
          ok = np.array([int(it) not in result.failed for it in batch.items])
          if ok.any():
            done_items.append(batch.items[ok])
            done_vals.append(result.values[ok])
          failed.update({int(it): str(r) for it, r in result.failed.items()})
          for key, vals in result.extra.items():
            extra.setdefault(key, {}).update(
                {str(int(it)): v for it, v in zip(batch.items, vals)})
          bar.update(len(batch))
        bar.update(len(all_items) - len(items))
        vals = (np.concatenate(done_vals) if done_vals
                else np.zeros((0, 0), np.float32))
        its = (np.concatenate(done_items).astype(np.int64) if done_items
               else np.zeros((0,), np.int64))
        npz, js = _shard_paths(partial, k)
        with open(npz + '.tmp', 'wb') as f:
          np.savez(f, items=its, values=vals.astype(np.float32))
        os.replace(npz + '.tmp', npz)
        _write_json(js, {'failed': {str(i): r for i, r in failed.items()},
                         'extra': extra,
                         'seconds': time.perf_counter() - shard_start})
        computed.append(k)
        if on_shard is not None:
          on_shard(name, k)
      bar.close()
    finally:
      extractor.close()
  missing = [k for k in range(num_shards)
             if not os.path.exists(_shard_paths(partial, k)[1])]
  if missing:
    if merge:
      raise MergeError(
          f'{name}: cannot merge, {len(missing)} shards missing (first '
          f'{missing[:5]}); run the remaining --shard i/n jobs.'
      )
    logging.info('%s: %d shards left for other processes.', name, len(missing))
    return Outcome(name, 'pending', computed)
  # Two `--shard i/n` processes can finish at the same moment and both find
  # every shard complete: the one that creates the lock merges, the other
  # leaves it pending. A lock whose owner died merging is taken over.
  lock = os.path.join(partial, MERGE_LOCK)
  try:
    acquired = _acquire_lock(lock)
  except FileNotFoundError:
    # The partial dir is gone: another process merged it meanwhile.
    return Outcome(name, 'pending', computed,
                   note='merged by another process meanwhile')
  if not acquired:
    state, owner = owner_state(lock)
    who = _describe_owner(owner)
    if state == 'alive' and (owner is not None or not merge):
      logging.info('%s: %s is merging it (%s).', name, who, lock)
      return Outcome(name, 'pending', computed, note=f'{who} is merging it')
    if state == 'unknown' and not merge:
      return Outcome(
          name, 'locked', computed,
          note=(f'the merge lock {lock} is held by {who}, which this host '
                'cannot check; if no process is merging it any more, '
                'finish it with --merge'))
    if not _take_over(lock, owner):
      return Outcome(name, 'pending', computed,
                     note='another process took the merge lock first')
    logging.warning('%s: took over the merge lock of %s (%s).', name, who,
                    'it is gone' if state == 'dead' else 'asked by --merge')
  try:
    with open(os.path.join(partial, SPEC_FILE), encoding='utf-8') as f:
      header = json.load(f)
    path, failed = _merge(dataset_dir, name, partial, header, ds,
                          store_dtype)
  except BaseException:
    # Leave the shards, free the lock: a rerun merges them again.
    shutil.rmtree(lock, ignore_errors=True)
    raise
  return Outcome(
      name, 'stored', computed, path, num_items=num_items,
      num_failed=len(failed),
      num_unparsed=sum(_is_unparsed(r) for r in failed.values()))


def run_order(representations: ml_collections.ConfigDict) -> list[str]:
  """Representation names, each after the one it reads (`texts_from`).

  ConfigDict iterates its keys sorted, so config order cannot express that
  descriptions of an LVLM run must come after it; this does. Otherwise the
  order is alphabetical.

  Raises:
    ValueError: a cycle of texts_from references.
  """
  names = list(representations.keys())
  order: list[str] = []
  visiting: list[str] = []

  def visit(name: str) -> None:
    if name in order:
      return
    if name in visiting:
      raise ValueError('texts_from references form a cycle: '
                       + ' -> '.join(visiting + [name]))
    visiting.append(name)
    source = representations[name].get('texts_from', None)
    if source in representations:
      visit(source)
    visiting.pop()
    order.append(name)

  for name in names:
    visit(name)
  return order


def check_specs(config: ml_collections.ConfigDict, names: list[str],
                ds: dataset_lib.Dataset, dataset_dir: str) -> None:
  """Checks every spec of a run before any work (see the module docstring).

  Raises:
    base.SpecError: every problem found, one per line.
  """
  problems = []
  for name in names:
    spec = _spec_for(config, name, dataset_dir)
    try:
      source = spec.get('texts_from', None)
      if source and source not in names:
        path = os.path.join(dataset_dir, store.FEATURES_DIR,
                            f'{source}.{base.GENERATED_TEXT}.jsonl')
        if not os.path.exists(path):
          raise base.SpecError(
              f'{name}: texts_from={source!r}, but {path} does not exist: '
              f'Extract {source!r} first (an LVLM representation: put it in '
              f'the same config, or run it with --config.only={source}).')
      base.check_spec(spec, ds)
    except REPRESENTATION_ERRORS as e:
      msg = str(e)
      problems.append(msg if msg.startswith(f'{name}:') else f'{name}: {msg}')
  if problems:
    head = (f'{len(problems)} of {len(names)} representations cannot be '
            'extracted as configured (nothing was extracted):\n  ')
    raise base.SpecError(head + '\n  '.join(problems))


def run(
    config: ml_collections.ConfigDict,
    *,
    shard: tuple[int, int] = (0, 1),
    merge: bool = False,
    on_shard: Callable[[str, int], None] | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    keep_going: bool = True,
) -> list[Outcome]:
  """Extracts every representation of a config.

  Args:
    config: see the module docstring.
    shard: (i, n): compute the shards k with k % n == i.
    merge: only join complete shards.
    on_shard: called as on_shard(name, k) after shard k is written (progress
      reporting; tests use it to interrupt a run).
    on_outcome: called with each Outcome as soon as it is known (the CLI
      prints it: a long run reports each representation when it is done).
    keep_going: a representation failing with one of REPRESENTATION_ERRORS
      gives a 'failed' Outcome and the others are extracted; False re-raises
      the error.

  Returns:
    One Outcome per representation, in run order (`run_order`).

  Raises:
    base.SpecError: a spec cannot work (checked before any work).
  """
  dataset_dir = resolve_dataset_dir(config)
  ds = dataset_lib.load(dataset_dir)
  base.check_unique_items(ds.item_ids, dataset_dir)
  names = run_order(config.representations)
  only = config.get('only', '')
  if only:
    wanted = [x.strip() for x in only.split(',') if x.strip()]
    unknown = sorted(set(wanted) - set(names))
    if unknown:
      raise base.SpecError(f'only={only!r}: unknown representations '
                           f'{unknown} (have {names}).')
    names = [x for x in names if x in wanted]
  if not merge:
    check_specs(config, names, ds, dataset_dir)
  outcomes = []
  failed: set[str] = set()
  for name in names:
    start = time.perf_counter()
    source = config.representations[name].get('texts_from', None)
    try:
      if source in failed:
        # Its text would be missing, or stale from an earlier run.
        raise base.SpecError(f'{name}: its texts_from source {source!r} '
                             'failed in this run.')
      outcome = run_one(config, name, ds, dataset_dir, shard=shard,
                        merge=merge, on_shard=on_shard)
    except REPRESENTATION_ERRORS as e:
      if not keep_going:
        raise
      # A missing optional package is a set-up problem: name its extra.
      missing = (cli_lib.describe_missing_module(e.name)
                 if isinstance(e, ModuleNotFoundError) else None)
      msg = missing or str(e)
      msg = msg[len(name) + 2:] if msg.startswith(f'{name}: ') else msg
      if missing or isinstance(e, _EXPECTED_ERRORS):
        logging.info('%s failed: %s', name, msg)  # The console says it.
      else:
        logging.warning('%s failed: %s', name, msg, exc_info=True)
      outcome = Outcome(name, 'failed', [], error=msg)
    if outcome.status in ('failed', 'locked'):
      failed.add(name)
    logging.info('%s: %s in %.1fs', name, outcome.status,
                 time.perf_counter() - start)
    if on_outcome is not None:
      on_outcome(outcome)
    outcomes.append(outcome)
  return outcomes


def describe(outcome: Outcome) -> str:
  """One console line for an Outcome.

  A stored representation says how many items it holds and how many failed
  or were unparsed (masked): those are in the manifest only, and 'stored'
  alone would hide them.
  """
  o = outcome
  if o.status == 'stored':
    if not o.num_failed:
      return f'stored all {o.num_items:,} items of {o.name}: {o.path}'
    counts = []
    if o.num_failed > o.num_unparsed:
      counts.append(f'{o.num_failed - o.num_unparsed:,} failed')
    if o.num_unparsed:
      counts.append(f'{o.num_unparsed:,} unparsed')
    return (f'stored {o.num_items - o.num_failed:,} of {o.num_items:,} items '
            f'of {o.name} ({", ".join(counts)}: see {o.manifest_path})')
  if o.status == 'skipped':
    return f'skipped {o.name}: already stored for this spec'
  if o.status == 'pending':
    done = (f'; {len(o.computed_shards)} shards computed here'
            if o.computed_shards else '')
    return (f'pending {o.name}: '
            f'{o.note or "shards left for other --shard jobs"}{done}')
  if o.status == 'locked':
    return f'LOCKED {o.name}: {o.note}'
  return f'FAILED {o.name}: {o.error}'


def summary(outcomes: list[Outcome], rerun: str) -> list[str]:
  """The closing table of the representations not stored ([] if none).

  Args:
    outcomes: what `run` returned.
    rerun: the command line to repeat (see `_rerun_command`); a locked
      representation gets it with `--merge --config.only=<name>`.
  """
  bad = [o for o in outcomes if o.status in ('failed', 'locked')]
  if not bad:
    return []
  width = max(len('representation'), *(len(o.name) for o in bad))
  lines = [f'{len(bad)} of {len(outcomes)} representations not stored '
           '(the others were extracted):',
           f'  {"representation":<{width}}  status  reason']
  for o in bad:
    reason = o.error if o.status == 'failed' else (
        f'{o.note}: {rerun} --merge --config.only={o.name}')
    lines.append(f'  {o.name:<{width}}  {o.status:<6}  {reason}')
  lines.append('Fix these and run the same command again: what is stored is '
               'skipped.')
  return lines


def _rerun_command(argv: list[str]) -> str:
  """This command line without --shard, --merge and --config.only."""
  args, skip = [], False
  for a in argv[1:]:
    if skip:
      skip = False
      continue
    flag = a.split('=', 1)[0]
    if flag in ('--shard', '--config.only'):
      skip = '=' not in a
      continue
    if flag in ('--merge', '--nomerge'):
      continue
    args.append(shlex.quote(a))
  return ' '.join(['python -m mmjax.features.extract'] + args)


def cli(config: ml_collections.ConfigDict, *, shard: tuple[int, int] = (0, 1),
        merge: bool = False, argv: list[str] | None = None,
        out=None) -> int:
  """Runs `run`, prints one line per representation and the summary.

  Returns:
    The exit status: 1 when a spec check failed, an input was bad, or a
    representation failed or is locked; 0 otherwise.
  """
  out = out or sys.stdout

  def say(o: Outcome) -> None:
    print(describe(o), file=out, flush=True)

  try:
    outcomes = run(config, shard=shard, merge=merge, on_outcome=say)
  except (base.SpecError, dataset_lib.DataError,
          resolve.ModelNotFoundError) as e:
    # Input problems: the message says what to do; a traceback would bury it.
    print(f'error: {e}', file=sys.stderr)
    return 1
  except ModuleNotFoundError as e:
    missing = cli_lib.describe_missing_module(e.name)
    if missing is None:
      raise  # Not an optional extra: a real bug, keep its traceback.
    print(f'error: {missing}', file=sys.stderr)
    return 1
  lines = summary(outcomes, _rerun_command(argv or sys.argv))
  for line in lines:
    print(line, file=out)
  return 1 if lines else 0


def main(argv):
  del argv
  config = _CONFIG.value
  if config is None:
    raise app.UsageError('--config is required.')
  try:
    shard = parse_shard(_SHARD.value)
  except ValueError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  sys.exit(cli(config, shard=shard, merge=_MERGE.value))


if __name__ == '__main__':
  app.run(main)
