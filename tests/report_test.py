"""`python -m mmjax.report`: the leverage tables, the figures and index.html of
a hand-made study and sweep, and the page rendered in headless Chromium."""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from absl.testing import absltest
import numpy as np
from PIL import Image

from mmjax import plots
from mmjax import report
from mmjax import sweep

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMIT = '0123456789abcdef0123456789abcdef01234567'
MODELS = ('vbpr', 'freedom')
REPS = ('visual=clip', 'textual=minilm')
CONTROLS = ('real', 'shuffle', 'noise')
GROUPS = ('all', 'cold_items')
SEEDS = (0, 1)
ALPHA = 0.05


def _write_json(path, value):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w', encoding='utf-8') as f:
    json.dump(value, f, indent=2)


def _config(model, rep, control, seed, lr=0.001):
  modality, name = rep.split('=')
  return {
      'seed': seed,
      'model': {'name': model, 'embed_dim': 32},
      'features': {'sources': {modality: name}, 'control': control,
                   'transform': 'none'},
      'optim': {'name': 'adam', 'lr': lr},
      'eval': {'select_metric': 'recall@20', 'topk': [10, 20, 50]},
      'train': {'num_epochs': 6},
  }


def _write_run(directory, cfg, vals, best_epoch, state='done',
               log_tail=None):
  """A run directory as mmjax.launch and the sweep leave it.

  `vals[e - 1]` is the validation Recall@20 at epoch e; test is 0.9 x val.
  """
  os.makedirs(directory, exist_ok=True)
  _write_json(os.path.join(directory, 'config.json'), cfg)
  _write_json(os.path.join(directory, 'runinfo.json'), {
      'git_commit': COMMIT, 'git_dirty': False,
      'argv': ['mmjax/launch.py', '--config', 'configs/x.py',
               '--workdir', directory],
      'python': '3.11.2 (main)', 'platform': 'Linux-test',
      'packages': {'jax': '0.10.2', 'flax': '0.12.0'},
      'devices': ['TFRT_CPU_0'], 'xla_flags': ''})
  with open(os.path.join(directory, 'metrics.jsonl'), 'w',
            encoding='utf-8') as f:
    for e, v in enumerate(vals, start=1):
      f.write(json.dumps({'step': 10 * e, 'epoch': e,
                          'train/loss': 1.0 / e}) + '\n')
      f.write(json.dumps({'step': 10 * e, 'epoch': e, 'val/recall@20': v,
                          'val/ndcg@20': v / 2, 'test/recall@20': 0.9 * v,
                          'val/hit@20/cold_items': 'nan'}) + '\n')
    if state == 'done':
      best = {'val/recall@20': vals[best_epoch - 1],
              'val/ndcg@20': vals[best_epoch - 1] / 2,
              'test/recall@20': 0.9 * vals[best_epoch - 1],
              'test/ndcg@20': 0.45 * vals[best_epoch - 1],
              'test/hit@20': min(1.0, 3 * vals[best_epoch - 1])}
      at_budget = best_epoch == len(vals)
      f.write(json.dumps({'step': 10 * len(vals), 'final': True,
                          'epoch': len(vals), 'best_epoch': best_epoch,
                          'at_budget': at_budget,
                          **{f'best/{k}': v for k, v in best.items()}})
              + '\n')
      _write_json(os.path.join(directory, 'results.json'), {
          'model': cfg['model']['name'], 'best_epoch': best_epoch,
          'best': best, 'fitted': False, 'num_epochs': len(vals),
          'epochs_run': len(vals), 'stopped_early': False,
          'at_budget': at_budget})
    else:
      f.write('{"step": 70, "epoch": 7, "val/rec')  # Cut by a kill.
  status = {'state': state, 'exit_code': 0 if state == 'done' else 1,
            'command': ['python', '-m', 'mmjax.launch']}
  if log_tail:
    status['log_tail'] = log_tail
  _write_json(os.path.join(directory, 'sweep_status.json'), status)


def _curve(k):
  """Six validation values peaking at epoch 3 + k % 3."""
  peak = 3 + k % 3
  return [round(0.05 + 0.02 * min(e, peak) - 0.01 * max(0, e - peak)
                + 0.001 * k, 6) for e in range(1, 7)], peak


def table_rows():
  """table.csv rows: 2 groups x 2 models x 2 representations x 3 controls.

  On each group's first (model, representation) real beats both controls
  significantly; elsewhere the shuffle gap is not significant (p 0.2).
  """
  rows, k = [], 0
  for group in GROUPS:
    for i, model in enumerate(MODELS):
      for j, rep in enumerate(REPS):
        for c, control in enumerate(CONTROLS):
          k += 1
          base = 0.1 + 0.01 * i + 0.005 * j + 0.001 * (group == 'all')
          mean = base - 0.02 * c
          row = {
              'dataset': 'synth', 'model': model, 'representation': rep,
              'control': control, 'group': group, 'n_seeds': 3,
              'recall@20_mean': repr(mean), 'recall@20_std': '0.0012',
              'ndcg@20_mean': repr(mean / 2), 'ndcg@20_std': '0.0007',
              'hit@20_mean': repr(3 * mean), 'hit@20_std': '0.0101',
              'at_budget': 'True' if (i, j, c) == (1, 1, 0) else 'False'}
          stats = dict.fromkeys(('gap', 'p_t', 'p_t_holm', 'p_w_holm',
                                 'effect_d', 'ci_low', 'ci_high',
                                 'p_seeds'), '')
          if control != 'real':
            significant = (i, j) == (0, 0) or control == 'noise'
            gap = 0.02 * c
            stats = {'gap': repr(gap), 'p_t': '0.0001',
                     'p_t_holm': '0.00042' if significant else '0.2',
                     'p_w_holm': '0.0009' if significant else '0.3',
                     'effect_d': '0.4', 'ci_low': repr(gap - 0.005),
                     'ci_high': repr(gap + 0.005), 'p_seeds': '0.01'}
          row.update(stats)
          rows.append(row)
  return rows


def make_study(root):
  """A study directory as mmjax.study leaves it, written by hand."""
  d = os.path.join(root, 'study')
  final = os.path.join(d, 'final')
  runs, study_rows, k = [], [], 0
  for model in MODELS:
    for rep in REPS:
      for control in CONTROLS:
        for seed in SEEDS:
          name = f'{model}-{rep.split("=")[1]}-{control}-seed={seed}'
          vals, peak = _curve(k)
          k += 1
          cfg = _config(model, rep, 'none' if control == 'real' else control,
                        seed)
          _write_run(sweep.run_dir(final, name), cfg, vals, peak)
          runs.append({'name': name, 'overrides': {'seed': seed}})
          study_rows.append({
              'model': model, 'representation': rep, 'control': control,
              'seed': seed, 'run_dir': os.path.join('final', 'runs', name),
              'status': 'done', 'best_epoch': peak, 'at_budget': False,
              'test/recall@20': 0.9 * vals[peak - 1]})
  _write_json(os.path.join(final, 'sweep.json'), {
      'config': '/repo/configs/studies/leverage_synthetic.py',
      'variant': 'runlocal', 'source': 'grid', 'grid': None, 'sets': {},
      'seeds': list(SEEDS), 'runs': runs})
  _write_json(os.path.join(d, 'study.json'), {
      'spec': {'name': 'leverage_test', 'dataset': 'synth',
               'models': list(MODELS)},
      'selected': {'vbpr': {'optim.lr': 0.001}},
      'commands': {
          'study': 'python -m mmjax.study --config configs/studies/'
                   'leverage_synthetic.py:runlocal --workdir studies/s',
          'runs': {r['name']: f'python -m mmjax.launch --workdir '
                              f'final/runs/{r["name"]}' for r in runs}}})
  for name, rows in (('table.csv', table_rows()), ('study.csv', study_rows)):
    with open(os.path.join(d, name), 'w', encoding='utf-8',
              newline='') as f:
      writer = csv.DictWriter(f, fieldnames=list(rows[0]))
      writer.writeheader()
      writer.writerows(rows)
  return d


def make_sweep(root):
  """A LightGCN sweep (lr x 2 seeds) with one failed run, collected."""
  d = os.path.join(root, 'sweep')
  runs, k = [], 0
  for lr in (0.001, 0.01):
    for seed in SEEDS:
      name = f'lr={lr},seed={seed}'
      vals, peak = _curve(k)
      if lr == 0.01:  # The better point on validation; at budget.
        vals = [v + 0.05 * e / 6 for e, v in enumerate(vals, start=1)]
        peak = 6
      k += 1
      _write_run(sweep.run_dir(d, name),
                 _config('lightgcn', 'visual=clip', 'none', seed, lr),
                 vals, peak)
      runs.append({'name': name,
                   'overrides': {'optim.lr': lr, 'seed': seed}})
  name = 'lr=0.1,seed=0'
  _write_run(sweep.run_dir(d, name),
             _config('lightgcn', 'visual=clip', 'none', 0, 0.1),
             [0.01, 0.02], None, state='failed',
             log_tail=['Traceback (most recent call last):',
                       'FloatingPointError: loss is NaN at epoch 3'])
  runs.append({'name': name, 'overrides': {'optim.lr': 0.1, 'seed': 0}})
  _write_json(os.path.join(d, 'sweep.json'), {
      'config': '/repo/configs/lightgcn.py', 'variant': 'runlocal',
      'source': 'grid', 'grid': {'optim.lr': ['0.001', '0.01', '0.1']},
      'sets': {}, 'seeds': list(SEEDS), 'runs': runs})
  sweep.collect(d)
  return d


def markdown_cells(text):
  """{(model, representation): {column: cell}} of a Markdown table."""
  lines = [line for line in text.splitlines() if line.startswith('|')]
  head = [c.strip() for c in lines[0].strip('|').split('|')]
  out = {}
  for line in lines[2:]:
    cells = [c.strip() for c in line.strip('|').split('|')]
    out[tuple(cells[:2])] = dict(zip(head, cells))
  return out


def colour_mask(rgb, colour, tol=6):
  target = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
  return np.all(np.abs(rgb.astype(int) - target) <= tol, axis=-1)


class ReportTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp(prefix='mmjax_report_test_')
    cls.study = make_study(cls.root)
    cls.sweep = make_sweep(cls.root)
    cls.study_report = report.build(cls.study, ALPHA)
    cls.sweep_report = report.build(cls.sweep, ALPHA)
    cls.out = os.path.join(cls.study, 'report')

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.root, ignore_errors=True)
    super().tearDownClass()

  def assertContains(self, page, *texts):
    for text in texts:
      self.assertTrue(text in page, f'{text!r} is not in the page')

  def _read(self, name, directory=None):
    with open(os.path.join(directory or self.out, name),
              encoding='utf-8') as f:
      return f.read()

  def test_one_table_per_group_in_three_formats(self):
    names = sorted(os.path.basename(p) for p in self.study_report.tables)
    self.assertEqual(names, sorted(
        f'leverage_synth_{g}.{ext}' for g in GROUPS
        for ext in ('csv', 'md', 'tex')))

  def test_csv_copies_the_inputs(self):
    inputs = {(r['group'], r['model'], r['representation'], r['control']): r
              for r in table_rows()}
    for group in GROUPS:
      with open(os.path.join(self.out, f'leverage_synth_{group}.csv'),
                encoding='utf-8') as f:
        rows = list(csv.DictReader(f))
      self.assertEqual([(r['model'], r['representation']) for r in rows],
                       [(m, r) for m in MODELS for r in REPS])
      self.assertNotIn('real/p_t_holm', rows[0])
      for r in rows:
        for c in CONTROLS:
          src = inputs[(group, r['model'], r['representation'], c)]
          for m in ('recall@20', 'ndcg@20', 'hit@20'):
            self.assertEqual(r[f'{c}/{m}_mean'], src[f'{m}_mean'])
            self.assertEqual(r[f'{c}/{m}_std'], src[f'{m}_std'])
          if c != 'real':
            self.assertEqual(r[f'{c}/p_t_holm'], src['p_t_holm'])

  def test_markdown_values_p_values_and_marks(self):
    text = self._read('leverage_synth_all.md')
    cells = markdown_cells(text)
    first = cells[('vbpr', 'visual=clip')]
    # real: 0.1 + 0.001 (group all); shuffle 0.02 lower; HR = 3 x recall.
    self.assertEqual(first['real R@20'], '0.1010 ± 0.0012')
    self.assertEqual(first['real HR@20'], '0.3030 ± 0.0101')
    self.assertEqual(first['shuffled R@20'], '0.0810 ± 0.0012†')
    self.assertEqual(first['shuffled NDCG@20'], '0.0405 ± 0.0007')
    self.assertEqual(first['p real vs shuffled (Holm)'], '**4.2e-04**')
    other = cells[('vbpr', 'textual=minilm')]
    self.assertEqual(other['shuffled R@20'], '0.0860 ± 0.0012')
    self.assertEqual(other['noise R@20'], '0.0660 ± 0.0012†')
    self.assertEqual(other['p real vs shuffled (Holm)'], '0.2')
    self.assertEqual(cells[('freedom', 'textual=minilm')]['real R@20'],
                     r'0.1160 ± 0.0012\*')
    # The columns: real, shuffled, noise, each with three metrics, then p.
    head = [c.strip() for c in text.splitlines()[2].strip('|').split('|')]
    self.assertEqual(head[2:5], ['real R@20', 'real NDCG@20', 'real HR@20'])
    self.assertEqual(head[-1], 'p real vs shuffled (Holm)')
    self.assertLen(head, 2 + 3 * 3 + 1)
    self.assertIn(f'p < {ALPHA:g}', text)

  def test_latex_booktabs(self):
    text = self._read('leverage_synth_cold_items.tex')
    for part in (r'\toprule', r'\midrule', r'\bottomrule',
                 r'\begin{tabular}{ll' + 'rrr' * 3 + 'r}',
                 r'\multicolumn{3}{c}{shuffled}', r'\cmidrule(lr){6-8}'):
      self.assertIn(part, text)
    rows = [line for line in text.splitlines()
            if line.startswith(('vbpr', 'freedom'))]
    self.assertLen(rows, 4)
    first = rows[0].rstrip(r' \\').split(' & ')
    self.assertEqual(first[:2], ['vbpr', r'visual=clip'])
    self.assertEqual(first[2], r'0.1000 $\pm$ 0.0012')
    self.assertEqual(first[5], r'0.0800 $\pm$ 0.0012$^{\dagger}$')
    self.assertEqual(first[-1], r'\textbf{4.2e-04}')
    self.assertEqual(rows[1].rstrip(r' \\').split(' & ')[-1], '0.2')

  def test_figures_are_images_of_the_expected_size(self):
    figures = self.study_report.figures
    pngs = [p for p in figures if p.endswith('.png')]
    self.assertCountEqual([p[:-4] + '.pdf' for p in pngs],
                          [p for p in figures if p.endswith('.pdf')])
    names = [os.path.basename(p) for p in pngs]
    self.assertIn('gain_synth.png', names)
    self.assertLen([n for n in names if n.startswith('curves_')], 4)
    # Gain: 2 panels (groups), 4 rows, 2 controls: (2.5 + 2 x 3.5) x
    # (2 + 4 x 0.5) inches at 100 dpi.
    self.assertEqual(plots.gain_size(2, 4, 2), (9.5, 4.0))
    for p in pngs:
      with Image.open(p) as im:
        im.verify()
      with Image.open(p) as im:
        self.assertEqual(im.format, 'PNG')
        expected = (950, 400) if 'gain_' in p else (900, 450)
        self.assertEqual(im.size, expected)
      pdf = p[:-4] + '.pdf'
      with open(pdf, 'rb') as f:
        data = f.read()
      self.assertTrue(data.startswith(b'%PDF-'), pdf)
      self.assertIn(b'%%EOF', data[-64:])
      box = re.search(rb'/MediaBox \[ *0 0 (\d+) (\d+) *\]', data)
      self.assertIsNotNone(box, pdf)
      self.assertEqual(tuple(int(x) for x in box.groups()),
                       (684, 288) if 'gain_' in p else (648, 324))
    # Significant gaps are filled markers in the control's colour.
    with Image.open(os.path.join(self.out, 'gain_synth.png')) as im:
      rgb = np.asarray(im.convert('RGB'))
    self.assertGreater(colour_mask(rgb, plots.CONTROL_COLOURS['shuffle'],
                                   tol=2).sum(), 150)
    self.assertGreater(colour_mask(rgb, plots.CONTROL_COLOURS['noise'],
                                   tol=2).sum(), 150)

  def test_index_is_self_contained_and_complete(self):
    page = self._read('index.html')
    self.assertEqual(self.study_report.index,
                     os.path.join(self.out, 'index.html'))
    self.assertEmpty(re.findall(r'(?:src|href)\s*=\s*["\']?\s*(?:https?:)?//',
                                page, re.I))
    self.assertNotIn('http://', page)
    self.assertNotIn('https://', page)
    self.assertNotIn('<script', page)
    self.assertNotIn('<link', page)
    images = re.findall(r'<img [^>]*src="data:image/png;base64,([^"]+)"',
                        page)
    self.assertLen(images, 1 + 4)  # The gain figure and 4 curve figures.
    self.assertContains(
        page, '<h1>Leverage study leverage_test (study)</h1>', '0.1010',
        '0.0810', '0.1160', 'noise', 'shuffled',
        'cold items', 'leverage_synth_all', '<td class="sig">4.2e-04</td>',
        '<td>0.2</td>', '<sup>†</sup>',
        '--workdir studies/s',  # study.json's command,
        'the 24 final runs\' commands (study.json)',  # and its runs'.
        COMMIT, '0.10.2', '<details><summary>study.json</summary>',
        '&quot;lr&quot;: 0.001')  # A run's config, as JSON.

  def test_learning_curve_of_a_run(self):
    run = os.path.join(self.sweep, 'runs', 'lr=0.001,seed=0')
    curve, metric = report.run_curve(run, 'x', 0)
    self.assertEqual(metric, 'val/recall@20')
    self.assertEqual(curve.epochs, (1, 2, 3, 4, 5, 6))
    vals, peak = _curve(0)
    np.testing.assert_allclose(curve.values, vals)
    self.assertEqual(curve.best_epoch, peak)
    failed = os.path.join(self.sweep, 'runs', 'lr=0.1,seed=0')
    curve, _ = report.run_curve(failed, 'x', 0)
    self.assertEqual(curve.epochs, (1, 2))  # The cut line is left out.
    self.assertIsNone(curve.best_epoch)

  def test_controls_order_names_and_styles(self):
    controls = ['only_textual', 'none', 'noise_visual', 'real', 'shuffle',
                'shuffle_visual', 'noise', 'only_visual']
    ordered = report.order_controls(controls)
    self.assertEqual(ordered, ['real', 'shuffle', 'shuffle_visual', 'noise',
                               'noise_visual', 'none', 'only_textual',
                               'only_visual'])
    self.assertEqual([report.control_name(c) for c in ordered], [
        'real', 'shuffled', 'shuffled visual', 'noise', 'noise visual',
        'none (ID only)', 'only textual', 'only visual'])
    styles = plots.control_styles(ordered)
    self.assertLen(set(styles.values()), len(ordered))
    self.assertEqual(styles['shuffle_visual'][0],
                     plots.CONTROL_COLOURS['shuffle'])

  def test_a_p_column_per_shuffled_control(self):
    rows = [r for r in table_rows() if r['group'] == 'all'
            and r['model'] == 'vbpr' and r['representation'] == 'visual=clip']
    for r in rows:  # shuffle of one modality, noise of all: a p column.
      r['control'] = {'shuffle': 'shuffle_visual'}.get(r['control'],
                                                       r['control'])
    extra = dict(rows[1], control='shuffle_textual', p_t_holm='0.03')
    (table,) = report.leverage_tables(rows + [extra])
    self.assertEqual(table.controls, ('real', 'shuffle_visual',
                                      'shuffle_textual', 'noise'))
    self.assertEqual(table.p_controls, ('shuffle_visual', 'shuffle_textual'))
    cells = markdown_cells(report.table_markdown(table, ALPHA))
    row = cells[('vbpr', 'visual=clip')]
    self.assertEqual(row['p real vs shuffled textual (Holm)'], '**0.03**')
    self.assertEqual(row['p real vs shuffled visual (Holm)'], '**4.2e-04**')
    self.assertNotIn('p real vs noise (Holm)', row)
    latex = report.table_latex(table, ALPHA)
    self.assertIn(r'\multicolumn{2}{c}{$p$ real vs (Holm)}', latex)
    self.assertIn(r'\cmidrule(lr){15-16}', latex)
    self.assertTrue(latex.splitlines()[-4].endswith(
        r'\textbf{4.2e-04} & \textbf{0.03} \\'), latex)
    page = report.table_html(table, ALPHA)
    self.assertIn('<th colspan="2">p real vs (Holm)</th>', page)
    self.assertIn('<th>shuffled textual</th>', page)

  def test_study_rows_name_their_runs(self):
    final = os.path.join(self.study, 'final')
    name = 'vbpr-clip-real-seed=0'
    expected = sweep.run_dir(final, name)
    for row in ({'run_dir': os.path.join('final', 'runs', name)},
                {'run_dir': expected}, {'run': name},
                {'run_dir': f'/elsewhere/final/runs/{name}'}):  # Moved.
      self.assertEqual(
          report.study_run_dir(self.study, row, [final]), expected, row)
    self.assertIsNone(report.study_run_dir(self.study, {'run': 'nope'},
                                           [final]))

  def test_sweep_report(self):
    out = os.path.join(self.sweep, 'report')
    page = self._read('index.html', out)
    self.assertEqual(self.sweep_report.failed, 1)
    self.assertContains(page, 'FloatingPointError: loss is NaN at epoch 3',
                        'lr=0.1,seed=0', '<tr class="failed">',
                        '--grid optim.lr=0.001,0.01,0.1')
    # The summary picks lr=0.01 on validation; its best epoch is the last.
    summary = page[page.index('<h2>Summary</h2>'):page.index('Failed runs')]
    self.assertIn('optim.lr=0.01', summary)
    self.assertNotIn('optim.lr=0.001', summary)
    self.assertIn('* yes', summary)
    with open(os.path.join(self.sweep, 'results.csv'),
              encoding='utf-8') as f:
      results = list(csv.DictReader(f))
    results_table = page[page.index('<h2>Results'):]
    self.assertContains(results_table, '<td>0.001</td>', '<td>0.01</td>')
    for r in results:
      self.assertContains(page, r['run'])
      if r['status'] == 'done':
        self.assertContains(page, f'{float(r["test/recall@20"]):.4f}')
    self.assertNotIn('https://', page)
    names = [os.path.basename(p) for p in self.sweep_report.figures]
    self.assertEqual(names, ['curves_00_lightgcn_visual=clip.png',
                             'curves_00_lightgcn_visual=clip.pdf'])

  def test_missing_inputs_are_one_line_errors(self):
    empty = os.path.join(self.root, 'empty')
    os.makedirs(empty, exist_ok=True)
    study = os.path.join(self.root, 'bad_study')
    shutil.copytree(self.study, study, ignore=shutil.ignore_patterns(
        'report', 'final'))
    cases = [(os.path.join(self.root, 'nope'), 'no such directory'),
             (empty, 'neither study.json')]
    for directory, message in cases:
      with self.assertRaisesRegex(report.ReportError, message):
        report.build(directory)
    os.remove(os.path.join(study, 'table.csv'))
    with self.assertRaisesRegex(report.ReportError, r'table\.csv: missing'):
      report.build(study)
    with open(os.path.join(study, 'table.csv'), 'w', encoding='utf-8') as f:
      f.write('dataset,model\nsynth,vbpr\n')
    with self.assertRaisesRegex(report.ReportError, 'no column .*p_t_holm'):
      report.build(study)
    swept = os.path.join(self.root, 'bad_sweep')
    shutil.copytree(self.sweep, swept)
    os.remove(os.path.join(swept, 'results.csv'))
    with self.assertRaisesRegex(report.ReportError, '--collect'):
      report.build(swept)
    proc = subprocess.run(
        [sys.executable, '-m', 'mmjax.report', study], cwd=REPO,
        capture_output=True, text=True, timeout=300)
    self.assertEqual(proc.returncode, 2, proc.stderr)
    self.assertEqual(proc.stderr.count('\n'), 1, proc.stderr)
    self.assertRegex(proc.stderr, r'^error: .*table\.csv: no column')

  def test_command_line(self):
    proc = subprocess.run(
        [sys.executable, '-m', 'mmjax.report', self.sweep], cwd=REPO,
        capture_output=True, text=True, timeout=300)
    self.assertEqual(proc.returncode, 0, proc.stderr)
    self.assertIn('sweep report:', proc.stdout)
    self.assertIn('1 failed runs', proc.stdout)


def find_chromium():
  for name in ('chromium', 'chromium-browser', 'google-chrome'):
    path = shutil.which(name)
    if path:
      return path
  return None


class ChromiumTest(absltest.TestCase):

  def test_screenshot_shows_the_table_and_the_figure(self):
    binary = find_chromium()
    if binary is None:
      self.skipTest('no chromium binary on PATH (.ci/run installs the '
                    'Debian package chromium)')
    root = tempfile.mkdtemp(prefix='mmjax_report_chromium_')
    self.addCleanup(shutil.rmtree, root, ignore_errors=True)
    study = make_study(root)
    index = report.build(study).index
    shot = os.path.join(root, 'shot.png')
    args = [binary, '--headless', '--disable-gpu', '--hide-scrollbars',
            '--disable-dev-shm-usage',  # Containers' /dev/shm is small.
            f'--user-data-dir={os.path.join(root, "profile")}',
            f'--screenshot={shot}', '--window-size=1280,2000',
            'file://' + os.path.abspath(index)]
    if hasattr(os, 'geteuid') and os.geteuid() == 0:
      args.insert(1, '--no-sandbox')
    proc = subprocess.run(args, capture_output=True, text=True, timeout=180)
    self.assertTrue(os.path.exists(shot),
                    f'no screenshot (exit {proc.returncode}): '
                    f'{proc.stderr[-2000:]}')
    with Image.open(shot) as im:
      self.assertEqual(im.size, (1280, 2000))
      rgb = np.asarray(im.convert('RGB'))
    header = colour_mask(rgb, report.HEADER_COLOUR)
    marker = colour_mask(rgb, plots.CONTROL_COLOURS['shuffle'])
    # Two tables' header rows (two rows of cells each, ~1000 px wide).
    self.assertGreater(header.sum(), 20_000)
    # The gain figure's shuffle markers and whiskers, below the tables.
    self.assertGreater(marker.sum(), 300)
    header_rows = np.flatnonzero(header.any(axis=1))
    marker_rows = np.flatnonzero(marker.sum(axis=1) >= 3)
    self.assertGreater(marker_rows.min(), header_rows.min())


if __name__ == '__main__':
  absltest.main()
