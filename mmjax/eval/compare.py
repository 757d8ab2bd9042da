"""Paired significance tests between runs, from their per-user metric vectors.

  python -m mmjax.eval.compare runs/mostpop runs/lightgcn runs/freedom \
      --metric recall@20,ndcg@20 --split test

reads `<run>/per_user_<split>.npz` (written by
`mmjax.eval.ranking.save_per_user`) for every run, refuses runs whose dataset
split hashes differ, and compares each run with the first (the baseline), or
every pair with --all_pairs. Runs are labelled by their configs
(`run_labels`): the model name plus the config keys that tell them apart,
so `lr=0.001` of one sweep and `lr=0.001` of another stay distinct. For each
comparison and metric: the number of
users, both means, the mean difference (run - baseline), a seeded bootstrap
95% interval of that difference, Cohen's d for paired samples
(mean(diff) / sd(diff)), and the p-values of a paired t-test and of a
Wilcoxon signed-rank test (scipy.stats), each Holm-corrected across the
whole table.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from collections.abc import Sequence
import itertools
import json
import math
import os
from typing import Any

from absl import app
from absl import flags
import numpy as np
from scipy import stats

from mmjax.eval import ranking
from mmjax.utils import runinfo

_METRIC = flags.DEFINE_list('metric', ['recall@20'], 'Metrics to compare.')
_SPLIT = flags.DEFINE_enum('split', 'test', ['val', 'valid', 'test'],
                           'Which split (val and valid are the same).')
_ALL_PAIRS = flags.DEFINE_bool(
    'all_pairs', False, 'Compare every pair, not only each run with the first.'
)
_NUM_BOOT = flags.DEFINE_integer('num_boot', 10000, 'Bootstrap resamples.')
_SEED = flags.DEFINE_integer('seed', 0, 'Bootstrap seed.')


class HashMismatchError(ValueError):
  """Runs evaluated on different datasets or splits."""


def holm(pvalues: Sequence[float]) -> np.ndarray:
  """Holm-Bonferroni adjusted p-values, float64 [m], in the input order.

  With p sorted ascending, adj_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))
  (1-based i, j). NaN p-values stay NaN and do not count in m.
  """
  p = np.asarray(pvalues, np.float64)
  out = np.full(p.shape, np.nan)
  ok = np.flatnonzero(~np.isnan(p))
  m = len(ok)
  order = ok[np.argsort(p[ok], kind='stable')]
  running = 0.0
  for j, idx in enumerate(order):
    running = max(running, min(1.0, (m - j) * p[idx]))
    out[idx] = running
  return out


def bootstrap_ci(
    diff: np.ndarray, num_boot: int, rng: np.random.Generator,
    level: float = 0.95,
) -> tuple[float, float]:
  """Percentile bootstrap interval of mean(diff), resampling users."""
  n = len(diff)
  if n == 0:
    return math.nan, math.nan
  means = np.empty(num_boot)
  chunk = max(1, (1 << 22) // n)  # Bounds memory at ~32 MiB of indices.
  for s in range(0, num_boot, chunk):
    e = min(num_boot, s + chunk)
    idx = rng.integers(0, n, size=(e - s, n))
    means[s:e] = diff[idx].mean(axis=1)
  a = (1 - level) / 2
  lo, hi = np.quantile(means, [a, 1 - a])
  return float(lo), float(hi)


def _paired(a: np.ndarray, b: np.ndarray, num_boot: int,
            rng: np.random.Generator) -> dict[str, float]:
  """Statistics of b - a over the same users."""
  diff = b - a
  n = len(diff)
  mean = float(diff.mean()) if n else math.nan
  sd = float(diff.std(ddof=1)) if n > 1 else math.nan
  if n > 1 and sd > 0:
    p_t = float(stats.ttest_rel(b, a).pvalue)
    d = mean / sd
  else:
    # Identical vectors (or one user): no evidence of a difference.
    p_t = 1.0 if n > 1 and mean == 0 else math.nan
    d = 0.0 if n > 1 and mean == 0 else math.nan
  if np.any(diff != 0):
    p_w = float(stats.wilcoxon(diff).pvalue)
  else:
    p_w = 1.0 if n else math.nan
  lo, hi = bootstrap_ci(diff, num_boot, rng)
  return {
      'n': n, 'mean_a': float(a.mean()) if n else math.nan,
      'mean_b': float(b.mean()) if n else math.nan, 'diff': mean,
      'ci_low': lo, 'ci_high': hi, 'cohen_d': d,
      'p_ttest': p_t, 'p_wilcoxon': p_w,
  }


def compare(
    results: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    metric: str = '',
    all_pairs: bool = False,
    num_boot: int = 10000,
    seed: int = 0,
    holm_correct: bool = True,
) -> list[dict[str, Any]]:
  """Paired comparisons of runs on one metric.

  Args:
    results: run name -> (users int [n], values float [n]); the first entry is
      the baseline. Every run must hold the same users (in any order); NaN
      values (e.g. cold-item metrics of users without a cold item) must be
      NaN for the same users in every run and are left out.
    metric: a label copied into each row.
    all_pairs: every pair (a, b) with a before b, instead of baseline vs each.
    num_boot: bootstrap resamples.
    seed: bootstrap seed; row r uses np.random.default_rng([seed, r]).
    holm_correct: add 'p_ttest_holm' and 'p_wilcoxon_holm' over these rows
      (`compare_table` corrects across several metrics instead).

  Returns:
    One dict per comparison: metric, a, b, n, mean_a, mean_b, diff (b - a),
    ci_low, ci_high, cohen_d, p_ttest, p_wilcoxon (+ Holm-adjusted).

  Raises:
    ValueError: fewer than two runs, or runs with different users or NaNs.
  """
  names = list(results)
  if len(names) < 2:
    raise ValueError(f'need at least two runs to compare, got {names}.')
  aligned = {}
  ref_users = None
  for name in names:
    users, values = (np.asarray(x) for x in results[name])
    if len(users) != len(values):
      raise ValueError(f'{name}: {len(users)} users but {len(values)} values.')
    order = np.argsort(users, kind='stable')
    users, values = users[order], values[order].astype(np.float64)
    if ref_users is None:
      ref_users, ref_name = users, name
    elif len(users) != len(ref_users) or np.any(users != ref_users):
      raise ValueError(
          f'runs {ref_name!r} ({len(ref_users)} users) and {name!r} '
          f'({len(users)} users) were evaluated on different users.'
      )
    aligned[name] = values
  nan = np.isnan(aligned[names[0]])
  for name in names[1:]:
    if np.any(np.isnan(aligned[name]) != nan):
      raise ValueError(f'{metric}: runs {names[0]!r} and {name!r} have NaN '
                       'for different users.')
  keep = ~nan
  if all_pairs:
    pairs = list(itertools.combinations(names, 2))
  else:
    pairs = [(names[0], b) for b in names[1:]]
  rows = []
  for r, (a, b) in enumerate(pairs):
    rng = np.random.default_rng([seed, r])
    row = {'metric': metric, 'a': a, 'b': b}
    row.update(_paired(aligned[a][keep], aligned[b][keep], num_boot, rng))
    rows.append(row)
  if holm_correct:
    _add_holm(rows)
  return rows


def _add_holm(rows: list[dict[str, Any]]) -> None:
  for key in ('p_ttest', 'p_wilcoxon'):
    for row, p in zip(rows, holm([row[key] for row in rows])):
      row[key + '_holm'] = float(p)


# Config keys that change nothing a run computes (where datasets and
# checkpoints go, how processes reach each other: the bookkeeping keys of
# runinfo.RESUMABLE); a label never shows them.
_BOOKKEEPING = ('ckpt.', 'data.root', 'mesh.coordinator', 'mesh.num_processes',
                'mesh.process_id')
# The study's factors: a representation or control that differs anywhere
# among the compared runs is shown on every run that has features. Other
# keys are shown where they differ between runs of the same model: across
# models the name tells runs apart, and each model's own defaults
# (model.num_layers, its lr) would only lengthen the labels.
_SOURCES = 'features.sources.'
_FEATURE_OPTIONS = ('features.control', 'features.control_modalities',
                    'features.transform')


def _format_value(value: Any) -> str:
  if isinstance(value, (list, tuple)):
    return '[' + ','.join(_format_value(v) for v in value) + ']'
  return repr(value) if isinstance(value, float) else str(value)


def _short_names(keys: Sequence[str]) -> dict[str, str]:
  """Each dotted key's shortest suffix that no other key shares
  ('optim.lr' -> 'lr', 'features.sources.visual' -> 'visual')."""
  parts = {k: k.split('.') for k in keys}
  names = {}
  for key, p in parts.items():
    for depth in range(1, len(p) + 1):
      suffix = p[-depth:]
      if not any(q[-depth:] == suffix for k, q in parts.items() if k != key):
        break
    names[key] = '.'.join(suffix)
  return names


def run_labels(paths: Sequence[str],
               configs: Sequence[Mapping[str, Any] | None]) -> list[str]:
  """Short unique labels of runs from their recorded configs.

  A label is the model name, then in parentheses the config keys that tell
  the run apart, by their shortest unambiguous name: `vbpr(visual=clip,
  control=shuffle)`, `lightgcn(lr=0.001)`. Shown are the representations
  (`features.sources.*`) and, on runs with features, the control and
  transform, wherever they differ among the compared runs; every other key
  (bookkeeping ones aside) where it differs between runs of the same model,
  i.e. the keys a sweep varied. Runs whose labels would still coincide
  (equal configs, or no config.json) are labelled by their path as given.

  Args:
    paths: the run directories (or .npz files), as given.
    configs: each run's config.json contents, or None when it has none
      (labelled by its folder name, or its path where that is not unique).

  Returns:
    One label per run, in order.

  Raises:
    ValueError: the same run given twice.
  """
  normalized = [os.path.normpath(p) for p in paths]
  for i, path in enumerate(normalized):
    if normalized.index(path) != i:
      raise ValueError(f'run {path} is given twice.')
  flat = [None if c is None else {
      k: v for k, v in runinfo.flatten_config(c).items()
      if not k.startswith(_BOOKKEEPING)} for c in configs]
  keys = sorted({k for f in flat if f for k in f})

  def differ(runs: Sequence[dict[str, Any]], key: str) -> bool:
    # JSON text: config values are lists and dicts (unhashable).
    return len({(key in f, json.dumps(f.get(key), sort_keys=True))
                for f in runs}) > 1

  with_config = [f for f in flat if f is not None]
  factors = [k for k in keys if k.startswith(_SOURCES) and
             differ(with_config, k)]
  factors += [k for k in _FEATURE_OPTIONS if differ(with_config, k)]
  shown = []
  for f in flat:
    if f is None:
      shown.append([])
      continue
    has_features = any(k.startswith(_SOURCES) and v for k, v in f.items())
    same_model = [g for g in with_config
                  if g.get('model.name') == f.get('model.name')]
    # A control without features changes nothing the model sees; shown
    # only where it is all that tells two runs of a model apart.
    mine = [k for k in factors if k in f and (
        k.startswith(_SOURCES) or has_features or differ(same_model, k))]
    mine += [k for k in keys if k not in factors and k != 'model.name'
             and k in f and differ(same_model, k)]
    shown.append(mine)
  names = _short_names(sorted({k for s in shown for k in s}))
  labels = []
  for path, f, mine in zip(paths, flat, shown):
    folder = os.path.basename(os.path.normpath(
        os.path.dirname(path) if path.endswith('.npz') else path))
    if f is None:
      labels.append(folder or path)
      continue
    label = str(f.get('model.name', folder))
    if mine:
      label += '(' + ','.join(f'{names[k]}={_format_value(f[k])}'
                              for k in mine) + ')'
    labels.append(label)
  counts = collections.Counter(labels)
  return [path if counts[label] > 1 else label
          for path, label in zip(normalized, labels)]


def _read_config(run_dir: str) -> dict[str, Any] | None:
  """A run's config.json, or None when it has none."""
  path = os.path.join(run_dir, runinfo.CONFIG)
  if not os.path.exists(path):
    return None
  try:
    with open(path, encoding='utf-8') as f:
      config = json.load(f)
  except ValueError as e:
    raise ValueError(f'{path}: not a JSON config ({e}).') from e
  if not isinstance(config, dict):
    raise ValueError(f'{path}: expected a JSON object (a run\'s config), '
                     f'got {type(config).__name__}.')
  return config


def load_runs(
    paths: Sequence[str], split: str
) -> dict[str, dict[str, Any]]:
  """Loads each run's per-user file and checks that their split hashes agree.

  Args:
    paths: run directories (holding per_user_<split>.npz) or .npz files.
    split: 'val' (or 'valid': either file name is accepted) or 'test'.

  Returns:
    run label (`run_labels`, from each run's config.json) ->
    `ranking.load_per_user` dict, in the order of `paths`.

  Raises:
    FileNotFoundError: a run has no per-user file for the split.
    HashMismatchError: two runs were evaluated on different data or splits.
    ValueError: a config.json that is not a JSON object, or a run given
      twice.
  """
  files, configs = [], []
  for path in paths:
    if path.endswith('.npz'):
      file = path
    else:
      names = ('val', 'valid') if split in ('val', 'valid') else (split,)
      candidates = [os.path.join(path, f'per_user_{n}.npz') for n in names]
      file = next((f for f in candidates if os.path.exists(f)),
                  candidates[0])
    if not os.path.exists(file):
      raise FileNotFoundError(f'{file}: no per-user metrics for split '
                              f'{split!r} (was the run evaluated?).')
    files.append(file)
    configs.append(_read_config(os.path.dirname(file) or '.'))
  runs = {label: ranking.load_per_user(file)
          for label, file in zip(run_labels(paths, configs), files)}
  first = next(iter(runs))
  for name, run in runs.items():
    if run['split_hash'] != runs[first]['split_hash']:
      raise HashMismatchError(
          f'runs {first!r} and {name!r} used different datasets or splits '
          f'(split hash {runs[first]["split_hash"][:12]}... vs '
          f'{run["split_hash"][:12]}...); refusing to compare them.'
      )
  return runs


def compare_table(
    runs: Mapping[str, Mapping[str, Any]],
    metrics: Sequence[str],
    *,
    all_pairs: bool = False,
    num_boot: int = 10000,
    seed: int = 0,
) -> list[dict[str, Any]]:
  """`compare` for several metrics, Holm-corrected across the whole table."""
  rows = []
  for m, metric in enumerate(metrics):
    results = {}
    for name, run in runs.items():
      if metric not in run['per_user']:
        raise KeyError(f'run {name!r} has no metric {metric!r}; it has '
                       f'{sorted(run["per_user"])}.')
      results[name] = (run['users'], run['per_user'][metric])
    rows += compare(results, metric=metric, all_pairs=all_pairs,
                    num_boot=num_boot, seed=seed + 1000003 * m,
                    holm_correct=False)
  _add_holm(rows)
  return rows


def _num(x: float, spec: str) -> str:
  # NaN: no users to compare (e.g. a cold-item metric without cold items).
  return '-' if math.isnan(x) else format(x, spec)


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
  """A fixed-width text table of `compare` rows."""
  head = ('metric', 'baseline', 'run', 'n', 'mean_base', 'mean_run', 'diff',
          '95% CI', 'd', 'p_t(holm)', 'p_w(holm)')
  lines = [head]
  for r in rows:
    lines.append((
        r['metric'], r['a'], r['b'], str(r['n']), _num(r['mean_a'], '.4f'),
        _num(r['mean_b'], '.4f'), _num(r['diff'], '+.4f'),
        f'[{_num(r["ci_low"], "+.4f")}, {_num(r["ci_high"], "+.4f")}]',
        _num(r['cohen_d'], '+.3f'), _num(r['p_ttest_holm'], '.2g'),
        _num(r['p_wilcoxon_holm'], '.2g'),
    ))
  widths = [max(len(line[c]) for line in lines) for c in range(len(head))]
  out = ['  '.join(s.ljust(w) for s, w in zip(line, widths)).rstrip()
         for line in lines]
  out.insert(1, '  '.join('-' * w for w in widths))
  return '\n'.join(out)


def main(argv: Sequence[str]) -> None:
  paths = argv[1:]
  if len(paths) < 2:
    raise app.UsageError('give at least two run directories.')
  try:
    runs = load_runs(paths, _SPLIT.value)
  except (FileNotFoundError, ValueError) as e:  # HashMismatchError too.
    raise SystemExit(f'error: {e}') from None
  rows = compare_table(runs, _METRIC.value, all_pairs=_ALL_PAIRS.value,
                       num_boot=_NUM_BOOT.value, seed=_SEED.value)
  print(format_table(rows))


if __name__ == '__main__':
  app.run(main)
