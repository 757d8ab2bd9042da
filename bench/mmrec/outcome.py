"""Outcome parity: our metric over seeds against MMRec's.

    .venv/bin/python bench/mmrec/outcome.py \
        --mmrec_json '/tmp/mmrec_runs/outcome_lgcn_s*.json' \
        --ours 0.412,0.405,0.419,0.409,0.411 [--mostpop_json mostpop.json]
    # every model of a `bench/model_speed.py --mode outcome` folder:
    .venv/bin/python bench/mmrec/outcome.py --dir /tmp/outcome \
        [--mostpop_json mostpop.json]

MMRec's values are the validation Recall@20 of the last evaluated epoch of
each `run_mmrec.py` record (one record per seed, the same epochs and
hyper-parameters as our runs); ours are given as numbers, one per seed, or
as records with the same 'final' layout (`--ours_json`, written by
`bench/model_speed.py --mode outcome`). `--dir` pairs
`ours_<model>_s<seed>.json` with `mmrec_<model>_s<seed>.json` for every
model found and prints the Markdown table (model, ours mean +- SE, MMRec
mean +- SE, difference in standard errors, seeds, epochs).
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
import os
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


def _load(pattern: str) -> list[dict]:
  records = []
  for path in sorted(glob.glob(pattern)):
    with open(path, encoding='utf-8') as f:
      records.append(json.load(f))
  return records


def folder_rows(folder: str, metric: str = 'recall@20') -> list[dict]:
  """One parity row per model with records on both sides in `folder`."""
  models = sorted({os.path.basename(p)[len('ours_'):].rsplit('_s', 1)[0]
                   for p in glob.glob(os.path.join(folder, 'ours_*_s*.json'))})
  rows = []
  for model in models:
    ours = _load(os.path.join(folder, f'ours_{model}_s*.json'))
    ref = _load(os.path.join(folder, f'mmrec_{model}_s*.json'))
    if not ours or not ref:
      continue
    row = parity([record_metric(r, metric) for r in ours],
                 [record_metric(r, metric) for r in ref])
    row.update(model=model, metric=metric,
               ours_seeds=sorted(r['seed'] for r in ours),
               mmrec_seeds=sorted(r['seed'] for r in ref),
               epochs=sorted({r['epochs'] for r in ours + ref}))
    rows.append(row)
  return rows


def table(rows: list[dict], mostpop: float | None = None) -> str:
  """Markdown: model, ours, MMRec, |difference| in SE, seeds, epochs."""
  lines = ['| model | ours mean +- SE | MMRec mean +- SE | difference | '
           'diff in SE | within 2 SE | seeds | epochs |'
           + (' MMRec / MostPop |' if mostpop else ''),
           '|' + '---|' * (9 if mostpop else 8)]
  for r in rows:
    seeds = ','.join(map(str, r['ours_seeds']))
    if r['mmrec_seeds'] != r['ours_seeds']:
      seeds += ' / ' + ','.join(map(str, r['mmrec_seeds']))
    lines.append(
        f"| {r['model']} | {r['ours_mean']:.4f} +- {r['ours_sem']:.4f} | "
        f"{r['ref_mean']:.4f} +- {r['ref_sem']:.4f} | {r['diff']:+.4f} | "
        f"{r['z']:.2f} | {'yes' if r['ok'] else 'NO'} | {seeds} | "
        f"{','.join(map(str, r['epochs']))} |"
        + (f" {r['ref_mean'] / mostpop:.2f} |" if mostpop else ''))
  return '\n'.join(lines)


def main(argv: list[str]) -> None:
  import argparse  # pylint: disable=g-import-not-at-top
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--mmrec_json',
                      help='glob of run_mmrec.py records, one per seed')
  parser.add_argument('--ours', help='comma-separated values, one per seed')
  parser.add_argument('--ours_json', help='glob of our records (model_speed.py'
                      ' --mode outcome), one per seed')
  parser.add_argument('--dir', help='a model_speed.py --mode outcome folder: '
                      'table of every model in it')
  parser.add_argument('--mostpop_json', default=None)
  parser.add_argument('--metric', default='recall@20')
  args = parser.parse_args(argv)
  pop = None
  if args.mostpop_json:
    with open(args.mostpop_json, encoding='utf-8') as f:
      pop = record_metric(json.load(f), args.metric)
  if args.dir:
    rows = folder_rows(args.dir, args.metric)
    with open(os.path.join(args.dir, 'outcome.json'), 'w',
              encoding='utf-8') as f:
      json.dump({'rows': rows, 'mostpop': pop}, f, indent=1)
    print(table(rows, pop))
    return
  if not args.mmrec_json or bool(args.ours) == bool(args.ours_json):
    parser.error('give --dir, or --mmrec_json with one of --ours / '
                 '--ours_json.')
  records = _load(args.mmrec_json)
  ref = [record_metric(r, args.metric) for r in records]
  if args.ours_json:
    ours = [record_metric(r, args.metric) for r in _load(args.ours_json)]
  else:
    ours = [float(v) for v in args.ours.split(',') if v.strip()]
  out = parity(ours, ref)
  out['metric'] = args.metric
  out['mmrec_seeds'] = [r['seed'] for r in records]
  if pop is not None:
    out['mostpop'] = pop
    out['ref_over_mostpop'] = out['ref_mean'] / pop if pop else math.inf
  print(json.dumps(out, indent=1))


if __name__ == '__main__':
  main(sys.argv[1:])
