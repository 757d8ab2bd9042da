r"""Sweeps: a grid x seeds of `mmjax.launch` runs, run, resumed and collected.

  python -m mmjax.sweep --config configs/lightgcn.py:runlocal \
      --workdir sweeps/lgcn --grid optim.lr=1e-3,5e-3 \
      --grid model.embed_dim=32,64 --seeds 0,1,2 --workers 2
  python -m mmjax.sweep --collect sweeps/lgcn

Expansion. The `--grid key=v1,v2` flags (any `--config.` override; values
split at top-level commas, so `--grid eval.topk=(10,20),(10,50)` has two)
span a product, first flag outermost; without them the config module's
`get_sweep()` list of {dotted key: value} dicts is the grid; without either
there is one point. Each point runs once per `--seeds` value (which sets
`seed`), and `--set key=v` adds a fixed override to every run. Every value
is checked by resolving the run's config with ml_collections' own flag
parser, exactly as launch will, before anything runs. The expansion goes to
`<workdir>/sweep.json`; the same directory refuses a sweep of another config,
variant or `--set` (more grid points or seeds join the existing sweep).

Runs. Run k lives in `<workdir>/runs/<name>`, its name made of the swept
keys' last components and the seed (`lr=0.001,embed_dim=32,seed=0`), with a
short hash where that is ambiguous or longer than 120 characters. It is one
`python -m mmjax.launch --config <file[:variant]> --workdir <run dir>
--config.<key>=<value> ...` process, its stdout and stderr in
`<run dir>/train.log` and the sweep's record of it in
`<run dir>/sweep_status.json`. A run is finished when it holds results.json
and its status says done; finished runs are skipped. Any other run is
launched (again): an interrupted one resumes from its checkpoint (launch
allows that because the config is the same); a failed one (non-zero exit,
recorded with its exit code and the end of its log) is retried. Failures do
not stop the others; the sweep then exits 1 with a summary of them.

Workers. `--workers N` runs N launches at once. With N > 1 each gets a CPU
thread budget k = max(1, cores // N), cores being the CPUs this process may
use: XLA_FLAGS gains `--xla_cpu_multi_thread_eigen=false
intra_op_parallelism_threads=k` (appended to any existing flags), and
OMP_NUM_THREADS and MMJAX_KERNEL_THREADS (the propagation kernel's threads,
mmjax/graph/kernel) are set to k, so N runs never ask for more threads than
there are cores. GPUs (CUDA_VISIBLE_DEVICES when set, else `nvidia-smi -L`;
JAX is never initialised here) are dealt round-robin: with N <= G GPUs
worker i gets GPUs i, i+N, ...; with N > G it gets GPU i mod G, and workers
sharing a GPU split its memory (XLA_PYTHON_CLIENT_MEM_FRACTION, unless set).
With N = 1 the environment is passed on untouched: the run has the machine.

Beyond one machine. `--shard i/n` runs only the runs whose index is i mod n
(several machines sharing a file system); `--run_index K` runs only run K;
`--slurm` writes `<workdir>/slurm/array.sbatch` (from
launch/slurm_array.sbatch: one array task per run, each `--run_index
$SLURM_ARRAY_TASK_ID` of the same sweep) and prints the sbatch command,
submitting nothing; `--slurm_template PATH` names the template where there
is no checkout (an installed wheel). See launch/README.md, also for one run
across hosts.

Collect (after every sweep, or `--collect DIR`): results.csv, one row per run
(model, representation, control, every swept key, seed, status, best epoch,
at_budget, every val/ and test/ metric), and summary.md / summary.tex: per
(model, representation, control) the grid point (swept keys but the seed)
whose mean validation `eval.select_metric` over its seeds is best, with test
at that point as mean +- sample std over its seeds. Test is never read to
select. The control is part of the group so that a null control (shuffled
or noise features) is never pooled with, or selected against, the real
features.

Concurrency. Before launching, the sweep prepares each dataset its runs need
(under a file lock in the data root), so that N workers or array tasks never
prepare one dataset at once; and a run's folder is locked while it runs, so
that a run given to two sweep processes (overlapping shards, an array
resubmitted while tasks still run) trains once.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime
import hashlib
import io
import itertools
import json
import math
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Iterator, Sequence
import warnings

from absl import app
from absl import flags
import ml_collections
from ml_collections import config_flags
import numpy as np
import tqdm

SPEC = 'sweep.json'
STATUS = 'sweep_status.json'
LOG = 'train.log'
RESULTS = 'results.json'  # mmjax/train/loop.py RESULTS.
CONFIG = 'config.json'  # mmjax/utils/runinfo.py CONFIG.
RUNS = 'runs'
MAX_NAME = 120
LOG_TAIL = 20
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The SLURM templates of a checkout (top-level launch/). An installed wheel
# has no checkout: --slurm_template then names them.
TEMPLATE_DIR = os.path.join(REPO, 'launch')
ARRAY_TEMPLATE = 'slurm_array.sbatch'  # One task per run.
STEP_TEMPLATE = 'slurm_step.sbatch'  # One job (a study's select, collect).

USAGE = 2  # Exit status of a usage error, as mmjax.launch.
FAILURE = 1  # Exit status when runs failed.


class SweepError(ValueError):
  """A sweep that cannot start; the message is one line saying why."""


# ---------------------------------------------------------------------------
# Values: command-line text <-> Python values.


def split_values(text: str) -> list[str]:
  """Splits 'a,b,(1,2)' at the commas outside brackets and quotes."""
  out, depth, quote, start = [], 0, None, 0
  for i, ch in enumerate(text):
    if quote:
      if ch == quote:
        quote = None
    elif ch in '\'"':
      quote = ch
    elif ch in '([{':
      depth += 1
    elif ch in ')]}':
      depth -= 1
    elif ch == ',' and depth == 0:
      out.append(text[start:i])
      start = i + 1
  out.append(text[start:])
  return [v.strip() for v in out]


def format_value(value: Any) -> str:
  """`value` as `--config.key=<text>` text that ml_collections reads back.

  Floats use repr (exact), bools absl's lower-case spelling, tuples and
  dicts their literal (config_flags' tuple and ConfigDict parsers use
  `ast.literal_eval`), strings stay bare (the str parser takes the text as
  it is). `tests/sweep_test.py` checks the round trip through config_flags.
  """
  if isinstance(value, bool):
    return 'true' if value else 'false'
  if isinstance(value, float):
    return repr(value)
  if isinstance(value, (list, tuple)):
    return repr(tuple(to_jsonable(v) for v in value))
  if isinstance(value, (dict, ml_collections.ConfigDict)):
    return repr(to_jsonable(value))
  return str(value)


def to_jsonable(value: Any) -> Any:
  """ConfigDicts as dicts, tuples as lists: what config.json would hold."""
  if isinstance(value, ml_collections.ConfigDict):
    value = value.to_dict()
  if isinstance(value, dict):
    return {str(k): to_jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [to_jsonable(v) for v in value]
  if isinstance(value, ml_collections.FieldReference):
    return to_jsonable(value.get())
  return value


def display(value: Any) -> str:
  """A compact, readable text of a value, for run names and tables."""
  if isinstance(value, bool):
    return 'true' if value else 'false'
  if value is None:
    return 'none'
  if isinstance(value, float):
    return repr(value)
  if isinstance(value, dict):
    return '+'.join(f'{k}-{display(v)}' for k, v in sorted(value.items())
                    ) or 'empty'
  if isinstance(value, (list, tuple)):
    return '-'.join(display(v) for v in value) or 'empty'
  return str(value)


def get_path(cfg: Any, key: str) -> Any:
  """The value at dotted `key` of a ConfigDict or nested dict (KeyError)."""
  node = cfg
  for part in key.split('.'):
    node = node[part]
  return node


# ---------------------------------------------------------------------------
# Configs, loaded as mmjax.launch loads them.


def load_module(config_file: str) -> Any:
  """The config module at `config_file`, loaded by path as config_flags does.

  Raises:
    SweepError: the file is missing or fails to import.
  """
  import importlib.util  # pylint: disable=g-import-not-at-top
  if not os.path.isfile(config_file):
    raise SweepError(f'no such file {config_file} (the --config file)')
  spec = importlib.util.spec_from_file_location('mmjax_sweep_config',
                                                config_file)
  module = importlib.util.module_from_spec(spec)
  try:
    spec.loader.exec_module(module)
  except Exception as e:  # pylint: disable=broad-except
    raise SweepError(f'{config_file}: {type(e).__name__}: {e}') from e
  return module


def _parse(config_spec: str, overrides: Sequence[str]
           ) -> ml_collections.ConfigDict:
  argv = ['sweep', f'--config={config_spec}', *overrides]
  values = flags.FlagValues()
  # config_flags finds the override flags in `sys_argv` (default sys.argv).
  config_flags.DEFINE_config_file('config', None, 'Experiment config file.',
                                  flag_values=values, lock_config=True,
                                  sys_argv=argv)
  with warnings.catch_warnings():
    # config_flags loads the file with the deprecated
    # SourceFileLoader.load_module: one warning per run of a sweep.
    warnings.simplefilter('ignore', DeprecationWarning)
    values(argv)
    return values.config


def _one_line(error: Exception) -> str:
  lines = [line.strip() for line in str(error).splitlines() if line.strip()]
  return lines[-1] if lines else type(error).__name__


def _key_problem(cfg: ml_collections.ConfigDict, key: str) -> str | None:
  """Why dotted `key` names no field of `cfg` (with the closest), or None."""
  import difflib  # pylint: disable=g-import-not-at-top
  node, done = cfg, []
  for part in key.split('.'):
    if not isinstance(node, ml_collections.ConfigDict):
      return f'{".".join(done)} is a value, not a section'
    if part not in node:
      close = difflib.get_close_matches(part, list(node.keys()), n=1)
      hint = f'; did you mean {".".join(done + close)}?' if close else ''
      return f'unknown key {".".join(done + [part])}{hint}'
    node = node[part]
    done.append(part)
  return None


def resolve(config_spec: str, overrides: Sequence[str]
            ) -> ml_collections.ConfigDict:
  """The config that `mmjax.launch --config spec <overrides>` would train.

  Parsed by config_flags itself (locked, as launch defines its flag), so a
  misspelt key or a value of the wrong type fails here, before any run.

  Args:
    config_spec: 'path[:variant]'.
    overrides: '--config.key=text' flags.

  Raises:
    SweepError: the config or an override cannot be read; the message
      names the first override that fails on its own.
  """
  try:
    return _parse(config_spec, overrides)
  except Exception as e:  # pylint: disable=broad-except
    error = e
  try:
    base = _parse(config_spec, [])
  except Exception as e:  # pylint: disable=broad-except
    raise SweepError(f'{config_spec}: {_one_line(e)}') from e
  for flag in overrides:
    problem = _key_problem(base, flag[len('--config.'):].partition('=')[0])
    if problem:
      raise SweepError(f'{flag}: {problem}') from error
  for flag in overrides:
    try:
      _parse(config_spec, [flag])
    except Exception as e:  # pylint: disable=broad-except
      raise SweepError(f'{flag}: {_one_line(e)}') from e
  raise SweepError(f'{config_spec}: {_one_line(error)}') from error


@dataclasses.dataclass(frozen=True)
class Run:
  """One run of a sweep.

  Attributes:
    index: its position in the expansion (`--run_index`, `--shard`).
    name: its folder under <workdir>/runs.
    overrides: swept key -> value as the resolved config holds it (seed
      included when --seeds is given), JSON-compatible.
    args: the `--config.` flags of its launch (--set ones first).
    config: its own config 'path[:variant]', or None for the sweep's
      (a study's final sweep runs several models' configs).
  """
  index: int
  name: str
  overrides: dict[str, Any]
  args: tuple[str, ...]
  config: str | None = None


def _key_label(key: str) -> str:
  return key.rsplit('.', 1)[-1]


def _short_hash(overrides: dict[str, Any]) -> str:
  text = json.dumps(overrides, sort_keys=True, default=str)
  return hashlib.sha1(text.encode()).hexdigest()[:6]


def sanitize(text: str) -> str:
  """File-system safe: letters, digits and `._,=+@-`; others become '_'."""
  return re.sub(r'_+', '_', re.sub(r'[^A-Za-z0-9._,=+@-]', '_', text))


def run_names(points: Sequence[dict[str, Any]]) -> list[str]:
  """Readable, unique folder names, `lr=0.001,embed_dim=32,seed=0`.

  Each name lists the last component of each key with its value. Where two
  keys of the sweep share a last component (model.reg_weight and
  optim.reg_weight), a name exceeds MAX_NAME characters, or two names come
  out equal after sanitising, a hash of the full overrides is appended.
  """
  keys = list(dict.fromkeys(k for p in points for k in p))
  labels = [_key_label(k) for k in keys]
  ambiguous = len(set(labels)) < len(labels)
  names = []
  for p in points:
    name = sanitize(','.join(f'{_key_label(k)}={display(v)}'
                              for k, v in p.items())) or 'default'
    if ambiguous or len(name) > MAX_NAME:
      name = f'{name[:MAX_NAME - 7]}-{_short_hash(p)}'
    names.append(name)
  counts: dict[str, int] = {}
  for n in names:
    counts[n] = counts.get(n, 0) + 1
  return [f'{n[:MAX_NAME - 7]}-{_short_hash(p)}' if counts[n] > 1 else n
          for n, p in zip(names, points)]


def parse_assignments(items: Sequence[str], flag: str,
                      split: bool) -> dict[str, Any]:
  """{key: text} (or {key: [texts]} when split) from 'key=value' flags."""
  out: dict[str, Any] = {}
  for item in items or ():
    key, eq, value = item.partition('=')
    key = key.strip()
    if key.startswith('config.'):
      key = key[len('config.'):]
    if not eq or not key:
      raise SweepError(f'--{flag} {item}: expected key=value')
    if key in out:
      raise SweepError(f'--{flag} {key} is given twice')
    out[key] = split_values(value) if split else value
    if split and any(v == '' for v in out[key]):
      raise SweepError(f'--{flag} {item}: an empty value')
  return out


def parse_seeds(text: str | None) -> list[int] | None:
  if not text:
    return None
  try:
    seeds = [int(s) for s in text.split(',')]
  except ValueError:
    raise SweepError(f'--seeds {text}: expected integers, e.g. 0,1,2'
                     ) from None
  if len(set(seeds)) < len(seeds):
    raise SweepError(f'--seeds {text}: a seed is repeated')
  return seeds


def parse_shard(text: str | None) -> tuple[int, int] | None:
  if not text:
    return None
  match = re.fullmatch(r'(\d+)/(\d+)', text.strip())
  if not match or not int(match[1]) < int(match[2]):
    raise SweepError(f'--shard {text}: expected i/n with 0 <= i < n')
  return int(match[1]), int(match[2])


def same_value(a: Any, b: Any) -> bool:
  """Equal as JSON (tuples and lists alike, ConfigDicts as dicts)."""
  return json.dumps(to_jsonable(a), sort_keys=True) == json.dumps(
      to_jsonable(b), sort_keys=True)


def expand(config_spec: str, grid: dict[str, list[str]] | None = None,
           sets: dict[str, str] | None = None,
           seeds: Sequence[int] | None = None,
           use_get_sweep: bool = True) -> tuple[str, list[Run]]:
  """The runs of a sweep.

  Args:
    config_spec: 'path[:variant]'.
    grid: key -> texts of its values (--grid); empty/None: get_sweep().
    sets: key -> text, fixed in every run (--set).
    seeds: the seeds, or None to keep the config's seed.
    use_get_sweep: without `grid`, expand the config's get_sweep() (False:
      one point, as a study's empty tuning grid asks).

  Returns:
    ('grid' | 'get_sweep' | 'single', the runs in order).

  Raises:
    SweepError: a bad key or value (naming it), a --set key that is also
      swept, a get_sweep value the command line cannot carry, or a
      multi-model config.
  """
  path = config_spec.partition(':')[0]
  module = load_module(path)
  sets = dict(sets or {})
  set_args = [f'--config.{k}={v}' for k, v in sets.items()]
  base = resolve(config_spec, set_args)
  if tuple(base.get('models') or ()):
    raise SweepError(f'{config_spec} is a multi-model config (models='
                     f'{tuple(base.models)}); sweep one model per config, '
                     'e.g. with --grid model.name=...')
  expected: list[dict[str, Any] | None]
  if grid:
    source = 'grid'
    keys = list(grid)
    points = [dict(zip(keys, texts))
              for texts in itertools.product(*grid.values())]
    expected = [None] * len(points)
  elif use_get_sweep and hasattr(module, 'get_sweep'):
    source = 'get_sweep'
    expected = [dict(p) for p in module.get_sweep()]
    points = [{k: format_value(v) for k, v in p.items()} for p in expected]
    if not points:
      raise SweepError(f'{path}: get_sweep() returned no points')
  else:
    source, points, expected = 'single', [{}], [None]
  if seeds is not None:
    if any('seed' in p for p in points):
      raise SweepError('the grid sets `seed` and --seeds is given: use one')
    points = [{**p, 'seed': str(s)} for p in points for s in seeds]
    expected = [e if e is None else {**e, 'seed': s}
                for e in expected for s in seeds]
  clash = sorted(set(sets) & {k for p in points for k in p})
  if clash:
    raise SweepError(f'--set {clash[0]} is also swept; set it or sweep it')
  resolved_points = []
  for point, want in zip(points, expected):
    args = [f'--config.{k}={v}' for k, v in point.items()]
    cfg = resolve(config_spec, set_args + args)
    got = {k: to_jsonable(get_path(cfg, k)) for k in point}
    for k, v in (want or {}).items():
      if not same_value(got[k], v):
        raise SweepError(f'get_sweep() value {k}={v!r} reads back as '
                         f'{got[k]!r} from the command line')
    resolved_points.append((got, tuple(set_args + args)))
  names = run_names([g for g, _ in resolved_points])
  return source, [Run(i, n, g, a) for i, (n, (g, a))
                  in enumerate(zip(names, resolved_points))]


def runs_of_this_process(runs: Sequence[Run],
                         shard: tuple[int, int] | None = None,
                         run_index: int | None = None) -> list[Run]:
  """The runs this process owns: all, those of index i mod n, or one.

  Raises:
    SweepError: `run_index` is out of range.
  """
  if run_index is not None:
    if not 0 <= run_index < len(runs):
      raise SweepError(f'--run_index {run_index}: the sweep has {len(runs)} '
                       f'runs (0..{len(runs) - 1})')
    return [runs[run_index]]
  if shard:
    return [r for r in runs if r.index % shard[1] == shard[0]]
  return list(runs)


# ---------------------------------------------------------------------------
# The sweep directory.


def write_json(path: str, value: Any) -> None:
  """Atomic (unique temporary file + rename): shards may write at once."""
  tmp = f'{path}.{socket.gethostname()}.{os.getpid()}.tmp'
  with open(tmp, 'w', encoding='utf-8') as f:
    json.dump(value, f, indent=2, sort_keys=True, default=str)
  os.replace(tmp, path)


def _read_json(path: str) -> Any:
  try:
    with open(path, encoding='utf-8') as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def make_spec(config_spec: str, source: str, grid: dict[str, list[str]],
              sets: dict[str, str], seeds: Sequence[int] | None,
              runs: Sequence[Run]) -> dict[str, Any]:
  path, _, variant = config_spec.partition(':')
  return json.loads(json.dumps({
      'config': os.path.abspath(path), 'variant': variant or None,
      'source': source, 'grid': grid or None, 'sets': sets,
      'seeds': list(seeds) if seeds is not None else None,
      'runs': [{'name': r.name, 'overrides': r.overrides} for r in runs],
  }, default=str))


def write_spec(workdir: str, spec: dict[str, Any]) -> dict[str, Any]:
  """Writes sweep.json; joins an existing sweep of the same config.

  The same config file, variant and --set join: runs not yet listed are
  appended (more seeds or grid values). Anything else is refused.

  Returns:
    The spec written (the union of the old and new runs).

  Raises:
    SweepError: the directory holds a sweep of another config.
  """
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, SPEC)
  old = _read_json(path)
  if old is None:
    if os.path.exists(path):
      raise SweepError(f'{path} cannot be read; use another --workdir')
    write_json(path, spec)
    return spec
  for key, what in (('config', 'config file'), ('variant', 'config variant'),
                    ('sets', 'set of --set overrides')):
    if old.get(key) != spec[key]:
      raise SweepError(
          f'{workdir} holds a sweep of another {what} ({old.get(key)!r}, now '
          f'{spec[key]!r}); use another --workdir')
  known = {r['name']: r for r in old.get('runs', [])}
  for r in spec['runs']:
    if r['name'] in known and not same_value(known[r['name']]['overrides'],
                                         r['overrides']):
      raise SweepError(f'{workdir}: run {r["name"]} exists with other '
                       'overrides; use another --workdir')
  merged = dict(spec)
  merged['runs'] = old.get('runs', []) + [r for r in spec['runs']
                                          if r['name'] not in known]
  if not same_value(merged, old):
    write_json(path, merged)
  return merged


def run_dir(workdir: str, name: str) -> str:
  return os.path.join(workdir, RUNS, name)


def read_status(directory: str) -> dict[str, Any]:
  return _read_json(os.path.join(directory, STATUS)) or {}


def is_finished(directory: str) -> bool:
  """results.json is there and the sweep recorded the run as done."""
  return (os.path.exists(os.path.join(directory, RESULTS)) and
          read_status(directory).get('state') == 'done')


def log_tail(path: str, lines: int = LOG_TAIL) -> list[str]:
  try:
    with open(path, encoding='utf-8', errors='replace') as f:
      text = f.read()[-50_000:]
  except OSError:
    return []
  # tqdm bars redraw with carriage returns: keep each line's last state.
  out = [line.rsplit('\r', 1)[-1].rstrip() for line in text.splitlines()]
  return [line for line in out if line][-lines:]


# ---------------------------------------------------------------------------
# Workers' environments.


def available_cores() -> int:
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:
    return os.cpu_count() or 1


def detect_gpus(env: dict[str, str]) -> list[str]:
  """Visible GPU ids, found without initialising JAX.

  CUDA_VISIBLE_DEVICES when set (empty or -1: none), else the lines of
  `nvidia-smi -L` when that command exists, else none.
  """
  visible = env.get('CUDA_VISIBLE_DEVICES')
  if visible is not None:
    ids = [v.strip() for v in visible.split(',') if v.strip()]
    return [] if ids in ([], ['-1']) else ids
  if not shutil.which('nvidia-smi'):
    return []
  try:
    out = subprocess.run(['nvidia-smi', '-L'], capture_output=True,
                         text=True, timeout=30, check=True).stdout
  except (OSError, subprocess.SubprocessError):
    return []
  return [str(i) for i, line in enumerate(
      line for line in out.splitlines() if line.startswith('GPU '))]


def worker_env(slot: int, workers: int, base: dict[str, str], cores: int,
               gpus: Sequence[str]) -> dict[str, str]:
  """The environment of worker `slot` of `workers` (module docstring rule).

  Args:
    slot: the worker, 0 <= slot < workers.
    workers: how many run at once.
    base: the sweep's environment.
    cores: CPUs this sweep may use.
    gpus: visible GPU ids.
  """
  env = dict(base)
  if workers <= 1:
    return env
  k = max(1, cores // workers)
  env['XLA_FLAGS'] = (env.get('XLA_FLAGS', '') + ' --xla_cpu_multi_thread_'
                      f'eigen=false intra_op_parallelism_threads={k}').strip()
  env['OMP_NUM_THREADS'] = str(k)
  env['MMJAX_KERNEL_THREADS'] = str(k)
  if gpus:
    g = len(gpus)
    if workers <= g:
      env['CUDA_VISIBLE_DEVICES'] = ','.join(gpus[slot::workers])
    else:
      env['CUDA_VISIBLE_DEVICES'] = gpus[slot % g]
      sharers = len(range(slot % g, workers, g))
      if sharers > 1 and 'XLA_PYTHON_CLIENT_MEM_FRACTION' not in base:
        env['XLA_PYTHON_CLIENT_MEM_FRACTION'] = (
            f'{math.floor(90 / sharers) / 100:.2f}')
  return env


# ---------------------------------------------------------------------------
# Preparing data once.


@contextlib.contextmanager
def _file_lock(path: str) -> Iterator[None]:
  """An exclusive flock on `path` (shards and array tasks prepare once)."""
  import fcntl  # pylint: disable=g-import-not-at-top
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'a', encoding='utf-8') as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


def prepare_data(configs: Sequence[ml_collections.ConfigDict]) -> None:
  """Prepares each distinct dataset of `configs` once, before any run.

  Without it, N workers (or array tasks) starting on a fresh dataset would
  all prepare it at once into the same folder. A dataset that cannot be
  prepared is left to the runs, whose logs then say why.
  """
  from mmjax.data import prepare  # pylint: disable=g-import-not-at-top
  seen = set()
  for cfg in configs:
    key = cfg.data.to_json(sort_keys=True)
    if key in seen:
      continue
    seen.add(key)
    try:
      data_cfg = prepare.resolve_training_data(cfg.data)
      with _file_lock(os.path.join(data_cfg.root, '.mmjax-prepare.lock')):
        prepare.ensure_dataset(cfg.data)
    except Exception as e:  # pylint: disable=broad-except
      print(f'warning: data.name={cfg.data.name}: not prepared here '
            f'({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""}'
            '); each run will try.', file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Running.

RUN_LOCK = '.sweep.lock'


@contextlib.contextmanager
def _run_lock(directory: str) -> Iterator[bool]:
  """Yields whether this process holds the run's lock (non-blocking).

  Two sweep processes given the same run (overlapping shards, an array
  resubmitted while tasks still run) would train into one workdir at once;
  the second sees the lock held and leaves the run alone.
  """
  import fcntl  # pylint: disable=g-import-not-at-top
  with open(os.path.join(directory, RUN_LOCK), 'a', encoding='utf-8') as f:
    try:
      fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
      yield False
      return
    try:
      yield True
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


def _now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).isoformat(
      timespec='seconds')


def launch_command(config_spec: str, directory: str, run: Run) -> list[str]:
  path, colon, variant = config_spec.partition(':')
  return [sys.executable, '-m', 'mmjax.launch', '--config',
          os.path.abspath(path) + colon + variant, '--workdir', directory,
          *run.args]


def _select_metric(directory: str) -> str:
  cfg = _read_json(os.path.join(directory, CONFIG)) or {}
  return (cfg.get('eval') or {}).get('select_metric') or 'recall@20'


def _fmt(x: Any) -> str:
  try:
    return f'{float(x):.4f}'
  except (TypeError, ValueError):
    return '-'


def describe_done(directory: str) -> str:
  """'val/recall@20 0.1234, test 0.1100, best epoch 14' from results.json."""
  results = _read_json(os.path.join(directory, RESULTS)) or {}
  metric = _select_metric(directory)
  best = results.get('best') or {}
  epoch = 'fit' if results.get('fitted') else results.get('best_epoch', '-')
  text = (f'val/{metric} {_fmt(best.get("val/" + metric))}, test '
          f'{_fmt(best.get("test/" + metric))}, best epoch {epoch}')
  if results.get('at_budget'):
    text += ' (at budget)'
  return text


class Runner:
  """Runs launches on N worker threads, each one subprocess at a time."""

  def __init__(self, config_spec: str, workdir: str, workers: int,
               env: dict[str, str] | None = None, progress: bool = True):
    self.config_spec = config_spec
    self.workdir = workdir
    self.workers = max(1, int(workers))
    base = dict(os.environ if env is None else env)
    gpus = detect_gpus(base) if self.workers > 1 else []
    self.envs = [worker_env(i, self.workers, base, available_cores(), gpus)
                 for i in range(self.workers)]
    self.progress = progress
    self._lock = threading.Lock()
    self._procs: dict[int, subprocess.Popen] = {}
    self._stop = threading.Event()

  def _run_one(self, run: Run, env: dict[str, str]) -> dict[str, Any]:
    """Launches `run` unless another process is running or has run it."""
    directory = run_dir(self.workdir, run.name)
    os.makedirs(directory, exist_ok=True)
    with _run_lock(directory) as owned:
      if not owned:
        return {'state': 'busy', 'wall_s': 0.0}
      if is_finished(directory):
        return {'state': 'finished elsewhere', 'wall_s': 0.0}
      return self._launch(run, directory, env)

  def _launch(self, run: Run, directory: str, env: dict[str, str]
              ) -> dict[str, Any]:
    config_spec = run.config or self.config_spec
    cfg_path = os.path.join(directory, CONFIG)
    if not os.path.exists(cfg_path):
      # launch refuses a non-empty folder that holds no run (config.json);
      # train.log and the status make it non-empty, so the folder first
      # gets the config this run resolves to, which launch then rewrites.
      cfg = resolve(config_spec, run.args)
      with open(cfg_path, 'w', encoding='utf-8') as f:
        f.write(cfg.to_json_best_effort(indent=2, sort_keys=True))
    cmd = launch_command(config_spec, directory, run)
    status = {'state': 'running', 'started': _now(),
              'host': socket.gethostname(), 'command': cmd,
              'overrides': run.overrides}
    write_json(os.path.join(directory, STATUS), status)
    t0 = time.monotonic()
    with open(os.path.join(directory, LOG), 'a', encoding='utf-8') as log:
      log.write(f'# {_now()} {shlex.join(cmd)}\n')
      log.flush()
      proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                              env=env)
      with self._lock:
        self._procs[run.index] = proc
      code = proc.wait()
      with self._lock:
        self._procs.pop(run.index, None)
    status['wall_s'] = round(time.monotonic() - t0, 2)
    status['ended'] = _now()
    status['exit_code'] = code
    if self._stop.is_set():
      status['state'] = 'interrupted'
    elif code == 0 and os.path.exists(os.path.join(directory, RESULTS)):
      status['state'] = 'done'
    else:
      status['state'] = 'failed'
      status['log_tail'] = log_tail(os.path.join(directory, LOG))
      if code == 0:
        status['log_tail'].append(f'exited 0 without {RESULTS}')
    write_json(os.path.join(directory, STATUS), status)
    return status

  def run(self, runs: Sequence[Run]) -> list[tuple[Run, dict[str, Any]]]:
    """Runs `runs`; returns (run, status) in the order they finished."""
    pending = list(runs)
    finished: list[tuple[Run, dict[str, Any]]] = []
    bar = tqdm.tqdm(total=len(pending), unit='run', dynamic_ncols=True,
                    disable=not self.progress or len(pending) < 2,
                    file=sys.stderr)

    def report(run: Run, status: dict[str, Any]) -> None:
      directory = run_dir(self.workdir, run.name)
      with self._lock:
        finished.append((run, status))
        head = (f'[{len(finished)}/{len(runs)}] {run.name}')
        if status['state'] == 'done':
          line = (f'{head} done in {status["wall_s"]:.1f} s: '
                  f'{describe_done(directory)}')
        elif status['state'] == 'failed':
          tail = status.get('log_tail') or ['(empty log)']
          line = (f'{head} FAILED (exit {status["exit_code"]}) in '
                  f'{status["wall_s"]:.1f} s: {tail[-1]}')
        elif status['state'] == 'busy':
          line = f'{head} skipped: another sweep process is running it'
        elif status['state'] == 'finished elsewhere':
          line = f'{head} skipped: another sweep process finished it'
        else:
          line = f'{head} interrupted'
        tqdm.tqdm.write(line, file=sys.stdout)
        sys.stdout.flush()
        bar.update(1)

    def worker(slot: int) -> None:
      while not self._stop.is_set():
        with self._lock:
          if not pending:
            return
          run = pending.pop(0)
        try:
          status = self._run_one(run, self.envs[slot])
        except Exception as e:  # pylint: disable=broad-except
          # The sweep's own trouble with one run (a full disk, a config
          # file edited under it) is that run's failure, not the sweep's.
          status = {'state': 'failed', 'exit_code': None, 'wall_s': 0.0,
                    'log_tail': [f'sweep: {type(e).__name__}: {e}']}
        report(run, status)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True)
               for i in range(min(self.workers, len(pending)))]
    for t in threads:
      t.start()
    try:
      while any(t.is_alive() for t in threads):
        for t in threads:
          t.join(timeout=0.5)
    except KeyboardInterrupt:
      self._stop.set()
      with self._lock:
        procs = list(self._procs.values())
      for p in procs:
        p.terminate()
      for t in threads:
        t.join(timeout=60)
      bar.close()
      raise
    bar.close()
    return finished


# ---------------------------------------------------------------------------
# SLURM.


def find_template(given: str | None, name: str = ARRAY_TEMPLATE) -> str:
  """The path of SLURM template `name` (ARRAY_TEMPLATE or STEP_TEMPLATE).

  Args:
    given: --slurm_template: a directory holding the templates, or the
      array template's file (the step template is then looked up beside
      it); None: the checkout's launch/.

  Raises:
    SweepError: no such file, in one line naming the flag.
  """
  if given is None:
    path = os.path.join(TEMPLATE_DIR, name)
  elif os.path.isdir(given):
    path = os.path.join(given, name)
  elif name == ARRAY_TEMPLATE:
    path = given
  else:
    path = os.path.join(os.path.dirname(os.path.abspath(given)), name)
  if not os.path.isfile(path):
    where = ('the checkout\'s launch/ is missing (mmjax installed without '
             'its repository?)' if given is None else 'not found')
    raise SweepError(f'no SLURM template {path}: {where}; give '
                     f'--slurm_template PATH (a directory with {ARRAY_TEMPLATE}'
                     f' and {STEP_TEMPLATE}, e.g. launch/ of the mmjax '
                     'repository, or your own array template file)')
  return path


def slurm_script(template: str, *, job_name: str, num_runs: int,
                 workdir: str, args: Sequence[str],
                 module: str = 'mmjax.sweep',
                 template_path: str = ARRAY_TEMPLATE) -> str:
  """A job script: `template` with its @@NAME@@ fields filled.

  Args:
    template: the template's text (`find_template`).
    job_name: the job's name (characters SLURM dislikes become '_').
    num_runs: the array's tasks (a step template has no array: 1).
    workdir: the sweep or study directory (task logs in its slurm/).
    args: the command's flags after `python -m <module>`.
    module: the module the job runs.
    template_path: the template's path, for error messages.

  Raises:
    SweepError: the template has a field this function does not fill.
  """
  fields = {
      'JOB_NAME': re.sub(r'[^A-Za-z0-9._-]', '_', job_name) or 'mmjax-sweep',
      'LAST_INDEX': str(num_runs - 1),
      'NUM_RUNS': str(num_runs),
      'SLURM_DIR': os.path.join(os.path.abspath(workdir), 'slurm'),
      'REPO': shlex.quote(os.getcwd()),
      'PYTHON': shlex.quote(sys.executable),
      'MODULE': module,
      'ARGS': ' '.join(shlex.quote(a) for a in args),
  }
  text = template
  for key, value in fields.items():
    text = text.replace(f'@@{key}@@', value)
  left = re.findall(r'@@[A-Z_]+@@', text)
  if left:
    raise SweepError(f'{template_path}: unknown fields {sorted(set(left))}')
  return text


def read_template(given: str | None, name: str = ARRAY_TEMPLATE
                  ) -> tuple[str, str]:
  """(path, text) of SLURM template `name` (`find_template`)."""
  path = find_template(given, name)
  with open(path, encoding='utf-8') as f:
    return path, f.read()


# ---------------------------------------------------------------------------
# Collect and select.


def representation(cfg: dict[str, Any]) -> str:
  """'modality=repr;...' of features.sources, or 'id-only'."""
  sources = (cfg.get('features') or {}).get('sources') or {}
  parts = [f'{m}={r}' for m, r in sorted(sources.items()) if r]
  return ';'.join(parts) or 'id-only'


def control(cfg: dict[str, Any]) -> str:
  """features.control, with its modalities when it names some."""
  features = cfg.get('features') or {}
  name = features.get('control') or 'none'
  modalities = features.get('control_modalities') or ()
  return f'{name}({"+".join(modalities)})' if modalities and (
      name != 'none') else name


@dataclasses.dataclass(frozen=True)
class Record:
  """One run, as selection sees it.

  Attributes:
    name: the run's name.
    group: (model, representation, control): selection is per group.
    point: ((key, shown value), ...) over the swept keys but the seed.
    seed: the run's seed.
    status: done | failed | interrupted | running | incomplete | pending.
    select_metric: eval.select_metric, e.g. 'recall@20'.
    metrics: 'val/..' and 'test/..' at the run's best validation epoch.
    best_epoch: that epoch (None when not done).
    at_budget: the best epoch was at the end of the budget.
  """
  name: str
  group: tuple[str, str, str]
  point: tuple[tuple[str, str], ...]
  seed: Any
  status: str
  select_metric: str
  metrics: dict[str, float]
  best_epoch: Any = None
  at_budget: bool = False


@dataclasses.dataclass(frozen=True)
class Selection:
  """The validation-selected grid point of one group.

  Attributes:
    group: (model, representation, control).
    point: the selected ((key, value), ...).
    select_metric: the metric selected on (validation).
    seeds: the seeds of the selected point's finished runs.
    val_mean: mean validation select metric over them.
    test_mean, test_std: per test metric, mean and sample std (ddof 1; NaN
      for one seed) over them.
    at_budget: any of them had its best epoch at the budget.
    points: every (point, seeds, mean val) of the group, best first.
  """
  group: tuple[str, str, str]
  point: tuple[tuple[str, str], ...]
  select_metric: str
  seeds: tuple[Any, ...]
  val_mean: float
  test_mean: dict[str, float]
  test_std: dict[str, float]
  at_budget: bool
  points: tuple[tuple[tuple[tuple[str, str], ...], int, float], ...]


def _finite(x: Any) -> bool:
  try:
    return math.isfinite(float(x))
  except (TypeError, ValueError):
    return False


def select(records: Sequence[Record]) -> list[Selection]:
  """Per group, the grid point with the best mean validation metric.

  Only finished runs count. The choice reads `val/<select_metric>` alone;
  test metrics are averaged afterwards, at the chosen point only. Ties go
  to the point listed first.

  Args:
    records: the sweep's runs.

  Returns:
    One Selection per group that has a finished run, in first-seen order.
  """
  groups: dict[tuple[str, str, str], dict[Any, list[Record]]] = {}
  for r in records:
    if r.status != 'done':
      continue
    groups.setdefault(r.group, {}).setdefault(r.point, []).append(r)
  out = []
  for group, points in groups.items():
    metric = 'val/' + next(iter(points.values()))[0].select_metric
    means = []
    for point, runs in points.items():
      vals = [float(r.metrics[metric]) for r in runs
              if _finite(r.metrics.get(metric))]
      if vals:
        means.append((point, len(vals), float(np.mean(vals))))
    if not means:
      continue
    best = max(means, key=lambda m: m[2])  # First maximum on ties.
    chosen = [r for r in points[best[0]] if _finite(r.metrics.get(metric))]
    tests = sorted({k for r in chosen for k in r.metrics
                    if k.startswith('test/')})
    mean, std = {}, {}
    for k in tests:
      xs = np.asarray([float(r.metrics[k]) for r in chosen
                       if _finite(r.metrics.get(k))])
      if xs.size:
        mean[k] = float(xs.mean())
        std[k] = float(xs.std(ddof=1)) if xs.size > 1 else math.nan
    out.append(Selection(
        group=group, point=best[0], select_metric=metric[len('val/'):],
        seeds=tuple(r.seed for r in chosen), val_mean=best[2],
        test_mean=mean, test_std=std,
        at_budget=any(bool(r.at_budget) for r in chosen),
        points=tuple(sorted(means, key=lambda m: -m[2]))))
  return out


def run_state(directory: str) -> str:
  if not os.path.isdir(directory):
    return 'pending'
  state = read_status(directory).get('state')
  if os.path.exists(os.path.join(directory, RESULTS)) and state == 'done':
    return 'done'
  return state if state in ('failed', 'interrupted', 'running') else (
      'incomplete')


def load_records(workdir: str) -> tuple[list[str], list[dict[str, Any]],
                                         list[Record]]:
  """(swept keys but seed, CSV rows, Records) of the sweep in `workdir`.

  Raises:
    SweepError: `workdir` holds no sweep.json.
  """
  spec = _read_json(os.path.join(workdir, SPEC))
  if spec is None:
    raise SweepError(f'{workdir}: no {SPEC}; not a sweep directory')
  runs = spec.get('runs', [])
  swept = list(dict.fromkeys(k for r in runs for k in r['overrides']
                             if k != 'seed'))
  rows, records = [], []
  for r in runs:
    directory = run_dir(workdir, r['name'])
    cfg = _read_json(os.path.join(directory, CONFIG)) or {}
    results = _read_json(os.path.join(directory, RESULTS)) or {}
    state = run_state(directory)
    overrides = r['overrides']
    values = {}
    for k in swept:
      if k in overrides:
        values[k] = overrides[k]
      else:
        try:
          values[k] = get_path(cfg, k)
        except (KeyError, TypeError):
          values[k] = None
    seed = overrides.get('seed', cfg.get('seed'))
    model = results.get('model') or (cfg.get('model') or {}).get('name', '')
    group = (model, representation(cfg) if cfg else '',
             control(cfg) if cfg else '')
    best = (results.get('best') or {}) if state == 'done' else {}
    metrics = {k: v for k, v in best.items()
               if k.startswith(('val/', 'test/'))}
    done = state == 'done'
    row = {'run': r['name'], 'model': group[0], 'representation': group[1],
           'control': group[2],
           **{k: display(v) if v is not None else '' for k, v in
              values.items()},
           'seed': '' if seed is None else seed, 'status': state,
           'best_epoch': results.get('best_epoch', '') if done else '',
           'at_budget': results.get('at_budget', '') if done else '',
           **metrics}
    rows.append(row)
    records.append(Record(
        name=r['name'], group=group,
        point=tuple((k, display(values[k])) for k in swept),
        seed=seed, status=state,
        select_metric=(cfg.get('eval') or {}).get('select_metric')
        or 'recall@20',
        metrics=metrics, best_epoch=results.get('best_epoch'),
        at_budget=bool(results.get('at_budget'))))
  return swept, rows, records


def write_csv(path: str, swept: Sequence[str],
              rows: Sequence[dict[str, Any]]) -> None:
  metrics = sorted({k for r in rows for k in r if k.startswith('val/')})
  metrics += sorted({k for r in rows for k in r if k.startswith('test/')})
  head = (['run', 'model', 'representation', 'control', *swept, 'seed',
           'status', 'best_epoch', 'at_budget'] + metrics)
  buf = io.StringIO()
  writer = csv.DictWriter(buf, fieldnames=head, restval='',
                          lineterminator='\n')
  writer.writeheader()
  for r in rows:
    writer.writerow(r)
  tmp = f'{path}.{os.getpid()}.tmp'
  with open(tmp, 'w', encoding='utf-8', newline='') as f:
    f.write(buf.getvalue())
  os.replace(tmp, path)


def summary_metrics(select_metric: str, available: Sequence[str]
                    ) -> list[str]:
  """The test metrics a summary shows: the select metric, NDCG and HR at
  its cut-off (those present)."""
  name, _, rest = select_metric.partition('@')
  cut = '@' + rest if rest else ''
  wanted = [select_metric] + [f'{m}{cut}' for m in ('recall', 'ndcg', 'hit')
                              if m != name]
  return [m for m in wanted if f'test/{m}' in available]


def _point_text(point: Sequence[tuple[str, str]]) -> str:
  return ', '.join(f'{k}={v}' for k, v in point) or '(single point)'


def _mean_std(mean: float | None, std: float | None, n: int) -> str:
  if mean is None:
    return '-'
  if n < 2 or std is None or not math.isfinite(std):
    return f'{mean:.4f}'
  return f'{mean:.4f} ± {std:.4f}'


def _counts(records: Sequence[Record]) -> str:
  counts: dict[str, int] = {}
  for r in records:
    counts[r.status] = counts.get(r.status, 0) + 1
  return ', '.join(f'{v} {k}' for k, v in sorted(counts.items()))


def format_markdown(title: str, selections: Sequence[Selection],
                    records: Sequence[Record]) -> str:
  lines = [f'# Sweep {title}', '',
           f'{len(records)} runs: {_counts(records)}.', '',
           'Per (model, representation, control): the grid point with the '
           'best mean validation metric over its seeds; test at that point '
           'as mean ± sample std over those seeds (n). Test is never read '
           'to select. * : a selected seed\'s best epoch was at the end of '
           'its budget (at_budget): more epochs might do better.', '']
  for s in selections:
    tests = summary_metrics(s.select_metric, list(s.test_mean))
    lines += [f'## {s.group[0]}, {s.group[1]}, control {s.group[2]}', '',
              '| selected point | n | val ' + s.select_metric + ' | ' +
              ' | '.join(f'test {m}' for m in tests) + ' | budget |',
              '|' + '---|' * (4 + len(tests))]
    cells = [_point_text(s.point), str(len(s.seeds)), f'{s.val_mean:.4f}']
    cells += [_mean_std(s.test_mean.get(f'test/{m}'),
                        s.test_std.get(f'test/{m}'), len(s.seeds))
              for m in tests]
    cells.append('*' if s.at_budget else '')
    lines += ['| ' + ' | '.join(cells) + ' |', '',
              f'All points (validation {s.select_metric}, mean over seeds):',
              '', '| point | n | val |', '|---|---|---|']
    lines += [f'| {_point_text(p)} | {n} | {v:.4f} |'
              for p, n, v in s.points]
    lines.append('')
  if not selections:
    lines.append('No finished runs yet.')
  return '\n'.join(lines).rstrip() + '\n'


_TEX = {'\\': r'\textbackslash{}', '&': r'\&', '%': r'\%', '$': r'\$',
        '#': r'\#', '_': r'\_', '{': r'\{', '}': r'\}', '~': r'\~{}',
        '^': r'\^{}'}


def tex(text: str) -> str:
  return ''.join(_TEX.get(c, c) for c in text)


def format_latex(selections: Sequence[Selection]) -> str:
  """One booktabs table: a row per group at its selected point."""
  tests = []
  for s in selections:
    for m in summary_metrics(s.select_metric, list(s.test_mean)):
      if m not in tests:
        tests.append(m)
  head = ['Model', 'Representation', 'Control', 'Selected point', '$n$',
          'Val'] + [f'Test {tex(m)}' for m in tests]
  lines = ['% Written by python -m mmjax.sweep; needs \\usepackage{booktabs}.',
           '\\begin{tabular}{' + 'l' * 4 + 'r' * (2 + len(tests)) + '}',
           '\\toprule', ' & '.join(head) + r' \\', '\\midrule']
  for s in selections:
    cells = [tex(s.group[0]), tex(s.group[1]), tex(s.group[2]),
             tex(_point_text(s.point)), str(len(s.seeds)),
             f'{s.val_mean:.4f}']
    for m in tests:
      text = _mean_std(s.test_mean.get(f'test/{m}'),
                       s.test_std.get(f'test/{m}'), len(s.seeds))
      cells.append(text.replace('±', r'$\pm$'))
    if s.at_budget:
      cells[-1] += r'$^{*}$'
    lines.append(' & '.join(cells) + r' \\')
  lines += ['\\bottomrule', '\\end{tabular}']
  if any(s.at_budget for s in selections):
    lines.append('% * best epoch at the end of the budget (at_budget).')
  return '\n'.join(lines) + '\n'


def collect(workdir: str) -> tuple[list[Selection], list[Record]]:
  """Writes results.csv, summary.md and summary.tex into `workdir`."""
  swept, rows, records = load_records(workdir)
  write_csv(os.path.join(workdir, 'results.csv'), swept, rows)
  selections = select(records)
  title = os.path.basename(os.path.abspath(workdir))
  for name, text in (('summary.md', format_markdown(title, selections,
                                                     records)),
                     ('summary.tex', format_latex(selections))):
    tmp = os.path.join(workdir, f'{name}.{os.getpid()}.tmp')
    with open(tmp, 'w', encoding='utf-8') as f:
      f.write(text)
    os.replace(tmp, os.path.join(workdir, name))
  return selections, records


# ---------------------------------------------------------------------------
# Command line.

def define_flags() -> None:
  """Defines the sweep's flags (also the study's); once per process.

  Called by the command lines only, not at import: absl has one global flag
  registry, and other modules that tests import beside this one
  (mmjax.features.extract, mmjax.launch) define --config too.
  """
  if 'workdir' in flags.FLAGS and 'grid' in flags.FLAGS:
    return
  flags.DEFINE_string('config', None,
                      'Config file, path[:variant] (as launch).')
  flags.DEFINE_string('workdir', None, 'The sweep directory.')
  flags.DEFINE_multi_string(
      'grid', [], 'key=v1,v2,...: a swept override (repeatable; the product '
      'is taken). Without it, the config\'s get_sweep().')
  flags.DEFINE_multi_string('set', [],
                            'key=value fixed in every run (repeatable).')
  flags.DEFINE_string('seeds', None, 'Comma-separated seeds.')
  flags.DEFINE_integer('workers', 1, 'Runs at once on this machine.')
  flags.DEFINE_string('shard', None,
                      'i/n: run only the runs with index % n == i.')
  flags.DEFINE_integer('run_index', None,
                       'Run only this run (SLURM array task).')
  flags.DEFINE_bool('slurm', False,
                    'Write <workdir>/slurm/array.sbatch; run nothing.')
  flags.DEFINE_string(
      'slurm_template', None, 'With --slurm: a directory holding '
      f'{ARRAY_TEMPLATE} (and, for a study, {STEP_TEMPLATE}), or the array '
      "template's file. Default: the checkout's launch/.")
  flags.DEFINE_string(
      'collect', None, 'Only collect the sweep in this directory.')


def _fail(message: str, status: int = USAGE) -> None:
  sys.stderr.write(f'error: {message}\n')
  sys.stderr.flush()
  sys.exit(status)


def _print_collected(workdir: str) -> None:
  selections, records = collect(workdir)
  print(f'collected {len(records)} runs ({_counts(records)}) into '
        f'{os.path.join(workdir, "results.csv")}, summary.md, summary.tex')
  for s in selections:
    test = 'test/' + s.select_metric
    shown = _mean_std(s.test_mean.get(test), s.test_std.get(test),
                      len(s.seeds))
    print(f'  {" ".join(s.group)}: {_point_text(s.point)} (n='
          f'{len(s.seeds)}) val {s.val_mean:.4f}, {test} {shown}'
          f'{" (at budget)" if s.at_budget else ""}')


def _sweep_args(config_spec: str, workdir: str) -> list[str]:
  """The flags that define this sweep (for the SLURM array's tasks)."""
  path, colon, variant = config_spec.partition(':')
  args = ['--config', os.path.abspath(path) + colon + variant,
          '--workdir', os.path.abspath(workdir)]
  for g in flags.FLAGS.grid:
    args += ['--grid', g]
  for s in flags.FLAGS.set:
    args += ['--set', s]
  if flags.FLAGS.seeds:
    args += ['--seeds', flags.FLAGS.seeds]
  return args


def sweep_main() -> int:
  """The sweep command; returns the exit status."""
  if flags.FLAGS.collect:
    _print_collected(flags.FLAGS.collect)
    return 0
  if not flags.FLAGS.config or not flags.FLAGS.workdir:
    raise SweepError('--config and --workdir are required (or --collect '
                     'DIR)')
  if flags.FLAGS.shard and flags.FLAGS.run_index is not None:
    raise SweepError('--shard and --run_index exclude each other')
  if flags.FLAGS.workers < 1:
    raise SweepError(f'--workers {flags.FLAGS.workers}: expected at least 1')
  grid = parse_assignments(flags.FLAGS.grid, 'grid', split=True)
  sets = parse_assignments(flags.FLAGS.set, 'set', split=False)
  seeds = parse_seeds(flags.FLAGS.seeds)
  shard = parse_shard(flags.FLAGS.shard)
  workdir = flags.FLAGS.workdir
  source, runs = expand(flags.FLAGS.config, grid, sets, seeds)
  if flags.FLAGS.slurm_template and not flags.FLAGS.slurm:
    raise SweepError('--slurm_template goes with --slurm')
  if flags.FLAGS.slurm:
    # Before anything is written: a missing template fails alone.
    template_path, template = read_template(flags.FLAGS.slurm_template)
  write_spec(workdir, make_spec(flags.FLAGS.config, source, grid, sets, seeds,
                                runs))
  if flags.FLAGS.slurm:
    script = slurm_script(
        template, job_name=os.path.basename(os.path.abspath(workdir)),
        num_runs=len(runs), workdir=workdir,
        args=_sweep_args(flags.FLAGS.config, workdir),
        template_path=template_path)
    os.makedirs(os.path.join(workdir, 'slurm'), exist_ok=True)
    path = os.path.join(workdir, 'slurm', 'array.sbatch')
    with open(path, 'w', encoding='utf-8') as f:
      f.write(script)
    print(f'{len(runs)} runs ({source}); edit the partition/account/gres/'
          f'time lines of {path}, then submit it:\n  sbatch {path}')
    return 0
  mine = runs_of_this_process(runs, shard, flags.FLAGS.run_index)
  todo = [r for r in mine if not is_finished(run_dir(workdir, r.name))]
  print(f'sweep {workdir}: {len(runs)} runs ({source}); this process: '
        f'{len(mine)}, {len(mine) - len(todo)} finished (skipped), '
        f'{len(todo)} to run on {min(flags.FLAGS.workers, max(len(todo), 1))} '
        'worker(s)', flush=True)
  failed = []
  if todo:
    prepare_data([resolve(flags.FLAGS.config, r.args) for r in todo])
    runner = Runner(flags.FLAGS.config, workdir, flags.FLAGS.workers)
    try:
      finished = runner.run(todo)
    except KeyboardInterrupt:
      print('interrupted: unfinished runs resume when the sweep is started '
            'again', file=sys.stderr)
      return 130
    failed = [(r, s) for r, s in finished
              if s['state'] in ('failed', 'interrupted')]
  _print_collected(workdir)
  if failed:
    print(f'{len(failed)} of {len(todo)} runs failed (retried when the sweep'
          ' is started again):', file=sys.stderr)
    for r, s in sorted(failed, key=lambda x: x[0].index):
      tail = (s.get('log_tail') or ['(empty log)'])[-1]
      print(f'  {r.name}: exit {s.get("exit_code")}: {tail} (see '
            f'{os.path.join(run_dir(workdir, r.name), LOG)})',
            file=sys.stderr)
    return FAILURE
  return 0


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    _fail(f'unexpected arguments {" ".join(argv[1:])} (flags are '
          '--name=value).')
  try:
    status = sweep_main()
  except SweepError as e:
    _fail(str(e))
  sys.exit(status)


if __name__ == '__main__':
  define_flags()
  app.run(main)
