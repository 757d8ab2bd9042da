"""Outcome parity: our metric over seeds against MMRec's.

    .venv/bin/python bench/mmrec/outcome.py \
        --mmrec_json '/tmp/mmrec_runs/outcome_lgcn_s*.json' \
        --ours 0.412,0.405,0.419,0.409,0.411 [--mostpop_json mostpop.json]

MMRec's values are the validation Recall@20 of the last evaluated epoch of
each `run_mmrec.py` record (one record per seed, the same epochs and
hyper-parameters as our runs); ours are given as numbers, one per seed.
Parity holds when the two means differ by at most 2 standard errors of the
difference of means, sqrt(s_a^2 / n_a + s_b^2 / n_b) with sample standard
deviations (ddof 1). With --mostpop_json, it also reports whether MMRec's
mean reaches 1.5x MostPop's validation Recall@20 (the check that the
dataset separates a learned model from popularity at all).
"""

from __future__ import annotations

import glob
import json
import math
import sys

import numpy as np


def summary(values) -> tuple[float, float]:
  """(mean, standard error of the mean) with ddof 1; SEM 0 for one value."""
  x = np.asarray(values, np.float64)
  if x.size == 0:
    raise ValueError('no values.')
  sem = float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else 0.0
  return float(x.mean()), sem


def parity(ours, reference, max_se: float = 2.0) -> dict[str, float]:
  """Difference of means in standard errors of the difference."""
  m_a, se_a = summary(ours)
  m_b, se_b = summary(reference)
  se = math.sqrt(se_a ** 2 + se_b ** 2)
  diff = m_a - m_b
  z = abs(diff) / se if se > 0 else (0.0 if diff == 0 else math.inf)
  return {'ours_mean': m_a, 'ours_sem': se_a, 'ref_mean': m_b,
          'ref_sem': se_b, 'diff': diff, 'diff_se': se, 'z': z,
          'ok': bool(z <= max_se), 'n_ours': len(ours),
          'n_ref': len(reference)}


def record_metric(record: dict, metric: str = 'recall@20',
                  split: str = 'valid') -> float:
  final = record.get('final')
  if not final:
    raise ValueError(f"{record.get('model')}: record has no evaluation.")
  return float(final[split][metric])


def main(argv: list[str]) -> None:
  import argparse  # pylint: disable=g-import-not-at-top
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--mmrec_json', required=True,
                      help='glob of run_mmrec.py records, one per seed')
  parser.add_argument('--ours', required=True,
                      help='comma-separated values, one per seed')
  parser.add_argument('--mostpop_json', default=None)
  parser.add_argument('--metric', default='recall@20')
  args = parser.parse_args(argv)
  records = []
  for path in sorted(glob.glob(args.mmrec_json)):
    with open(path, encoding='utf-8') as f:
      records.append(json.load(f))
  ref = [record_metric(r, args.metric) for r in records]
  ours = [float(v) for v in args.ours.split(',') if v.strip()]
  out = parity(ours, ref)
  out['metric'] = args.metric
  out['mmrec_seeds'] = [r['seed'] for r in records]
  if args.mostpop_json:
    with open(args.mostpop_json, encoding='utf-8') as f:
      pop = record_metric(json.load(f), args.metric)
    out['mostpop'] = pop
    out['ref_over_mostpop'] = out['ref_mean'] / pop if pop else math.inf
  print(json.dumps(out, indent=1))


if __name__ == '__main__':
  main(sys.argv[1:])
