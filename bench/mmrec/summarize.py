"""Prints a markdown table from run_mmrec.py JSON records.

    .venv/bin/python bench/mmrec/summarize.py /tmp/mmrec_runs/*.json

One row per record: model, dataset, training interactions, epochs, median
train and evaluation seconds per epoch (wall and process CPU), the load
average at the end of the run, and validation / test Recall@20 of the last
evaluated epoch. Machine and date come from the records.
"""

from __future__ import annotations

import json
import sys


def _fmt(x, spec: str = '.2f') -> str:
  return '-' if x is None else format(x, spec)


def table(records: list[dict]) -> str:
  lines = ['| model | dataset | train inter. | epochs | train s/epoch '
           '(CPU s) | eval s (CPU s) | load | valid R@20 | test R@20 |',
           '|' + '---|' * 9]
  for r in records:
    final = r.get('final') or {}
    eval_s = r.get('eval_s_median')
    if eval_s is None:
      eval_s = final.get('eval_s')
    lines.append(
        f"| {r['model']} | {r['dataset']} | {r['train_interactions']} | "
        f"{r['epochs']} | {_fmt(r.get('train_s_median'))} "
        f"({_fmt(r.get('train_cpu_s_median'))}) | {_fmt(eval_s)} "
        f"({_fmt(r.get('eval_cpu_s_median'))}) | "
        f"{_fmt(r.get('load_avg'), '.1f')} | "
        f"{_fmt((final.get('valid') or {}).get('recall@20'), '.4f')} | "
        f"{_fmt((final.get('test') or {}).get('recall@20'), '.4f')} |")
  machines = sorted({f"{r['machine']}, torch {r['versions']['torch']}, "
                     f"{r['torch_threads']} threads" for r in records})
  dates = sorted(r['date'] for r in records)
  footer = [f'machine: {m}' for m in machines]
  if dates:
    footer.append(f'dates: {dates[0]} .. {dates[-1]}')
  return '\n'.join(lines + [''] + footer)


def main(paths: list[str]) -> None:
  records = []
  for path in paths:
    with open(path, encoding='utf-8') as f:
      records.append(json.load(f))
  print(table(records))


if __name__ == '__main__':
  main(sys.argv[1:])
