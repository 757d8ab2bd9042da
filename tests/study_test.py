"""`python -m mmjax.study`: the study configs expand, and the synthetic
runlocal study runs end to end, resumes, and tabulates what it ran."""

import csv
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np

from mmjax import study
from mmjax import sweep
from mmjax.eval import ranking
from mmjax.eval import stats

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STUDIES = os.path.join(REPO, 'configs', 'studies')
SYNTHETIC = os.path.join(STUDIES, 'leverage_synthetic.py')
TIMEOUT = 600


def child_env():
  """One CPU device for the runs (conftest asks for 8, which they do not
  need and compile more slowly with)."""
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}
  env['JAX_PLATFORMS'] = 'cpu'
  return env


def read_csv(path):
  with open(path, encoding='utf-8') as f:
    return list(csv.DictReader(f))


class ExpandTest(parameterized.TestCase):
  """Every study config loads and expands into runs, none of them run."""

  @parameterized.parameters(
      ('leverage_synthetic.py', ''), ('leverage_synthetic.py', 'preset=text'),
      ('leverage_synthetic.py', 'runlocal'), ('leverage_ml_lvlm.py', ''),
      ('cikm25_ml_lvlm.py', ''), ('cikm25_ml_lvlm.py', 'fast'))
  def test_expands(self, name, variant):
    spec = os.path.join(STUDIES, name) + (f':{variant}' if variant else '')
    plan = study.Plan(spec, '/nonexistent/study')
    self.assertNotEmpty(plan.tunes)
    # The first tuning sweep resolves every run as launch would; the
    # others have the product of their grid x the tuning seeds.
    first = plan.expand_tune(plan.tunes[0])
    for tune in plan.tunes:
      size = math.prod(len(v) for v in tune['grid'].values())
      if tune is plan.tunes[0]:
        self.assertLen(first, size * len(plan.tune_seeds))
      for key in tune['grid']:
        self.assertNotIn(key, tune['sets'])
    selected = {t['key']: {k: v[0] for k, v in t['grid'].items()}
                for t in plan.tunes}
    runs, entries = plan.final(selected)
    names = [r.name for r in runs]
    self.assertLen(set(names), len(names))
    self.assertEqual({e['run'] for e in entries}, set(names))
    for e in entries:
      run = runs[names.index(e['run'])]
      kind, modality = study.parse_control(e['control'])
      over = run.overrides  # What varies: the point, features, seed.
      self.assertEqual(over['seed'], e['seed'])
      for k, v in over.items():
        self.assertIn(f'--config.{k}={sweep.format_value(v)}', run.args)
      if e['kind'] == 'reference' or kind == 'none':
        self.assertNotIn('features.sources', over)
        if kind == 'none':
          cp = plan.models[e['model']]['counterpart']
          self.assertEqual(run.config,
                           study.section_spec(plan.counterparts[cp]))
        continue
      sources = plan.representations[e['representation']]
      self.assertEqual(run.config,
                       study.section_spec(plan.models[e['model']]))
      if kind == 'only':
        self.assertEqual(over['features.sources'],
                         {modality: sources[modality]})
      else:
        self.assertEqual(over['features.sources'], sources)
      if kind in ('shuffle', 'noise'):
        self.assertEqual(over['features.control'], kind)
        self.assertEqual(list(over['features.control_modalities']),
                         [modality] if modality else [])
      else:
        self.assertNotIn('features.control', over)
      for k, v in selected[sweep.sanitize(
          f'{e["model"]}.{e["representation"]}')].items():
        self.assertEqual(over[k], v)
    text = study.describe_plan(plan)
    self.assertIn(f'{len(runs)} final runs', text)
    # Every final run's flags resolve (checked on one per config file).
    seen = set()
    for r in runs:
      if r.config not in seen:
        seen.add(r.config)
        sweep.resolve(r.config, r.args)

  def test_final_runs_with_other_settings_are_refused(self):
    final = tempfile.mkdtemp(prefix='mmjax_study_final_')
    self.addCleanup(shutil.rmtree, final, ignore_errors=True)
    run = {'name': 'm.r.real.seed=0', 'overrides': {'seed': 0},
           'config': 'c.py', 'args': ['--config.train.num_epochs=5']}
    sweep.write_json(os.path.join(final, sweep.SPEC), {'runs': [run]})
    study.check_final(final, {'runs': [run]})  # The same: fine.
    edited = {**run, 'args': ['--config.train.num_epochs=9']}
    with self.assertRaisesRegex(study.StudyError, 'other settings'):
      study.check_final(final, {'runs': [edited]})

  def test_bad_controls_are_refused(self):
    for name in ('shuffled', 'none_visual', 'only', 'real_x'):
      with self.assertRaisesRegex(study.StudyError, 'unknown control'):
        study.parse_control(name)
    self.assertEqual(study.parse_control('noise_textual'),
                     ('noise', 'textual'))


def plant_run(final_dir, name, seed, per_user, cold, test, model='vbpr'):
  """A finished run of a study's final sweep, with per-user test values."""
  d = sweep.run_dir(final_dir, name)
  os.makedirs(d)
  users = np.arange(len(per_user))
  result = ranking.EvalResult(
      per_user={'recall@20': np.asarray(per_user, np.float64),
                'recall@20/cold_items': np.asarray(cold, np.float64)},
      users=users.astype(np.int32), summary={},
      top_items=np.zeros((len(users), 1), np.int32))
  ranking.save_per_user(result, os.path.join(d, 'per_user_test.npz'),
                        split_hash='h', split='test', name=name)
  files = {
      sweep.RESULTS: {'model': model, 'best_epoch': 3, 'at_budget': False,
                      'best': {'val/recall@20': 0.5, **test}},
      sweep.STATUS: {'state': 'done'},
      sweep.CONFIG: {'seed': seed, 'model': {'name': model},
                     'eval': {'user_groups': []}}}
  for file, value in files.items():
    with open(os.path.join(d, file), 'w', encoding='utf-8') as f:
      json.dump(value, f)
  return d


class CollectTest(absltest.TestCase):
  """collect() on planted runs: the statistics are stats' on the pairs."""

  def test_table_from_planted_runs(self):
    workdir = tempfile.mkdtemp(prefix='mmjax_study_collect_')
    self.addCleanup(shutil.rmtree, workdir, ignore_errors=True)
    final = os.path.join(workdir, study.FINAL)
    nan = float('nan')
    values = {  # (control, seed) -> per-user recall@20 of 4 users.
        ('real', 0): [1.0, 0.5, 0.5, 0.0], ('real', 1): [1.0, 1.0, 0.5, 0.0],
        ('shuffle', 0): [0.0, 0.5, 0.0, 0.0],
        ('shuffle', 1): [0.5, 0.0, 0.5, 0.0],
    }
    entries = []
    for (control, seed), v in values.items():
      name = f'vbpr.r.{control}.seed={seed}'
      cold = [v[0], nan, v[2], nan]
      plant_run(final, name, seed, v, cold, {
          'test/recall@20': float(np.mean(v)), 'test/ndcg@20': 0.1,
          'test/hit@20': 0.2,
          'test/recall@20/cold_items': float(np.nanmean(cold))})
      entries.append({'model': 'vbpr', 'representation': 'r',
                      'control': control, 'seed': seed, 'run': name,
                      'kind': 'real' if control == 'real' else 'control'})
    with open(os.path.join(workdir, study.STUDY), 'w', encoding='utf-8') as f:
      json.dump({'dataset': 'd', 'spec': {'num_boot': 500},
                 'final_seeds': [0, 1], 'entries': entries}, f)
    rows = study.collect(workdir)
    got = {(r['control'], r['group']): r for r in rows}
    self.assertEqual(set(got), {(c, g) for c in ('real', 'shuffle')
                                for g in ('all', 'cold_items')})
    self.assertNotIn('p_t', got['real', 'all'])
    self.assertAlmostEqual(got['real', 'all']['recall@20_mean'], 0.5625)
    self.assertAlmostEqual(got['real', 'all']['recall@20_std'],
                           math.sqrt(2 * 0.0625 ** 2))
    for group, metric in (('all', 'recall@20'),
                          ('cold_items', 'recall@20/cold_items')):
      pairs = []
      for seed in (0, 1):
        pairs.append((seed, *[ranking.load_per_user(os.path.join(
            final, 'runs', f'vbpr.r.{c}.seed={seed}', 'per_user_test.npz'))
                              for c in ('real', 'shuffle')]))
      want = stats.real_vs_control(stats.pool(pairs, metric), num_boot=10)
      row = got['shuffle', group]
      for k in ('gap', 'p_t', 'effect_d', 'p_seeds'):
        # p_seeds is NaN for 'all': both seeds' gaps are 0.375.
        np.testing.assert_allclose(row[k], want[k], err_msg=k)
    # Holm over the table's two tests.
    ps = [got['shuffle', g]['p_t'] for g in ('all', 'cold_items')]
    np.testing.assert_allclose(
        [got['shuffle', g]['p_t_holm'] for g in ('all', 'cold_items')],
        stats.holm(ps))
    table = read_csv(os.path.join(workdir, 'table.csv'))
    self.assertLen(table, 4)
    self.assertEqual(table[0]['p_t'], '')  # A real row.
    cells = read_csv(os.path.join(workdir, 'study.csv'))
    self.assertLen(cells, 4)
    self.assertEqual(cells[0]['status'], 'done')


def run_study(*args):
  return subprocess.run([sys.executable, '-m', 'mmjax.study', *args],
                        cwd=REPO, capture_output=True, text=True,
                        timeout=TIMEOUT, env=child_env())


class CommandLineTest(absltest.TestCase):

  def test_dry_run_runs_nothing(self):
    tmp = tempfile.mkdtemp(prefix='mmjax_study_dry_')
    self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
    workdir = os.path.join(tmp, 'study')
    out = run_study('--config', f'{SYNTHETIC}:runlocal', '--workdir',
                    workdir, '--dry_run')
    self.assertEqual(out.returncode, 0, out.stderr)
    self.assertIn('1 tuning runs; 6 final runs: real 2, shuffle_visual 2, '
                  'none 2', out.stdout)
    self.assertFalse(os.path.exists(workdir))

  def test_usage_errors_in_one_line(self):
    for args, text in (
        (['--config', SYNTHETIC, '--workdir', '/tmp/x', '--grid',
          'optim.lr=1'], '--grid is a flag of mmjax.sweep'),
        (['--workdir', '/tmp/x'], '--config and --workdir are required'),
        (['--config', f'{SYNTHETIC}:preset=blue', '--workdir', '/tmp/x',
          '--dry_run'], 'preset=blue'),
        (['--collect', '/nonexistent'], 'not a study directory')):
      out = run_study(*args)
      self.assertEqual(out.returncode, 2, out.stderr)
      self.assertIn(text, out.stderr)
      self.assertNotIn('Traceback', out.stderr)


class FailureTest(absltest.TestCase):

  def test_a_failed_tuning_run_is_recorded_and_its_cells_wait(self):
    tmp = tempfile.mkdtemp(prefix='mmjax_study_fail_')
    self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
    config = os.path.join(tmp, 'broken.py')
    with open(config, 'w', encoding='utf-8') as f:
      f.write(textwrap.dedent(f'''\
          import importlib.util

          _spec = importlib.util.spec_from_file_location(
              'base', {SYNTHETIC!r})
          _base = importlib.util.module_from_spec(_spec)
          _spec.loader.exec_module(_base)


          def get_config(arg=None):
            c = _base.get_config('runlocal')
            c.representations = {{'missing': {{'visual': 'no_such_rep'}}}}
            return c
          '''))
    workdir = os.path.join(tmp, 'study')
    out = subprocess.run(
        [sys.executable, '-m', 'mmjax.study', '--config', config,
         '--workdir', workdir], cwd=REPO, capture_output=True, text=True,
        timeout=TIMEOUT, env=child_env())
    self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
    self.assertIn('failed', out.stderr)
    status = sweep.read_status(os.path.join(
        workdir, 'tune', 'vbpr.missing', 'runs', 'seed=0'))
    self.assertEqual(status['state'], 'failed')
    self.assertIn('no_such_rep', ' '.join(status['log_tail']))
    # Nothing final ran (not even the counterpart of the waiting cells);
    # the empty table is still written.
    self.assertEqual(read_csv(os.path.join(workdir, 'table.csv')), [])
    self.assertFalse(os.listdir(os.path.join(workdir, 'final', 'runs')))


class RunlocalTest(absltest.TestCase):
  """The synthetic runlocal study, run once for the whole class."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp(prefix='mmjax_study_')
    cls.workdir = os.path.join(cls.tmp, 'smoke')
    t0 = time.monotonic()
    cls.first = subprocess.run(
        [sys.executable, '-m', 'mmjax.study', '--config',
         f'{SYNTHETIC}:runlocal', '--workdir', cls.workdir, '--workers', '2'],
        cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT,
        env=child_env())
    cls.wall_s = time.monotonic() - t0
    print(f'runlocal study: {cls.wall_s:.0f} s', file=sys.stderr)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()

  def setUp(self):
    super().setUp()
    self.assertEqual(self.first.returncode, 0,
                     self.first.stdout[-3000:] + self.first.stderr[-3000:])

  def path(self, *parts):
    return os.path.join(self.workdir, *parts)

  def table(self):
    return read_csv(self.path('table.csv'))

  def test_files_and_columns(self):
    for name in ('study.json', 'study.csv', 'table.csv', 'table.md',
                 'table.tex', os.path.join('final', 'sweep.json')):
      self.assertTrue(os.path.exists(self.path(name)), name)
    with open(self.path('table.csv'), encoding='utf-8') as f:
      self.assertEqual(tuple(next(csv.reader(f))), study.TABLE_COLUMNS)
    rows = self.table()
    cells = {(r['model'], r['control'], r['group']) for r in rows}
    for model, control in (('vbpr', 'real'), ('vbpr', 'shuffle_visual'),
                           ('vbpr', 'none')):
      for group in ('all', 'warm_users', 'cold_users', 'cold_items',
                    'cold_only'):
        self.assertIn((model, control, group), cells)
    for r in rows:
      self.assertEqual(r['n_seeds'], '2')
      self.assertEqual(r['dataset'], 'synthetic_visual')
    with open(self.path('table.md'), encoding='utf-8') as f:
      self.assertIn('| vbpr | synthetic | shuffle_visual |', f.read())

  def test_real_rows_have_no_statistics_and_controls_do(self):
    stat = ('gap', 'p_t', 'p_t_holm', 'p_w_holm', 'effect_d', 'ci_low',
            'ci_high')
    for r in self.table():
      if r['control'] == 'real':
        for k in stat + ('p_seeds',):
          self.assertEqual(r[k], '', k)
      else:
        gap, lo, hi = float(r['gap']), float(r['ci_low']), float(r['ci_high'])
        self.assertLessEqual(lo, gap)
        self.assertLessEqual(gap, hi)
        for k in ('p_t', 'p_t_holm', 'p_w_holm'):
          self.assertBetween(float(r[k]), 0.0, 1.0)
        # Holm never lowers a p-value.
        self.assertGreaterEqual(float(r['p_t_holm']), float(r['p_t']))
        # The gap is the difference of the seed means of the table (the
        # same users in every seed).
        real = next(x for x in self.table() if x['control'] == 'real'
                    and x['group'] == r['group'])
        self.assertAlmostEqual(
            gap, float(real['recall@20_mean']) - float(r['recall@20_mean']),
            places=9)

  def test_cold_only_group_from_the_evaluator(self):
    # The runs' cold_items_only evaluator ('cold') ranked the cold items
    # alone at the best epoch; the table's cold_only rows read it.
    cells = read_csv(self.path('study.csv'))
    rows = {r['control']: r for r in self.table()
            if r['group'] == 'cold_only'}
    self.assertCountEqual(rows, ('real', 'shuffle_visual', 'none'))
    for control, row in rows.items():
      runs = [c for c in cells if c['control'] == control]
      for c in runs:
        # Its per-user file averages to the recorded summary.
        pu = ranking.load_per_user(os.path.join(c['run_dir'],
                                                'per_user_cold.npz'))
        self.assertAlmostEqual(float(np.mean(pu['per_user']['recall@20'])),
                               float(c['cold/recall@20']), places=9)
        # A random order's Recall@20 is min(20, n) / n per user: in (0, 1].
        self.assertBetween(float(c['cold/random_recall@20']), 0.0, 1.0)
      for key, col in (('recall@20_mean', 'cold/recall@20'),
                       ('random_recall@20', 'cold/random_recall@20'),
                       ('warm_above_median', 'cold/warm_above_median')):
        self.assertAlmostEqual(
            float(row[key]), np.mean([float(c[col]) for c in runs]),
            places=9, msg=key)
    gap = float(rows['shuffle_visual']['gap'])
    self.assertAlmostEqual(gap, float(rows['real']['recall@20_mean'])
                           - float(rows['shuffle_visual']['recall@20_mean']),
                           places=9)
    per_seed = dict(x.split(':') for x in
                    rows['shuffle_visual']['gap_per_seed'].split())
    self.assertCountEqual(per_seed, ('0', '1'))
    self.assertAlmostEqual(np.mean([float(v) for v in per_seed.values()]),
                           gap, places=4)

  def test_planted_signal(self):
    # Preset `visual` on the cold-item split: the images rank the cold
    # items, so shuffling them costs (each seed did, in every setting tried:
    # gaps +0.03 to +0.08 at 10 and 15 epochs).
    row = next(r for r in self.table() if r['control'] == 'shuffle_visual'
               and r['group'] == 'all')
    self.assertGreater(float(row['gap']), 0.0)

  def test_controls_ran_what_they_say(self):
    cells = read_csv(self.path('study.csv'))
    self.assertLen(cells, 6)  # 3 controls x 2 seeds.
    for c in cells:
      self.assertEqual(c['status'], 'done')
      with open(os.path.join(c['run_dir'], 'config.json'),
                encoding='utf-8') as f:
        cfg = json.load(f)
      with open(os.path.join(c['run_dir'], 'runinfo.json'),
                encoding='utf-8') as f:
        features = json.load(f).get('features') or {}
      self.assertEqual(cfg['seed'], int(c['seed']))
      self.assertEqual(cfg['data']['split'], 'cold_item')
      if c['control'] == 'none':
        # The counterpart: BPR-MF, no content.
        self.assertEqual(cfg['model']['name'], 'bprmf')
        self.assertFalse(any(cfg['features']['sources'].values()))
        self.assertIn('bprmf.id-only', c['run_dir'])
        continue
      self.assertEqual(cfg['model']['name'], 'vbpr')
      self.assertEqual(features['visual']['control'],
                       'shuffle' if c['control'] == 'shuffle_visual'
                       else 'none')
      self.assertEqual(features['textual']['control'], 'none')
    # Shuffled features are not the real ones: the runs differ.
    real = {c['seed']: c for c in cells if c['control'] == 'real'}
    for c in cells:
      if c['control'] == 'shuffle_visual':
        self.assertNotEqual(c['test/recall@20'],
                            real[c['seed']]['test/recall@20'])

  def test_study_json_and_reuse_of_the_tuning_run(self):
    with open(self.path('study.json'), encoding='utf-8') as f:
      record = json.load(f)
    self.assertEqual(record['final_seeds'], [0, 1])
    self.assertEqual(list(record['selected']), ['vbpr.synthetic'])
    self.assertIn('mmjax.study', record['commands']['study'])
    self.assertIn('mmjax.launch',
                  record['commands']['runs']['bprmf.id-only.seed=0'])
    status = sweep.read_status(self.path(
        'final', 'runs', 'vbpr.synthetic.real.seed=0'))
    self.assertIn('tune', status['copied_from'])

  def test_slurm_scripts_and_an_array_task_run_locally(self):
    # --slurm writes the chained stages' scripts and runs nothing.
    out = run_study('--config', f'{SYNTHETIC}:runlocal', '--workdir',
                    self.workdir, '--slurm')
    self.assertEqual(out.returncode, 0, out.stderr)
    self.assertIn('1 tuning runs, 6 final runs', out.stdout)
    slurm = self.path('slurm')
    scripts = {}
    for name in ('tune', 'select', 'final', 'collect'):
      with open(os.path.join(slurm, f'{name}.sbatch'), encoding='utf-8') as f:
        scripts[name] = f.read()
      self.assertNotIn('@@', scripts[name])
      self.assertIn(f'#SBATCH --job-name=smoke-{name}\n', scripts[name])
      self.assertIn(f' -m mmjax.study --config {SYNTHETIC}:runlocal '
                    f'--workdir {self.workdir} --stage {name}',
                    scripts[name])
    # Arrays as large as the stages (1 tuning run, 6 final runs: the dry
    # run's count); the steps are single jobs.
    self.assertIn('#SBATCH --array=0-0\n', scripts['tune'])
    self.assertIn('#SBATCH --array=0-5\n', scripts['final'])
    for name in ('tune', 'final'):
      self.assertIn('--run_index "${SLURM_ARRAY_TASK_ID}"', scripts[name])
    for name in ('select', 'collect'):
      self.assertNotIn('--array', scripts[name])
      self.assertNotIn('--run_index', scripts[name])
    with open(os.path.join(slurm, 'submit.sh'), encoding='utf-8') as f:
      submit = f.read()
    chain = [line for line in submit.splitlines() if 'sbatch' in line
             and not line.startswith('#')]
    self.assertEqual([line.split('--dependency=')[-1].split()[0]
                      if '--dependency' in line else '' for line in chain],
                     ['', 'afterok:$tune', 'afterok:$select',
                      'afterany:$final'])
    if shutil.which('bash'):
      for name in ('tune', 'select', 'final', 'collect', 'submit'):
        path = os.path.join(slurm, 'submit.sh' if name == 'submit'
                            else f'{name}.sbatch')
        check = subprocess.run(['bash', '-n', path], capture_output=True,
                               text=True)
        self.assertEqual(check.returncode, 0, check.stderr)
    # Final array task 3, run locally as SLURM would run it: the command
    # line of final.sbatch with SLURM_ARRAY_TASK_ID=3. Its run is made to
    # look interrupted (results gone): the task trains run 3 and only it.
    with open(self.path('final', sweep.SPEC), encoding='utf-8') as f:
      names = [r['name'] for r in json.load(f)['runs']]
    target = self.path('final', 'runs', names[3])
    other = self.path('final', 'runs', names[4], 'results.json')
    before = os.path.getmtime(other)
    os.remove(os.path.join(target, 'results.json'))
    command = scripts['final'].split('exec ', 1)[1]
    task = subprocess.run(
        ['bash', '-c', command.replace('"${PYTHON}"', shlex.quote(
            sys.executable))], cwd=REPO, capture_output=True, text=True,
        timeout=TIMEOUT, env={**child_env(), 'SLURM_ARRAY_TASK_ID': '3'})
    self.assertEqual(task.returncode, 0, task.stdout + task.stderr)
    self.assertIn('1 runs, 0 finished (skipped), 1 to run', task.stdout)
    self.assertTrue(sweep.is_finished(target))
    self.assertEqual(before, os.path.getmtime(other))
    # A tuning task whose run is finished skips it; a final task beyond
    # the selection's runs has nothing to do; the tuning array's range is
    # checked.
    for stage, index, status, text in (
        ('tune', '0', 0, '0 to run'), ('final', '6', 0, 'nothing to do'),
        ('tune', '1', 2, 'the tuning stage has 1 runs')):
      out = run_study('--config', f'{SYNTHETIC}:runlocal', '--workdir',
                      self.workdir, '--stage', stage, '--run_index', index)
      self.assertEqual(out.returncode, status, out.stdout + out.stderr)
      self.assertIn(text, out.stdout + out.stderr)

  def test_a_second_start_runs_nothing(self):
    before = os.path.getmtime(self.path(
        'final', 'runs', 'vbpr.synthetic.shuffle_visual.seed=1',
        'results.json'))
    again = subprocess.run(
        [sys.executable, '-m', 'mmjax.study', '--config',
         f'{SYNTHETIC}:runlocal', '--workdir', self.workdir],
        cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT,
        env=child_env())
    self.assertEqual(again.returncode, 0, again.stderr[-2000:])
    self.assertIn('0 to run', again.stdout)
    self.assertNotIn(' done in ', again.stdout)
    self.assertEqual(before, os.path.getmtime(self.path(
        'final', 'runs', 'vbpr.synthetic.shuffle_visual.seed=1',
        'results.json')))


if __name__ == '__main__':
  absltest.main()
