"""What a run records so that it can be redone: `python -m mmjax.launch
--rerun <workdir>`.

At start (`write`): config.json (the resolved config), overrides.json (the
command-line flags), runinfo.json (git commit, dirty flag, argv, package
versions, Python, XLA_FLAGS and JAX_PLATFORMS, devices, process count, time)
and git.diff (the uncommitted changes, if any). After the data is loaded
(`record_data`): the dataset directory, manifest sha256, split and item-map
hashes, and each feature's representation, manifest sha256 and transform.
After training (`add`, from `mmjax.run`): the propagation paths the run took
(`mmjax.graph.sparse.run_record`).

A utility, so a leaf: it imports nothing of mmjax; callers pass the values
(the dataset's record is made by the data layer).

Reused workdirs (`check_resumable`): a run resumes from a workdir only when
the config it recorded (config.json) equals the new one, apart from the keys
of `RESUMABLE`, which change nothing the run computes. Otherwise the start is
refused before anything is written, since resuming another config's
checkpoint mixes two runs (a LightGCN workdir given a BPR-MF config resumed
LightGCN's parameters and reported them as BPR-MF's).
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
from typing import Any, Sequence

import ml_collections

CONFIG = 'config.json'
OVERRIDES = 'overrides.json'
RUNINFO = 'runinfo.json'
DIFF = 'git.diff'
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
PACKAGES = ('mmjax', 'jax', 'jaxlib', 'flax', 'optax', 'orbax-checkpoint',
            'ml-collections', 'absl-py', 'numpy', 'scipy')


def _is_checkout() -> bool:
  """Whether the package runs from its own git checkout (not a wheel that
  happens to sit inside some other repository)."""
  return (os.path.exists(os.path.join(REPO, '.git'))
          and os.path.exists(os.path.join(REPO, 'pyproject.toml')))


def _git(*args: str) -> str | None:
  if not _is_checkout():
    return None
  try:
    out = subprocess.run(['git', *args], cwd=REPO, capture_output=True,
                         text=True, timeout=30, check=True)
  except (OSError, subprocess.SubprocessError):
    return None
  return out.stdout


def versions() -> dict[str, str | None]:
  out = {}
  for name in PACKAGES:
    try:
      out[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      out[name] = None
  return out


def collect(argv: Sequence[str] | None = None
            ) -> tuple[dict[str, Any], str]:
  """(environment of this process, uncommitted git diff)."""
  # Imported here: launch checks a workdir (this module) before it pays for
  # importing JAX.
  import jax  # pylint: disable=g-import-not-at-top
  commit = _git('rev-parse', 'HEAD')
  diff = _git('diff', 'HEAD') or ''
  return {
      'git_commit': commit.strip() if commit else None,
      'git_dirty': bool(diff.strip()),
      'argv': list(argv if argv is not None else sys.argv),
      'python': sys.version,
      'platform': platform.platform(),
      'packages': versions(),
      'xla_flags': os.environ.get('XLA_FLAGS', ''),
      'jax_platforms': os.environ.get('JAX_PLATFORMS', ''),
      'devices': [str(d) for d in jax.devices()],
      'process_count': jax.process_count(),
      'time': datetime.datetime.now(datetime.timezone.utc).isoformat(),
  }, diff


def _write_json(path: str, value: Any) -> None:
  with open(path + '.tmp', 'w', encoding='utf-8') as f:
    json.dump(value, f, indent=2, sort_keys=True, default=str)
  os.replace(path + '.tmp', path)


def write(workdir: str, cfg: ml_collections.ConfigDict,
          overrides: Sequence[str] = (),
          argv: Sequence[str] | None = None) -> None:
  """Writes config.json, overrides.json, runinfo.json and git.diff."""
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, CONFIG), 'w', encoding='utf-8') as f:
    f.write(cfg.to_json_best_effort(indent=2, sort_keys=True))
  _write_json(os.path.join(workdir, OVERRIDES), list(overrides))
  info, diff = collect(argv)
  add(workdir, **info)  # Keeps what record_data added on a resume.
  if diff:
    with open(os.path.join(workdir, DIFF), 'w', encoding='utf-8') as f:
      f.write(diff)
  elif os.path.exists(os.path.join(workdir, DIFF)):
    # A resume from a clean tree: the earlier start's diff no longer
    # describes the code (runinfo.json says git_dirty=False).
    os.remove(os.path.join(workdir, DIFF))


def read(workdir: str) -> dict[str, Any]:
  """runinfo.json's contents ({} when there is none yet)."""
  path = os.path.join(workdir, RUNINFO)
  if not os.path.exists(path):
    return {}
  with open(path, encoding='utf-8') as f:
    return json.load(f)


def add(workdir: str, **entries: Any) -> None:
  """Sets top-level entries of runinfo.json, keeping the others."""
  _write_json(os.path.join(workdir, RUNINFO), {**read(workdir), **entries})


def record_data(workdir: str, dataset: dict[str, Any],
                features: Any) -> None:
  """Adds the dataset's and features' records to runinfo.json.

  Args:
    workdir: the run directory.
    dataset: the dataset's record (`mmjax.data.dataset.run_record`: its
      directory (absolute), name, manifest sha256, split and item-map hashes
      and counts), made by the caller so that this module, a utility, does
      not import mmjax.data.
    features: the features' record (the model context's).
  """
  add(workdir, dataset=dict(dataset), features=features)


def load_config(workdir: str) -> ml_collections.ConfigDict:
  """The resolved config a run recorded (for --rerun), locked.

  Raises:
    FileNotFoundError: the workdir has no config.json.
  """
  path = os.path.join(workdir, CONFIG)
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path}: not a run directory (no {CONFIG}).')
  with open(path, encoding='utf-8') as f:
    cfg = ml_collections.ConfigDict(json.load(f))
  cfg.lock()
  return cfg


def check_commit(workdir: str) -> str | None:
  """A warning when the recorded commit or diff differs from the tree's."""
  path = os.path.join(workdir, RUNINFO)
  if not os.path.exists(path):
    return f'{path} is missing: cannot check the code version.'
  with open(path, encoding='utf-8') as f:
    info = json.load(f)
  now, diff = collect()
  recorded = ''
  if os.path.exists(os.path.join(workdir, DIFF)):
    with open(os.path.join(workdir, DIFF), encoding='utf-8') as f:
      recorded = f.read()
  if info.get('git_commit') != now['git_commit'] or recorded != diff:
    return (f'the run was recorded at commit {info.get("git_commit")} '
            f'(dirty={info.get("git_dirty")}); the tree is at '
            f'{now["git_commit"]} (dirty={now["git_dirty"]}). Check out the '
            f'recorded commit and apply {DIFF} to redo it exactly.')
  return None


# Keys that may differ between a workdir's recorded config and the config that
# resumes it, with why each changes nothing the run computes (checked in
# tests/workdir_guard_test.py). Everything else, including the device count
# (`mesh.data`: equal within 1e-5, not bitwise) and `eval.batch_users` (it
# sets the tie-break blocks), must be equal.
RESUMABLE = {
    # Training longer continues the same trajectory; shorter is refused, as
    # a run past the new budget would report epochs beyond it. A cosine
    # schedule spans num_epochs, so there it must stay equal.
    'train.num_epochs': 'may grow, unless optim.schedule is cosine',
    # Where and how often checkpoints are kept, not what they hold.
    'ckpt.every_epochs': 'how often checkpoints are written',
    'ckpt.keep': 'how many checkpoints are kept',
    # The dataset is identified by its config hash, which excludes the root.
    'data.root': 'where datasets are stored',
    # How this process reaches the others, not what they compute.
    'mesh.coordinator': "the coordinator's address",
    'mesh.process_id': "this process's rank",
}
_ABSENT = '<absent>'
# What a run leaves once it has trained or fitted something.
_RESULTS = ('metrics.jsonl', 'checkpoints')


class WorkdirError(ValueError):
  """The workdir holds another run; the message says how to go on."""


def flatten_config(value: Any, prefix: str = '') -> dict[str, Any]:
  """A config.json's contents as dotted key -> value ('optim.lr': 0.001)."""
  if isinstance(value, dict):
    # An empty section says nothing: it equals one that a run recorded
    # before the section existed (e.g. `eval.evaluators`, added later), so
    # that run can still resume.
    out = {}
    for k, v in value.items():
      out.update(flatten_config(v, f'{prefix}.{k}' if prefix else str(k)))
    return out
  return {prefix: value}


def config_dict(cfg: ml_collections.ConfigDict) -> dict[str, Any]:
  """The config as config.json records it (tuples become lists)."""
  return json.loads(cfg.to_json_best_effort(sort_keys=True))


def config_differences(old: dict[str, Any], new: dict[str, Any]
                       ) -> list[tuple[str, Any, Any]]:
  """(dotted key, old value, new value) for every key that differs.

  A key set to None counts as absent: an optional field added to the
  configs later (a None placeholder) does not make an older run another run.
  """
  a, b = flatten_config(old), flatten_config(new)
  a = {k: v for k, v in a.items() if v is not None}
  b = {k: v for k, v in b.items() if v is not None}
  return [(k, a.get(k, _ABSENT), b.get(k, _ABSENT))
          for k in sorted(set(a) | set(b))
          if a.get(k, _ABSENT) != b.get(k, _ABSENT)]


def _refused(key: str, old: Any, new: Any, flat_new: dict[str, Any]) -> bool:
  """Whether a difference at `key` forbids resuming (see RESUMABLE)."""
  if key not in RESUMABLE:
    return True
  if key == 'train.num_epochs':
    if flat_new.get('optim.schedule') == 'cosine':
      return True
    try:
      return int(new) < int(old)
    except (TypeError, ValueError):
      return True
  return False


def has_results(workdir: str) -> bool:
  """Whether a run in `workdir` trained or fitted anything (its own folder
  or, for multi-model configs, a model's subfolder)."""
  if not os.path.isdir(workdir):
    return False
  for name in _RESULTS:
    if os.path.exists(os.path.join(workdir, name)):
      return True
  for sub in os.listdir(workdir):
    for name in _RESULTS:
      if os.path.exists(os.path.join(workdir, sub, name)):
        return True
  return False


def check_resumable(workdir: str, cfg: ml_collections.ConfigDict) -> None:
  """Refuses a workdir that holds another run; writes nothing.

  A workdir may be used when it does not exist or is empty, when it holds a
  run with the same config (up to the keys of `RESUMABLE`), which then
  resumes, or when it holds a config.json but no results (a start that
  failed before training: nothing to lose).

  Args:
    workdir: the run's output directory.
    cfg: the config that would run there.

  Raises:
    WorkdirError: the workdir holds a run of another config, or files that
      are not a run's. The message names the differing keys (old -> new) and
      the two ways on: another --workdir, or --overwrite.
  """
  if not os.path.exists(workdir):
    return
  ways = (f'use another --workdir, or pass --overwrite to move the old run '
          f'to {workdir.rstrip(os.sep)}.old-<time> and start afresh')
  if not os.path.isdir(workdir):
    raise WorkdirError(f'--workdir {workdir} is a file, not a directory.')
  path = os.path.join(workdir, CONFIG)
  if not os.path.exists(path):
    if os.listdir(workdir):
      raise WorkdirError(f'{workdir} is not empty and holds no run ({CONFIG} '
                         f'is missing): {ways}.')
    return
  if not has_results(workdir):
    return
  try:
    with open(path, encoding='utf-8') as f:
      old = json.load(f)
  except (OSError, ValueError) as e:
    raise WorkdirError(f'{path} cannot be read ({e}): {ways}.') from e
  new = config_dict(cfg)
  flat_new = flatten_config(new)
  refused = [(k, a, b) for k, a, b in config_differences(old, new)
             if _refused(k, a, b, flat_new)]
  if refused:
    shown = '; '.join(f'{k}: {a!r} -> {b!r}' for k, a, b in refused[:5])
    more = f' and {len(refused) - 5} more' if len(refused) > 5 else ''
    raise WorkdirError(f'{workdir} holds a run of another config ({shown}'
                       f'{more}), which cannot be resumed: {ways}.')


def archive(workdir: str, now: datetime.datetime | None = None) -> str | None:
  """Moves an existing workdir aside to `<workdir>.old-<UTC time>`.

  Returns:
    The new path, or None when `workdir` did not exist.
  """
  if not os.path.exists(workdir):
    return None
  now = now or datetime.datetime.now(datetime.timezone.utc)
  base = f'{os.path.abspath(workdir).rstrip(os.sep)}.old-' + now.strftime(
      '%Y%m%d-%H%M%S')
  target, n = base, 1
  while os.path.exists(target):  # Two archives within one second.
    n += 1
    target = f'{base}-{n}'
  shutil.move(workdir, target)
  return target
