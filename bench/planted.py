r"""The planted answer, on top of the leverage study (`mmjax.study`).

Does a model use the modality that carries the signal? The synthetic
generator (mmjax/data/synthetic.py) plants the users' preference in one
modality: preset `visual` (half of the interactions follow the user's colour,
which only the images show), `text` (the material, only in the text), `none`
(no content signal). The study config configs/studies/leverage_synthetic.py
runs the whole experiment per preset (tuning on validation, then real,
shuffled, noise, ID-only and single-modality runs over seeds, the paired
statistics and the tables):

  python -m mmjax.study \
      --config configs/studies/leverage_synthetic.py:preset=visual \
      --workdir studies/planted/visual --workers 2
  python -m mmjax.report studies/planted/visual

(variants: preset=visual|text|none, models=vbpr+lattice, seeds=N,
split=random, sparse, visual_signal=X; see the config's docstring).

This script adds what one study does not give, reading the studies through
mmjax.study's public functions (`run_study`, `read_record`, `collect`) and
their table.csv; it computes no statistics of its own:

  answer     one table over the studies of several presets: every model's
             real features against each modality shuffled, per group (all
             users, and the cold-only ranking on a cold-item split), with
             `expected` (the generator plants signal in the shuffled
             modality, from `synthetic.mixture`) and `holds` (significant,
             Holm-adjusted within its study's table, exactly where
             expected).
  knob       the study at several `visual_signal` values (preset visual,
             variant visual_signal=X), run or resumed in <out_dir>/vs<X>/,
             and real - shuffle_visual against the value; the knob's rows
             are Holm-adjusted as their own family (`stats.add_holm`).
  agreement  the kNN agreement diagnostic of a study's dataset: the share of
             an item's k nearest neighbours (cosine, self excluded) sharing
             its planted colour or material, by the real features, the
             shuffled ones (exactly as a control run of that seed sees them)
             and the training interactions. It says whether the content can
             reach an item-graph model (FREEDOM, LATTICE) at all, and how
             much of the planted attribute the interactions reveal alone.

  python bench/planted.py answer --studies studies/planted/visual,\
studies/planted/text,studies/planted/none --out_dir studies/planted
  python bench/planted.py knob --out_dir studies/knob --values 0,0.25,0.5 \
      --variant models=vbpr,seeds=3 --workers 2
  python bench/planted.py agreement --studies studies/planted/visual \
      --out_dir studies/planted

Each mode writes <out_dir>/<mode>.md and <mode>.csv and prints the table.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from typing import Any, Sequence

from absl import app
from absl import flags
import numpy as np

from mmjax import study
from mmjax import sweep
from mmjax.data import synthetic
from mmjax.eval import stats

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO, 'configs', 'studies', 'leverage_synthetic.py')
MODES = ('answer', 'knob', 'agreement')
# The generator's mixture weight that plants signal in each modality.
SIGNAL_WEIGHT = {'visual': 'visual_signal', 'textual': 'text_signal'}
ATTRIBUTES = ('colour', 'material')
ANSWER_GROUPS = ('all', 'cold_only')


class PlantedError(ValueError):
  """Bad input to this script; the message says what and where."""


# ---------------------------------------------------------------------------
# Reading a study.


def read_table(workdir: str) -> list[dict[str, str]]:
  """A study's table.csv rows (text), collecting it first if missing.

  Raises:
    PlantedError: `workdir` is not a study directory.
  """
  path = os.path.join(workdir, 'table.csv')
  if not os.path.exists(path):
    if study.read_record(workdir) is None:
      raise PlantedError(f'{workdir}: no {study.STUDY}; not a study '
                         'directory (run python -m mmjax.study first)')
    study.collect(workdir)
  with open(path, encoding='utf-8', newline='') as f:
    return list(csv.DictReader(f))


def synthetic_settings(record: dict[str, Any], workdir: str
                       ) -> dict[str, Any]:
  """The generator overrides every run of the study had (its `sets`).

  Raises:
    PlantedError: the study is not on synthetic data.
  """
  try:
    return dict(record['spec']['sets']['data']['overrides']['synthetic'])
  except (KeyError, TypeError):
    raise PlantedError(f'{workdir}: its study sets no '
                       'data.overrides.synthetic; not a synthetic study'
                       ) from None


def planted_modalities(synth: dict[str, Any]) -> set[str]:
  """The modalities the generator plants signal in, for these overrides."""
  cfg = synthetic.default_config()
  for key, value in synth.items():
    if key in cfg:
      cfg[key] = value
  weights = synthetic.mixture(cfg)
  return {m for m, w in SIGNAL_WEIGHT.items() if weights[w] > 0}


def _num(text: str) -> float:
  try:
    return float(text)
  except (TypeError, ValueError):
    return float('nan')


def shuffle_rows(workdir: str, groups: Sequence[str] = ANSWER_GROUPS
                 ) -> list[dict[str, Any]]:
  """Real against each shuffled modality, from one study's table.

  Returns:
    One row per (model, representation, group, shuffle_<m> control): the
    study's dataset label, model, representation, group, control, the
    shuffled modality, real and control test Recall@20 (means over seeds),
    gap, ci_low, ci_high, gap_per_seed (text 'seed:gap ...'), p_seeds, p_t
    and p_t_holm (Holm within the study's table), n_seeds.
  """
  table = read_table(workdir)
  real = {(r['model'], r['representation'], r['group']): r for r in table
          if r['control'] == 'real'}
  out = []
  for r in table:
    kind, modality = study.parse_control(r['control'])
    if kind != 'shuffle' or not modality or r['group'] not in groups:
      continue
    base = real.get((r['model'], r['representation'], r['group']))
    out.append({
        'dataset': r['dataset'], 'model': r['model'],
        'representation': r['representation'], 'group': r['group'],
        'control': r['control'], 'modality': modality,
        'real': _num(base['recall@20_mean']) if base else float('nan'),
        'shuffled': _num(r['recall@20_mean']), 'gap': _num(r['gap']),
        'ci_low': _num(r['ci_low']), 'ci_high': _num(r['ci_high']),
        'gap_per_seed': r.get('gap_per_seed', ''),
        'p_seeds': _num(r['p_seeds']), 'p_t': _num(r['p_t']),
        'p_t_holm': _num(r['p_t_holm']), 'n_seeds': int(r['n_seeds'])})
  return out


# ---------------------------------------------------------------------------
# answer


def answer_rows(workdirs: Sequence[str], alpha: float
                ) -> list[dict[str, Any]]:
  """The planted-answer rows of several studies (`shuffle_rows` plus
  'expected', 'significant' and 'holds').

  significant: Holm-adjusted p (within the study's table) below `alpha` and
  a positive gap; expected: the study's generator plants signal in the
  shuffled modality; holds: the two agree.
  """
  rows = []
  for workdir in workdirs:
    record = study.read_record(workdir)
    if record is None:
      raise PlantedError(f'{workdir}: no {study.STUDY}; not a study '
                         'directory')
    planted = planted_modalities(synthetic_settings(record, workdir))
    for r in shuffle_rows(workdir):
      r['expected'] = r['modality'] in planted
      r['significant'] = bool(r['p_t_holm'] < alpha and r['gap'] > 0)
      r['holds'] = r['expected'] == r['significant']
      rows.append(r)
  return rows


def format_answer(rows: Sequence[dict[str, Any]]) -> str:
  head = ('dataset', 'model', 'group', 'control', 'Recall@20 real',
          'shuffled', 'gap', '95% CI', 'gap per seed', 'p seeds',
          'p_t (Holm)', 'sig.', 'expected', 'holds', 'n')
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for r in rows:
    lines.append('| ' + ' | '.join((
        r['dataset'], r['model'], r['group'], r['control'], _f(r['real']),
        _f(r['shuffled']), _f(r['gap'], '+.4f'), _ci(r),
        _seed_gaps(r['gap_per_seed']), _p(r['p_seeds']), _p(r['p_t_holm']),
        _yes(r['significant']), _yes(r['expected']), _yes(r['holds']),
        str(r['n_seeds']))) + ' |')
  return '\n'.join(lines)


# ---------------------------------------------------------------------------
# knob


def knob_spec(config: str, value: str, variant: str) -> str:
  """The study config of one knob value: preset visual, visual_signal=X."""
  parts = [f'visual_signal={value}'] + ([variant] if variant else [])
  return f'{config}:{",".join(parts)}'


def knob_dir(out_dir: str, value: str) -> str:
  return os.path.join(out_dir, f'vs{value}')


def run_knob(config: str, out_dir: str, values: Sequence[str], variant: str,
             workers: int) -> int:
  """Runs (or resumes) the study of every knob value; the worst exit
  status (`study.run_study`'s)."""
  status = 0
  for value in values:
    spec = knob_spec(config, value, variant)
    print(f'knob visual_signal={value}: {spec}', flush=True)
    status = max(status, study.run_study(spec, knob_dir(out_dir, value),
                                         workers))
  return status


def knob_rows(out_dir: str, values: Sequence[str]) -> list[dict[str, Any]]:
  """real - shuffle_visual per (model, group) and knob value; 'p_t_holm'
  is Holm over these rows (the knob's own family)."""
  rows = []
  for value in values:
    for r in shuffle_rows(knob_dir(out_dir, value)):
      if r['modality'] == 'visual':
        rows.append({'visual_signal': float(value),
                     **{k: v for k, v in r.items() if k != 'p_t_holm'}})
  rows.sort(key=lambda r: (r['model'], r['group'], r['visual_signal']))
  stats.add_holm(rows, ('p_t',))
  return rows


def format_knob(rows: Sequence[dict[str, Any]]) -> str:
  head = ('model', 'group', 'visual_signal', 'Recall@20 real',
          'shuffled visual', 'gap', '95% CI', 'gap per seed', 'p seeds',
          'p_t (Holm, knob)', 'n')
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for r in rows:
    lines.append('| ' + ' | '.join((
        r['model'], r['group'], f'{r["visual_signal"]:g}', _f(r['real']),
        _f(r['shuffled']), _f(r['gap'], '+.4f'), _ci(r),
        _seed_gaps(r['gap_per_seed']), _p(r['p_seeds']), _p(r['p_t_holm']),
        str(r['n_seeds']))) + ' |')
  return '\n'.join(lines)


# ---------------------------------------------------------------------------
# agreement


def same_share(idx: np.ndarray, ok: np.ndarray, values: np.ndarray
               ) -> float:
  """Share of (item, neighbour) pairs with equal `values`.

  Args:
    idx: int [I, k] neighbour ids.
    ok: bool [I, k], False for empty slots (left out).
    values: [I] an attribute of every item.
  """
  return float(np.mean((values[idx] == values[:, None])[ok]))


def chance_share(values: np.ndarray) -> float:
  """The share for two distinct items drawn at random: sum n_g (n_g - 1)
  / (I (I - 1)) over the attribute's groups g."""
  _, counts = np.unique(values, return_counts=True)
  n = len(values)
  return float(np.sum(counts * (counts - 1)) / (n * (n - 1)))


def neighbour_graphs(dataset_dir: str, sources: dict[str, str], seed: int,
                     k: int, transform: str = 'none'):
  """The kNN graphs whose attribute agreement `neighbour_agreement` reads.

  Per modality, the top-k cosine graph (self excluded, `mmjax.graph.knn`)
  of the real features and of the shuffled ones exactly as a control run
  of seed `seed` sees them (`controls.control_features`, then the
  transform); and the graph of the training interactions (item rows of the
  binary item-user matrix, ItemKNN's cosine; items without a training
  interaction have no neighbours).

  Returns:
    (dataset, [(source, 'real' | 'shuffled', idx int [I, k], ok bool [I, k])]).
  """
  # pylint: disable=g-import-not-at-top
  from mmjax.data import dataset as dataset_lib
  from mmjax.data import store
  from mmjax.graph import knn
  from mmjax.models import controls
  # pylint: enable=g-import-not-at-top
  ds = dataset_lib.load(dataset_dir)
  graphs = []

  def add(source, label, x, mask=None):
    idx, val = knn.cosine_topk(x, k, mask, exclude_self=True)
    graphs.append((source, label, np.asarray(idx),
                   np.isfinite(np.asarray(val))))

  for modality, name in sorted(sources.items()):
    feat = store.load(dataset_dir, name, ds.item_ids)
    for label, how in (('real', 'none'), ('shuffled', 'shuffle')):
      raw = controls.control_features(feat.values, feat.mask, how, seed,
                                      modality)
      x, _ = controls.transform_features(raw, feat.mask, transform)
      add(modality, label, x, feat.mask)
  users, items = ds.select(dataset_lib.TRAIN)
  inter = np.zeros((ds.num_items, ds.num_users), np.float32)
  inter[items, users] = 1.0
  add('interactions', 'real', inter)
  return ds, graphs


def neighbour_agreement(dataset_dir: str, sources: dict[str, str],
                        seed: int, k: int, transform: str = 'none'
                        ) -> list[dict[str, Any]]:
  """How often an item's kNN neighbours share its planted attributes.

  FREEDOM's frozen item graph and LATTICE's original one are top-k cosine
  graphs of the initial features: whether they link items of one colour (or
  material) says whether the content can reach these models at all. The
  graphs are those of `neighbour_graphs` (real, shuffled, interactions).

  Returns:
    One row per graph: source ('visual', 'textual', 'interactions'),
    features ('real' or 'shuffled'), items (items with all k neighbours),
    and per attribute (colour, material) the share of (item, neighbour)
    pairs that share it and its chance share.

  Raises:
    PlantedError: the item table lacks the planted attributes (not
      synthetic data).
  """
  ds, graphs = neighbour_graphs(dataset_dir, sources, seed, k, transform)
  missing = [a for a in ATTRIBUTES if a not in ds.item_table]
  if missing:
    raise PlantedError(f'{dataset_dir}/items.json has no {missing} column; '
                       'the diagnostic needs synthetic data.')
  attrs = {a: np.asarray(ds.item_table[a]) for a in ATTRIBUTES}
  rows = []
  for source, label, idx, ok in graphs:
    row = {'source': source, 'features': label,
           'items': int(ok.all(axis=1).sum())}
    for a, v in attrs.items():
      row[a] = same_share(idx, ok, v)
      row[a + '_chance'] = chance_share(v)
    rows.append(row)
  return rows


def study_datasets(workdir: str) -> list[dict[str, Any]]:
  """Per (representation, seed), the dataset and features of a finished
  real run of the study: {'representation', 'seed', 'dataset_dir',
  'sources', 'transform'}.

  Raises:
    PlantedError: not a study directory.
  """
  record = study.read_record(workdir)
  if record is None:
    raise PlantedError(f'{workdir}: no {study.STUDY}; not a study directory')
  final = os.path.join(workdir, study.FINAL)
  out, seen = [], set()
  for e in record.get('entries', []):
    key = (e['representation'], e['seed'])
    if e['control'] != 'real' or e['kind'] != 'real' or key in seen:
      continue
    run = sweep.run_dir(final, e['run'])
    if not sweep.is_finished(run):
      continue
    with open(os.path.join(run, 'runinfo.json'), encoding='utf-8') as f:
      info = json.load(f)
    with open(os.path.join(run, sweep.CONFIG), encoding='utf-8') as f:
      features = json.load(f)['features']
    seen.add(key)
    out.append({'representation': e['representation'], 'seed': e['seed'],
                'dataset_dir': info['dataset']['dir'],
                'sources': dict(features['sources']),
                'transform': features.get('transform') or 'none'})
  return out


def agreement_rows(workdirs: Sequence[str], k: int) -> list[dict[str, Any]]:
  """`neighbour_agreement` per study and representation, mean and range
  over the seeds of its finished real runs."""
  out = []
  for workdir in workdirs:
    dataset = (study.read_record(workdir) or {}).get('dataset') or workdir
    by_rep: dict[str, list[list[dict[str, Any]]]] = {}
    for d in study_datasets(workdir):
      by_rep.setdefault(d['representation'], []).append(neighbour_agreement(
          d['dataset_dir'], d['sources'], int(d['seed']), k, d['transform']))
    for rep, per_seed in by_rep.items():
      for j, row in enumerate(per_seed[0]):
        rows = [s[j] for s in per_seed]
        merged = {'dataset': dataset, 'representation': rep,
                  'source': row['source'], 'features': row['features'],
                  'seeds': len(rows)}
        for a in ATTRIBUTES:
          vals = [r[a] for r in rows]
          merged[a] = float(np.mean(vals))
          merged[a + '_min'] = float(np.min(vals))
          merged[a + '_max'] = float(np.max(vals))
          merged[a + '_chance'] = float(np.mean([r[a + '_chance']
                                                 for r in rows]))
        out.append(merged)
  return out


def format_agreement(rows: Sequence[dict[str, Any]], k: int) -> str:
  head = ('dataset', 'graph', 'features', f'same colour (of {k} nbrs)',
          'same material', 'chance (colour, material)', 'seeds')
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for r in rows:
    def cell(a):
      lo, hi = r[a + '_min'], r[a + '_max']
      return (f'{r[a]:.3f}' if lo == hi
              else f'{r[a]:.3f} ({lo:.3f}-{hi:.3f})')
    lines.append('| ' + ' | '.join((
        r['dataset'], r['source'], r['features'], cell('colour'),
        cell('material'),
        f'{r["colour_chance"]:.3f}, {r["material_chance"]:.3f}',
        str(r['seeds']))) + ' |')
  return '\n'.join(lines)


# ---------------------------------------------------------------------------
# Formatting and files.


def _f(x: float, spec: str = '.4f') -> str:
  return '-' if x != x else format(x, spec)  # NaN: undefined.


def _p(x: float) -> str:
  return '-' if x != x else f'{x:.1e}'


def _ci(r: dict[str, Any]) -> str:
  if r['ci_low'] != r['ci_low']:
    return '-'
  return f'[{r["ci_low"]:+.4f}, {r["ci_high"]:+.4f}]'


def _seed_gaps(text: str) -> str:
  """'0:+0.01 1:-0.02' -> '+0.010 -0.020' (the seeds are in the table)."""
  return ' '.join(f'{float(x.split(":")[1]):+.3f}' for x in text.split())


def _yes(flag: bool) -> str:
  return 'yes' if flag else 'no'


def write_outputs(out_dir: str, mode: str, rows: Sequence[dict[str, Any]],
                  text: str) -> None:
  """<out_dir>/<mode>.md (the table) and <mode>.csv (every field)."""
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, f'{mode}.md'), 'w', encoding='utf-8') as f:
    f.write(text + '\n')
  keys = list(dict.fromkeys(k for r in rows for k in r))
  with open(os.path.join(out_dir, f'{mode}.csv'), 'w', encoding='utf-8',
            newline='') as f:
    w = csv.DictWriter(f, fieldnames=keys, restval='', lineterminator='\n')
    w.writeheader()
    w.writerows(rows)


# ---------------------------------------------------------------------------
# Command line.


def define_flags() -> None:
  """The flags (defined only when run as a script, so that the tests can
  import this module beside others that define the same names)."""
  flags.DEFINE_string('out_dir', None, 'Where <mode>.md and <mode>.csv go '
                      '(knob: also the studies, one per value).')
  flags.DEFINE_list('studies', [], 'answer, agreement: study directories.')
  flags.DEFINE_string('config', CONFIG, 'knob: the study config file.')
  flags.DEFINE_list('values', ['0', '0.25', '0.5'],
                    'knob: visual_signal values.')
  flags.DEFINE_string('variant', '', "knob: the config's other variants "
                      "(e.g. 'models=vbpr,seeds=3').")
  flags.DEFINE_integer('workers', 2, 'knob: runs at once.')
  flags.DEFINE_bool('run', True, 'knob: run or resume the studies (else '
                    'only tabulate the finished ones).')
  flags.DEFINE_float('alpha', 0.01, 'answer: significance level after Holm.')
  flags.DEFINE_integer('knn_k', 10, 'agreement: neighbours per item (the '
                       "configs' knn_k).")


def planted_main(mode: str) -> int:
  fl = flags.FLAGS
  if not fl.out_dir:
    raise PlantedError('--out_dir is required')
  status = 0
  if mode == 'answer':
    if not fl.studies:
      raise PlantedError('answer needs --studies DIR,DIR,...')
    rows = answer_rows(fl.studies, fl.alpha)
    text = format_answer(rows)
  elif mode == 'knob':
    if fl.run:
      status = run_knob(fl.config, fl.out_dir, fl.values, fl.variant,
                        fl.workers)
    rows = knob_rows(fl.out_dir, fl.values)
    text = format_knob(rows)
  else:
    if not fl.studies:
      raise PlantedError('agreement needs --studies DIR,DIR,...')
    rows = agreement_rows(fl.studies, fl.knn_k)
    text = format_agreement(rows, fl.knn_k)
  print(text)
  write_outputs(fl.out_dir, mode, rows, text)
  return status


def main(argv: Sequence[str]) -> None:
  if len(argv) != 2 or argv[1] not in MODES:
    sys.stderr.write(f'usage: {argv[0]} {"|".join(MODES)} --out_dir DIR '
                     '[flags]\n')
    sys.exit(2)
  try:
    sys.exit(planted_main(argv[1]))
  except (PlantedError, study.StudyError) as e:
    sys.stderr.write(f'error: {e}\n')
    sys.exit(2)


if __name__ == '__main__':
  define_flags()
  app.run(main)
