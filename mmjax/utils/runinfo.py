"""What a run records so that it can be redone: `python -m mmjax.launch
--rerun <workdir>`.

At start (`write`): config.json (the resolved config), overrides.json (the
command-line flags), runinfo.json (git commit, dirty flag, argv, package
versions, Python, XLA_FLAGS and JAX_PLATFORMS, devices, process count, time)
and git.diff (the uncommitted changes, if any). After the data is loaded
(`record_data`): the dataset directory, manifest sha256, split and item-map
hashes, and each feature's representation, manifest sha256 and transform.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from typing import Any, Sequence

import jax
import ml_collections

from mmjax.data import dataset as dataset_lib

CONFIG = 'config.json'
OVERRIDES = 'overrides.json'
RUNINFO = 'runinfo.json'
DIFF = 'git.diff'
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
PACKAGES = ('jax', 'jaxlib', 'flax', 'optax', 'orbax-checkpoint',
            'ml-collections', 'absl-py', 'numpy', 'scipy')


def _git(*args: str) -> str | None:
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
  path = os.path.join(workdir, RUNINFO)
  if os.path.exists(path):  # Keep what record_data added on a resume.
    with open(path, encoding='utf-8') as f:
      old = json.load(f)
    info = {**old, **info}
  _write_json(path, info)
  if diff:
    with open(os.path.join(workdir, DIFF), 'w', encoding='utf-8') as f:
      f.write(diff)


def record_data(workdir: str, ds: dataset_lib.Dataset,
                dataset_dir: str | None,
                features: dict[str, Any]) -> None:
  """Adds the dataset's and features' hashes to runinfo.json."""
  path = os.path.join(workdir, RUNINFO)
  info = {}
  if os.path.exists(path):
    with open(path, encoding='utf-8') as f:
      info = json.load(f)
  info['dataset'] = {
      'dir': os.path.abspath(dataset_dir) if dataset_dir else None,
      'name': ds.manifest.get('name'),
      'manifest_sha256': (dataset_lib.manifest_hash(dataset_dir)
                          if dataset_dir else None),
      'split_hash': dataset_lib.split_hash(ds),
      'item_map_hash': dataset_lib.item_map_hash(ds.item_ids),
      'counts': ds.summary(),
  }
  info['features'] = features
  _write_json(path, info)


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
