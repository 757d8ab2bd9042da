"""The leverage study's statistics: real against a control, pooled over seeds.

A study trains each (model, representation) with its real features and with
each control (shuffled or noise features, no content, one modality) over
the same seeds, and asks whether real beats the control. Two tests answer
it, as bench/planted.py first did:

- per user: each seed's real and control runs were evaluated on the same
  users; the per-user differences of a metric (test Recall@20) are pooled
  over seeds, a (seed, user) pair being one unit, and tested with a paired
  t-test and a Wilcoxon signed-rank test, with a paired effect size
  (Cohen's d = mean(diff) / sd(diff)) and a percentile bootstrap 95%
  interval of the mean difference (`mmjax.eval.compare` computes these);
- per seed: a one-sample t-test of the per-seed gaps (`p_seeds`). The
  per-user test conditions on each seed's two trained runs; the gap also
  varies from one training run to the next, which only the seeds show
  (bench/README.md found per-user p-values over-confident where p over
  seeds was not: read both).

p-values of a whole table are Holm-adjusted together (`add_holm`). The
functions are pure numpy/scipy over per-user dicts as
`mmjax.eval.ranking.load_per_user` returns them ({'users', 'per_user',
'split_hash', ...}); runs evaluated on different splits are refused, as
`compare.load_runs` does.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
import math
from typing import Any

import numpy as np
from scipy import stats

from mmjax.eval import compare

PerUser = Mapping[str, Any]  # ranking.load_per_user's dict.

holm = compare.holm
bootstrap_ci = compare.bootstrap_ci
HashMismatchError = compare.HashMismatchError


def aligned(a: PerUser, b: PerUser, metric: str
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Two runs' per-user values of `metric`, on the same users, sorted by id.

  Args:
    a, b: per-user dicts (`ranking.load_per_user`).
    metric: e.g. 'recall@20' or 'recall@20/cold_items'.

  Returns:
    (users int64 [n], a's values float64 [n], b's values float64 [n]).

  Raises:
    HashMismatchError: the runs were evaluated on different splits.
    KeyError: a run lacks the metric.
    ValueError: the runs hold different users.
  """
  if a.get('split_hash') != b.get('split_hash'):
    raise HashMismatchError(
        f'runs {a.get("name")!r} and {b.get("name")!r} used different '
        'datasets or splits (split hashes differ); refusing to pair them.')
  out = []
  for run in (a, b):
    if metric not in run['per_user']:
      raise KeyError(f'run {run.get("name")!r} has no per-user {metric!r}; '
                     f'it has {sorted(run["per_user"])}.')
    users = np.asarray(run['users']).astype(np.int64)
    order = np.argsort(users, kind='stable')
    out.append((users[order],
                np.asarray(run['per_user'][metric], np.float64)[order]))
  (ua, va), (ub, vb) = out
  if ua.shape != ub.shape or np.any(ua != ub):
    raise ValueError(f'runs {a.get("name")!r} ({len(ua)} users) and '
                     f'{b.get("name")!r} ({len(ub)} users) were evaluated on '
                     'different users.')
  return ua, va, vb


@dataclasses.dataclass(frozen=True)
class Pooled:
  """Paired per-user values of several seeds, one (seed, user) per unit.

  Attributes:
    units: int64 [n], seed << 32 | user: unique across seeds.
    seeds: int64 [n], each unit's seed.
    real: float64 [n].
    control: float64 [n].
  """
  units: np.ndarray
  seeds: np.ndarray
  real: np.ndarray
  control: np.ndarray


def pool(pairs: Sequence[tuple[int, PerUser, PerUser]], metric: str,
         select: Callable[[int, np.ndarray], np.ndarray] | None = None
         ) -> Pooled:
  """Pools the paired per-user values of each seed's (real, control) runs.

  Users whose value is NaN in both runs (a cold-item metric of a user
  without a cold test item) are left out.

  Args:
    pairs: (seed, real run, control run) per seed; seeds distinct.
    metric: the per-user metric.
    select: optional (seed, users int64 [n]) -> bool [n], the users kept
      (e.g. the cold users of that seed's dataset).

  Returns:
    The pooled units.

  Raises:
    HashMismatchError, ValueError: as `aligned`; also repeated seeds, or
      NaN for different users in the two runs of a seed.
  """
  seeds = [int(s) for s, _, _ in pairs]
  if len(set(seeds)) < len(seeds):
    raise ValueError(f'a seed is repeated in {seeds}.')
  units, seed_of, real, control = [], [], [], []
  for seed, r, c in pairs:
    users, vr, vc = aligned(r, c, metric)
    nan = np.isnan(vr)
    if np.any(nan != np.isnan(vc)):
      raise ValueError(f'{metric}: seed {seed}: the runs have NaN for '
                       'different users.')
    keep = ~nan
    if select is not None:
      keep &= np.asarray(select(int(seed), users), bool)
    units.append((int(seed) << 32) | users[keep])
    seed_of.append(np.full(int(keep.sum()), int(seed), np.int64))
    real.append(vr[keep])
    control.append(vc[keep])

  def cat(xs, dtype):
    return np.concatenate(xs).astype(dtype) if xs else np.zeros(0, dtype)

  return Pooled(cat(units, np.int64), cat(seed_of, np.int64),
                cat(real, np.float64), cat(control, np.float64))


def effect_size(diff: np.ndarray) -> float:
  """Cohen's d of paired samples: mean(diff) / sd(diff) (ddof 1).

  0 when every difference is 0, NaN with fewer than two units or a
  constant non-zero difference (as `compare` reports it).
  """
  diff = np.asarray(diff, np.float64)
  if diff.size < 2:
    return math.nan
  sd = float(diff.std(ddof=1))
  if sd > 0:
    return float(diff.mean()) / sd
  return 0.0 if float(diff.mean()) == 0 else math.nan


def seed_gap_test(gaps: Sequence[float]) -> float:
  """p of a two-sided one-sample t-test of the per-seed gaps against 0.

  NaN with fewer than two seeds or identical gaps (no spread to test).
  """
  gaps = np.asarray(gaps, np.float64)
  gaps = gaps[np.isfinite(gaps)]
  if gaps.size < 2 or np.ptp(gaps) == 0:
    return math.nan
  return float(stats.ttest_1samp(gaps, 0.0).pvalue)


def seed_gaps(pooled: Pooled) -> dict[int, float]:
  """Per seed, mean(real - control) over its units (seeds without units:
  left out)."""
  out = {}
  for s in dict.fromkeys(pooled.seeds.tolist()):
    sel = pooled.seeds == s
    out[int(s)] = float(np.mean(pooled.real[sel] - pooled.control[sel]))
  return out


def real_vs_control(pooled: Pooled, *, num_boot: int = 10000,
                    seed: int = 0) -> dict[str, Any]:
  """Real against a control over pooled (seed, user) units.

  Args:
    pooled: from `pool`.
    num_boot: bootstrap resamples of the units.
    seed: the bootstrap's seed (a table gives each row its own).

  Returns:
    {'n': units, 'n_seeds', 'real': mean real, 'control': mean control,
     'gap': mean(real - control), 'ci_low', 'ci_high' (bootstrap 95% of
     the gap), 'effect_d', 'p_t' (paired t), 'p_w' (Wilcoxon),
     'gap_per_seed': {seed: gap}, 'p_seeds'}; NaN where undefined (no units,
     one unit).
  """
  per_seed = seed_gaps(pooled)
  row = {'n': int(pooled.units.size), 'n_seeds': len(per_seed),
         'gap_per_seed': per_seed, 'p_seeds': seed_gap_test(
             list(per_seed.values()))}
  if pooled.units.size == 0:
    nan = math.nan
    row.update(real=nan, control=nan, gap=nan, ci_low=nan, ci_high=nan,
               effect_d=nan, p_t=nan, p_w=nan)
    return row
  # compare's diff is b - a: the control is a, the real run b.
  stat = compare.compare(
      {'control': (pooled.units, pooled.control),
       'real': (pooled.units, pooled.real)},
      num_boot=num_boot, seed=seed, holm_correct=False)[0]
  row.update(real=stat['mean_b'], control=stat['mean_a'], gap=stat['diff'],
             ci_low=stat['ci_low'], ci_high=stat['ci_high'],
             effect_d=stat['cohen_d'], p_t=stat['p_ttest'],
             p_w=stat['p_wilcoxon'])
  return row


def add_holm(rows: Sequence[dict[str, Any]],
             keys: Sequence[str] = ('p_t', 'p_w')) -> None:
  """Adds '<key>_holm' to every row: Holm over all rows' `key` (in place).

  Rows without the key (or with NaN) do not count in the family and get
  NaN.
  """
  for key in keys:
    ps = [float(r.get(key, math.nan)) if r.get(key) is not None
          else math.nan for r in rows]
    for r, p in zip(rows, holm(ps)):
      r[f'{key}_holm'] = float(p)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
  """(mean, sample std with ddof 1) of the finite values; NaN where
  undefined (std of one value)."""
  x = np.asarray([v for v in values if v is not None], np.float64)
  x = x[np.isfinite(x)]
  if x.size == 0:
    return math.nan, math.nan
  std = float(x.std(ddof=1)) if x.size > 1 else math.nan
  return float(x.mean()), std
