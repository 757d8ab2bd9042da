"""`python -m mmjax.sweep`: expansion, names, value round trip, worker
environments, selection on validation, collect, the SLURM script, and one
real sweep that finishes, skips, survives a crash and resumes."""

import csv
import fcntl
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized

from mmjax import sweep

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST_CONFIG = os.path.join(REPO, 'configs', 'test.py')
TIMEOUT = 600


def child_env():
  """The tests' environment for sweep subprocesses, on one CPU device.

  conftest.py asks for 8 virtual devices, which the runs do not need (and
  compile more slowly with).
  """
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}
  env['JAX_PLATFORMS'] = 'cpu'
  return env


def run_sweep(*args):
  return subprocess.run([sys.executable, '-m', 'mmjax.sweep', *args],
                        cwd=REPO, capture_output=True, text=True,
                        timeout=TIMEOUT, env=child_env())


def make_tmp(test):
  """A temporary folder removed after `test` (create_tempdir needs absl's
  flags parsed, which pytest does not do)."""
  path = tempfile.mkdtemp(prefix='mmjax_sweep_')
  test.addCleanup(shutil.rmtree, path, ignore_errors=True)
  return path


def write_sweep_config(directory):
  """A config file that wraps configs/test.py and adds a get_sweep()."""
  path = os.path.join(directory, 'swept.py')
  with open(path, 'w', encoding='utf-8') as f:
    f.write(textwrap.dedent(f'''\
        import importlib.util

        _spec = importlib.util.spec_from_file_location('base', {TEST_CONFIG!r})
        _base = importlib.util.module_from_spec(_spec)
        _spec.loader.exec_module(_base)


        def get_config(arg=None):
          return _base.get_config(arg)


        def get_sweep():
          return [{{'optim.lr': 0.01, 'model.embed_dim': 8}},
                  {{'optim.lr': 0.02, 'model.embed_dim': 8}},
                  {{'optim.lr': 0.02, 'eval.topk': (5, 10)}}]
        '''))
  return path


class ExpandTest(absltest.TestCase):

  def test_grid_times_seeds_in_order(self):
    source, runs = sweep.expand(
        TEST_CONFIG, {'optim.lr': ['1e-3', '5e-3'],
                      'model.embed_dim': ['32', '64']},
        {'train.num_epochs': '1'}, [0, 1])
    self.assertEqual(source, 'grid')
    self.assertLen(runs, 8)
    self.assertEqual([r.index for r in runs], list(range(8)))
    # First --grid outermost, seeds innermost.
    self.assertEqual(runs[0].name, 'lr=0.001,embed_dim=32,seed=0')
    self.assertEqual(runs[1].name, 'lr=0.001,embed_dim=32,seed=1')
    self.assertEqual(runs[2].name, 'lr=0.001,embed_dim=64,seed=0')
    self.assertEqual(runs[7].name, 'lr=0.005,embed_dim=64,seed=1')
    self.assertEqual(runs[7].overrides,
                     {'optim.lr': 0.005, 'model.embed_dim': 64, 'seed': 1})
    self.assertEqual(runs[7].args, (
        '--config.train.num_epochs=1', '--config.optim.lr=5e-3',
        '--config.model.embed_dim=64', '--config.seed=1'))
    self.assertLen({r.name for r in runs}, 8)

  def test_get_sweep_of_a_config_file_with_its_variant(self):
    tmp = make_tmp(self)
    path = write_sweep_config(tmp)
    source, runs = sweep.expand(f'{path}:bprmf', None, {}, [3])
    self.assertEqual(source, 'get_sweep')
    self.assertEqual([r.name for r in runs], [
        'lr=0.01,embed_dim=8,seed=3', 'lr=0.02,embed_dim=8,seed=3',
        'lr=0.02,topk=5-10,seed=3'])
    self.assertEqual(runs[2].overrides,
                     {'optim.lr': 0.02, 'eval.topk': [5, 10], 'seed': 3})
    # The variant reaches get_config, as config_flags passes it.
    cfg = sweep.resolve(f'{path}:bprmf', runs[2].args)
    self.assertEqual(cfg.model.name, 'bprmf')
    self.assertEqual(cfg.eval.topk, (5, 10))
    self.assertEqual(cfg.seed, 3)

  def test_grid_takes_precedence_over_get_sweep(self):
    path = write_sweep_config(make_tmp(self))
    source, runs = sweep.expand(path, {'optim.lr': ['0.5']}, {}, None)
    self.assertEqual(source, 'grid')
    self.assertEqual([r.name for r in runs], ['lr=0.5'])

  def test_single_point(self):
    source, runs = sweep.expand(TEST_CONFIG, None, {}, None)
    self.assertEqual((source, [r.name for r in runs]), ('single',
                                                        ['default']))
    _, runs = sweep.expand(TEST_CONFIG, None, {}, [0, 1])
    self.assertEqual([r.name for r in runs], ['seed=0', 'seed=1'])

  def test_bad_specs_are_refused_in_one_line(self):
    cases = [
        (({'optim.lrr': ['1']}, {}), 'unknown key optim.lrr; did you mean '
         'optim.lr?'),
        (({'optim.lr': ['fast']}, {}), '--config.optim.lr=fast'),
        (({'optim.lr': ['1']}, {'optim.lr': '2'}), 'also swept'),
        (({'seed': ['1']}, {}), '--seeds'),
    ]
    for (grid, sets), message in cases:
      with self.assertRaisesRegex(sweep.SweepError, message):
        sweep.expand(TEST_CONFIG, grid, sets, [0])
    with self.assertRaisesRegex(sweep.SweepError, 'no such file'):
      sweep.expand('configs/missing.py', None, {}, None)

  def test_every_get_sweep_of_configs_expands(self):
    # Each value must reach launch through the command line unchanged.
    for path in sorted(glob.glob(os.path.join(REPO, 'configs', '*.py'))):
      module = sweep.load_module(path)
      if not hasattr(module, 'get_sweep'):
        continue
      source, runs = sweep.expand(path, None, {}, None)
      self.assertEqual(source, 'get_sweep', path)
      self.assertLen(runs, len(module.get_sweep()), path)
      self.assertLen({r.name for r in runs}, len(runs), path)

  def test_parse_flags(self):
    self.assertEqual(
        sweep.parse_assignments(['config.eval.topk=(10,20),(5,)', 'a=x'],
                                'grid', split=True),
        {'eval.topk': ['(10,20)', '(5,)'], 'a': ['x']})
    self.assertEqual(sweep.split_values("'a,b',{'x': 1, 'y': 2},3"),
                     ["'a,b'", "{'x': 1, 'y': 2}", '3'])
    self.assertEqual(sweep.parse_seeds('0,1,2'), [0, 1, 2])
    self.assertEqual(sweep.parse_shard('1/3'), (1, 3))
    for bad in ('3/3', '1', 'a/b'):
      with self.assertRaises(sweep.SweepError):
        sweep.parse_shard(bad)
    with self.assertRaises(sweep.SweepError):
      sweep.parse_assignments(['lr'], 'grid', split=True)


class NamesTest(absltest.TestCase):

  def test_readable(self):
    self.assertEqual(
        sweep.run_names([{'optim.lr': 0.001, 'model.embed_dim': 32,
                          'seed': 0}]), ['lr=0.001,embed_dim=32,seed=0'])
    self.assertEqual(
        sweep.run_names([{'features.sources': {'visual': 'clip/vit',
                                               'textual': 'minilm'},
                          'model.use_bias': True}]),
        ['sources=textual-minilm+visual-clip_vit,use_bias=true'])

  def test_shared_last_component_gets_a_hash(self):
    names = sweep.run_names([{'data.name': 'a', 'model.name': 'b'},
                             {'data.name': 'b', 'model.name': 'a'}])
    self.assertNotEqual(names[0], names[1])
    for name in names:
      self.assertRegex(name, r'^name=\w,name=\w-[0-9a-f]{6}$')

  def test_long_and_colliding_names_get_a_hash(self):
    long = sweep.run_names([{'data.overrides': 'x' * 300}])[0]
    self.assertLessEqual(len(long), sweep.MAX_NAME)
    self.assertRegex(long, r'-[0-9a-f]{6}$')
    same = sweep.run_names([{'a.b': 'x/y'}, {'a.b': 'x:y'}])
    self.assertLen(set(same), 2)  # Both sanitise to b=x_y.
    self.assertTrue(all(n.startswith('b=x_y-') for n in same))


class FormatTest(parameterized.TestCase):
  """format_value's text is read back by config_flags as the same value."""

  @parameterized.parameters(
      ('optim.lr', 1e-5), ('optim.lr', 0.1 + 0.2), ('optim.lr', 3),
      ('model.embed_dim', 128), ('eval.mask_valid_at_test', True),
      ('eval.mask_valid_at_test', False), ('optim.name', 'adamw'),
      ('eval.topk', (5,)), ('eval.topk', (10, 20, 50)),
      ('features.control_modalities', ('visual', 'textual')),
      ('optim.clip_norm', 1.5), ('data.split', 'temporal'),
      ('features.sources', {'visual': 'clip_vit', 'textual': 'minilm'}),
      ('optim.lr_decay', (0.5, 10.0)))
  def test_round_trip(self, key, value):
    text = sweep.format_value(value)
    cfg = sweep.resolve(TEST_CONFIG, [f'--config.{key}={text}'])
    got = sweep.get_path(cfg, key)
    self.assertEqual(sweep.to_jsonable(got), sweep.to_jsonable(value))


class WorkerEnvTest(absltest.TestCase):

  def test_thread_budget(self):
    base = {'XLA_FLAGS': '--xla_dump_to=/tmp/x', 'PATH': '/bin'}
    env = sweep.worker_env(1, 4, base, cores=16, gpus=[])
    self.assertEqual(env['XLA_FLAGS'], (
        '--xla_dump_to=/tmp/x --xla_cpu_multi_thread_eigen=false '
        'intra_op_parallelism_threads=4'))
    self.assertEqual(env['OMP_NUM_THREADS'], '4')
    self.assertEqual(env['MMJAX_KERNEL_THREADS'], '4')
    self.assertEqual(env['PATH'], '/bin')
    self.assertNotIn('CUDA_VISIBLE_DEVICES', env)
    # More workers than cores: one thread each, never zero.
    env = sweep.worker_env(0, 3, {}, cores=2, gpus=[])
    self.assertEqual(env['OMP_NUM_THREADS'], '1')
    # One worker has the machine: nothing changes.
    self.assertEqual(sweep.worker_env(0, 1, base, cores=16, gpus=['0']),
                     base)

  def test_gpus_round_robin(self):
    envs = [sweep.worker_env(i, 4, {}, 8, ['0', '1']) for i in range(4)]
    self.assertEqual([e['CUDA_VISIBLE_DEVICES'] for e in envs],
                     ['0', '1', '0', '1'])
    self.assertEqual({e['XLA_PYTHON_CLIENT_MEM_FRACTION'] for e in envs},
                     {'0.45'})
    envs = [sweep.worker_env(i, 2, {}, 8, ['0', '1', '2', '3'])
            for i in range(2)]
    self.assertEqual([e['CUDA_VISIBLE_DEVICES'] for e in envs],
                     ['0,2', '1,3'])
    self.assertNotIn('XLA_PYTHON_CLIENT_MEM_FRACTION', envs[0])

  def test_detect_gpus_from_the_environment(self):
    self.assertEqual(sweep.detect_gpus({'CUDA_VISIBLE_DEVICES': '2,5'}),
                     ['2', '5'])
    self.assertEqual(sweep.detect_gpus({'CUDA_VISIBLE_DEVICES': ''}), [])
    self.assertEqual(sweep.detect_gpus({'CUDA_VISIBLE_DEVICES': '-1'}), [])


class ShardAndSpecTest(absltest.TestCase):

  def test_a_run_locked_by_another_process_is_left_alone(self):
    workdir = make_tmp(self)
    _, (run,) = sweep.expand(TEST_CONFIG, None, {}, None)
    directory = sweep.run_dir(workdir, run.name)
    os.makedirs(directory)
    with open(os.path.join(directory, sweep.RUN_LOCK), 'a') as held:
      # flock locks belong to an open file: the runner's own open of the
      # file conflicts with this one as another process's would.
      fcntl.flock(held, fcntl.LOCK_EX)
      status = sweep.Runner(TEST_CONFIG, workdir, 1, progress=False
                            )._run_one(run, {})
    self.assertEqual(status['state'], 'busy')
    self.assertEqual(os.listdir(directory), [sweep.RUN_LOCK])

  def test_shards_partition_the_runs(self):
    _, runs = sweep.expand(TEST_CONFIG, {'optim.lr': ['1', '2', '3']}, {},
                           [0, 1])
    shards = [sweep.runs_of_this_process(runs, (i, 4)) for i in range(4)]
    self.assertEqual(sorted(r.index for s in shards for r in s),
                     list(range(6)))
    self.assertEqual([r.index for r in shards[1]], [1, 5])
    self.assertEqual(sweep.runs_of_this_process(runs, run_index=4),
                     [runs[4]])
    with self.assertRaisesRegex(sweep.SweepError, '6 runs'):
      sweep.runs_of_this_process(runs, run_index=6)

  def test_same_spec_joins_another_is_refused(self):
    tmp = make_tmp(self)
    grid = {'optim.lr': ['1', '2']}

    def spec(config, seeds, sets=None):
      source, runs = sweep.expand(config, grid, sets or {}, seeds)
      return sweep.make_spec(config, source, grid, sets or {}, seeds, runs)

    first = sweep.write_spec(tmp, spec(TEST_CONFIG, [0]))
    self.assertLen(first['runs'], 2)
    self.assertEqual(sweep.write_spec(tmp, spec(TEST_CONFIG, [0])), first)
    grown = sweep.write_spec(tmp, spec(TEST_CONFIG, [0, 1]))
    self.assertEqual([r['name'] for r in grown['runs']], [
        'lr=1.0,seed=0', 'lr=2.0,seed=0', 'lr=1.0,seed=1', 'lr=2.0,seed=1'])
    with self.assertRaisesRegex(sweep.SweepError, 'another config variant'):
      sweep.write_spec(tmp, spec(TEST_CONFIG + ':bprmf', [0]))
    with self.assertRaisesRegex(sweep.SweepError, 'another set of --set'):
      sweep.write_spec(tmp, spec(TEST_CONFIG, [0], {'train.num_epochs': '2'}))


def record(name, point, seed, val, test, status='done', at_budget=False,
           group=('lightgcn', 'id-only', 'none')):
  return sweep.Record(
      name=name, group=group, point=point, seed=seed, status=status,
      select_metric='recall@20',
      metrics={'val/recall@20': val, 'test/recall@20': test,
               'test/ndcg@20': test / 2},
      best_epoch=3, at_budget=at_budget)


class SelectTest(absltest.TestCase):

  def test_picks_validation_best_and_reports_its_test(self):
    a, b = (('optim.lr', '0.001'),), (('optim.lr', '0.01'),)
    records = [
        # Point a: best on validation (mean 0.30), worse on test.
        record('a0', a, 0, 0.31, 0.10), record('a1', a, 1, 0.29, 0.12),
        # Point b: worse on validation (mean 0.25), best on test.
        record('b0', b, 0, 0.26, 0.40, at_budget=True),
        record('b1', b, 1, 0.24, 0.44),
        # Failed runs never count, whatever they hold.
        record('bx', b, 2, 0.99, 0.99, status='failed'),
    ]
    (s,) = sweep.select(records)
    self.assertEqual(s.point, a)
    self.assertEqual(s.seeds, (0, 1))
    self.assertAlmostEqual(s.val_mean, 0.30)
    self.assertAlmostEqual(s.test_mean['test/recall@20'], 0.11)
    self.assertAlmostEqual(s.test_std['test/recall@20'], 0.0141421356)
    self.assertAlmostEqual(s.test_mean['test/ndcg@20'], 0.055)
    self.assertFalse(s.at_budget)  # Only b's seed 0 hit the budget.
    self.assertEqual([p for p, _, _ in s.points], [a, b])

  def test_groups_are_selected_apart_and_flag_the_budget(self):
    point = (('optim.lr', '0.1'),)
    other = ('vbpr', 'visual=clip', 'none')
    records = [record('x', point, 0, 0.2, 0.1),
               record('y', point, 0, 0.1, 0.3, group=other, at_budget=True)]
    selections = sweep.select(records)
    self.assertEqual([s.group for s in selections],
                     [('lightgcn', 'id-only', 'none'), other])
    self.assertEqual([s.at_budget for s in selections], [False, True])
    self.assertTrue(all(len(s.seeds) == 1 for s in selections))


def plant_run(workdir, name, overrides, model, sources, val, test,
              at_budget=False, state='done', results=True):
  """A run folder as launch and the sweep leave it."""
  directory = sweep.run_dir(workdir, name)
  os.makedirs(directory)
  cfg = {'seed': overrides.get('seed', 0), 'model': {'name': model},
         'optim': {'lr': overrides.get('optim.lr', 0.001)},
         'features': {'sources': sources, 'control': 'none',
                      'control_modalities': []},
         'eval': {'select_metric': 'recall@20'}}
  with open(os.path.join(directory, 'config.json'), 'w') as f:
    json.dump(cfg, f)
  with open(os.path.join(directory, sweep.STATUS), 'w') as f:
    json.dump({'state': state, 'exit_code': 0 if state == 'done' else 1}, f)
  if results:
    with open(os.path.join(directory, 'results.json'), 'w') as f:
      json.dump({'model': model, 'best_epoch': 7, 'at_budget': at_budget,
                 'best': {'val/recall@20': val, 'test/recall@20': test,
                          'val/ndcg@20': val / 2, 'test/ndcg@20': test / 2,
                          'test/hit@20': test * 2}}, f)


class CollectTest(absltest.TestCase):

  def test_csv_and_summaries(self):
    tmp = make_tmp(self)
    runs = []
    planted = [  # name, lr, seed, model, sources, val, test, at_budget
        ('a0', 0.001, 0, 'vbpr', {'visual': 'clip'}, 0.30, 0.10, True),
        ('a1', 0.001, 1, 'vbpr', {'visual': 'clip'}, 0.32, 0.14, False),
        ('b0', 0.01, 0, 'vbpr', {'visual': 'clip'}, 0.20, 0.50, False),
        ('b1', 0.01, 1, 'vbpr', {'visual': 'clip'}, 0.22, 0.54, False),
        ('c0', 0.001, 0, 'bprmf', {}, 0.15, 0.15, False),
    ]
    for name, lr, seed, model, sources, val, test, budget in planted:
      overrides = {'optim.lr': lr, 'seed': seed}
      plant_run(tmp, name, overrides, model, sources, val, test, budget)
      runs.append({'name': name, 'overrides': overrides})
    plant_run(tmp, 'd0', {'optim.lr': 0.1, 'seed': 0}, 'bprmf', {}, 0.9,
              0.9, state='failed', results=False)
    runs.append({'name': 'd0', 'overrides': {'optim.lr': 0.1, 'seed': 0}})
    runs.append({'name': 'e0', 'overrides': {'optim.lr': 0.2, 'seed': 0}})
    with open(os.path.join(tmp, sweep.SPEC), 'w') as f:
      json.dump({'runs': runs}, f)
    selections, _ = sweep.collect(tmp)

    with open(os.path.join(tmp, 'results.csv')) as f:
      rows = list(csv.DictReader(f))
    self.assertEqual([r['run'] for r in rows],
                     ['a0', 'a1', 'b0', 'b1', 'c0', 'd0', 'e0'])
    self.assertEqual(list(rows[0])[:9], [
        'run', 'model', 'representation', 'control', 'optim.lr', 'seed',
        'status', 'best_epoch', 'at_budget'])
    self.assertEqual(rows[0]['representation'], 'visual=clip')
    self.assertEqual(rows[4]['representation'], 'id-only')
    self.assertEqual([r['status'] for r in rows[4:]],
                     ['done', 'failed', 'pending'])
    self.assertEqual((rows[0]['optim.lr'], rows[0]['seed'],
                      rows[0]['best_epoch'], rows[0]['at_budget']),
                     ('0.001', '0', '7', 'True'))
    self.assertEqual(float(rows[3]['test/recall@20']), 0.54)
    self.assertEqual(rows[5]['test/recall@20'], '')  # Failed: no metrics.

    vbpr = selections[0]
    self.assertEqual(vbpr.group, ('vbpr', 'visual=clip', 'none'))
    self.assertEqual(vbpr.point, (('optim.lr', '0.001'),))
    self.assertTrue(vbpr.at_budget)
    with open(os.path.join(tmp, 'summary.md')) as f:
      md = f.read()
    self.assertIn('7 runs: 5 done, 1 failed, 1 pending.', md)
    self.assertIn('## vbpr, visual=clip, control none', md)
    self.assertIn('| optim.lr=0.001 | 2 | 0.3100 | 0.1200 ± 0.0283 | '
                  '0.0600 ± 0.0141 | 0.2400 ± 0.0566 | * |', md)
    self.assertIn('| optim.lr=0.001 | 1 | 0.1500 | 0.1500 | 0.0750 | '
                  '0.3000 |  |', md)  # bprmf: one seed, no std.
    with open(os.path.join(tmp, 'summary.tex')) as f:
      tex = f.read()
    self.assertIn(r'vbpr & visual=clip & none & optim.lr=0.001 & 2 & 0.3100'
                  r' & 0.1200 $\pm$ 0.0283', tex)
    self.assertIn(r'\bottomrule', tex)

    os.remove(os.path.join(tmp, 'summary.md'))
    out = run_sweep('--collect', tmp)
    self.assertEqual(out.returncode, 0, out.stderr)
    self.assertIn('collected 7 runs (5 done, 1 failed, 1 pending)', out.stdout)
    self.assertIn('vbpr visual=clip none: optim.lr=0.001 (n=2) val 0.3100, '
                  'test/recall@20 0.1200 ± 0.0283 (at budget)', out.stdout)
    self.assertTrue(os.path.exists(os.path.join(tmp, 'summary.md')))

  def test_collect_refuses_a_folder_without_a_sweep(self):
    out = run_sweep('--collect', make_tmp(self))
    self.assertEqual(out.returncode, 2)
    self.assertRegex(out.stderr, r'^error: .*no sweep.json; not a sweep '
                     r'directory\n$')


class SlurmTest(absltest.TestCase):

  def test_array_script_runs_nothing(self):
    tmp = make_tmp(self)
    workdir = os.path.join(tmp, 'sw')
    out = run_sweep('--config', TEST_CONFIG, '--workdir', workdir,
                    '--grid', 'optim.lr=1e-2,5e-3', '--seeds', '0,1',
                    '--set', 'train.num_epochs=1', '--slurm')
    self.assertEqual(out.returncode, 0, out.stderr)
    path = os.path.join(workdir, 'slurm', 'array.sbatch')
    self.assertIn(f'sbatch {path}', out.stdout)
    self.assertFalse(os.path.exists(os.path.join(workdir, sweep.RUNS)))
    with open(path) as f:
      script = f.read()
    self.assertIn('#SBATCH --array=0-3\n', script)
    self.assertIn('#SBATCH --job-name=sw\n', script)
    self.assertIn(f'#SBATCH --output={workdir}/slurm/%A_%a.out', script)
    self.assertIn("--grid optim.lr=1e-2,5e-3 --set train.num_epochs=1 "
                  "--seeds 0,1", script)
    self.assertIn('--run_index "${SLURM_ARRAY_TASK_ID}"', script)
    self.assertNotIn('@@', script)
    # An array task beyond the sweep is refused before any run starts.
    out = run_sweep('--config', TEST_CONFIG, '--workdir', workdir,
                    '--grid', 'optim.lr=1e-2,5e-3', '--seeds', '0,1',
                    '--set', 'train.num_epochs=1', '--run_index', '4')
    self.assertEqual(out.returncode, 2)
    self.assertIn('--run_index 4: the sweep has 4 runs (0..3)', out.stderr)
    self.assertFalse(os.path.exists(os.path.join(workdir, sweep.RUNS)))
    if shutil.which('bash'):
      check = subprocess.run(['bash', '-n', path], capture_output=True,
                             text=True)
      self.assertEqual(check.returncode, 0, check.stderr)


class SlurmTemplateTest(absltest.TestCase):

  def test_found_in_the_checkout_a_directory_or_beside_a_file(self):
    launch = os.path.join(REPO, 'launch')
    self.assertEqual(sweep.find_template(None),
                     os.path.join(launch, sweep.ARRAY_TEMPLATE))
    tmp = tempfile.mkdtemp(prefix='mmjax_tpl_')
    self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
    mine = os.path.join(tmp, 'my_array.sbatch')
    for path in (mine, os.path.join(tmp, sweep.STEP_TEMPLATE)):
      with open(path, 'w', encoding='utf-8') as f:
        f.write('#!/bin/bash\n')
    self.assertEqual(sweep.find_template(mine), mine)
    self.assertEqual(sweep.find_template(mine, sweep.STEP_TEMPLATE),
                     os.path.join(tmp, sweep.STEP_TEMPLATE))
    self.assertEqual(sweep.find_template(launch, sweep.STEP_TEMPLATE),
                     os.path.join(launch, sweep.STEP_TEMPLATE))
    with self.assertRaisesRegex(sweep.SweepError, '--slurm_template PATH'):
      sweep.find_template(tmp)  # No slurm_array.sbatch there.

  def test_without_a_checkout_the_error_names_the_flag(self):
    tmp = tempfile.mkdtemp(prefix='mmjax_tpl_')
    self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
    # As from an installed wheel: no launch/ beside the package.
    with mock.patch.object(sweep, 'TEMPLATE_DIR',
                           os.path.join(tmp, 'launch')):
      with self.assertRaisesRegex(
          sweep.SweepError, r"checkout's launch/ is missing.*"
          r'give --slurm_template PATH'):
        sweep.find_template(None)
    # On the command line: one line, exit 2, nothing written.
    workdir = os.path.join(tmp, 'sw')
    out = run_sweep('--config', TEST_CONFIG, '--workdir', workdir,
                    '--slurm', '--slurm_template',
                    os.path.join(tmp, 'none.sbatch'))
    self.assertEqual(out.returncode, 2)
    self.assertEqual(out.stderr.count('\n'), 1, out.stderr)
    self.assertIn('--slurm_template PATH', out.stderr)
    self.assertFalse(os.path.exists(workdir))
    # A template of one's own is filled like the checkout's.
    mine = os.path.join(tmp, 'mine.sbatch')
    with open(mine, 'w', encoding='utf-8') as f:
      f.write('#SBATCH --array=0-@@LAST_INDEX@@\n'
              'srun @@PYTHON@@ -m @@MODULE@@ @@ARGS@@ '
              '--run_index $SLURM_ARRAY_TASK_ID\n')
    out = run_sweep('--config', TEST_CONFIG, '--workdir', workdir,
                    '--seeds', '0,1,2', '--slurm', '--slurm_template', mine)
    self.assertEqual(out.returncode, 0, out.stderr)
    with open(os.path.join(workdir, 'slurm', 'array.sbatch'),
              encoding='utf-8') as f:
      script = f.read()
    self.assertTrue(script.startswith('#SBATCH --array=0-2\n'), script)
    self.assertIn(' -m mmjax.sweep --config ', script)


def mtimes_and_logs(directory):
  out = {}
  for name in sorted(os.listdir(directory)):
    path = os.path.join(directory, name)
    if os.path.isfile(path):
      with open(path, 'rb') as f:
        out[name] = (os.stat(path).st_mtime_ns, f.read())
  return out


class EndToEndTest(absltest.TestCase):
  """Two runs of configs/test.py x 1 epoch, then the restart cases."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp(prefix='mmjax_sweep_')
    cls.workdir = os.path.join(cls.tmp, 'sw')
    cls.common = ['--config', TEST_CONFIG, '--workdir', cls.workdir,
                  '--set', f'data.root={os.path.join(cls.tmp, "data")}',
                  '--set', 'train.num_epochs=1', '--workers', '2']
    cls.first = run_sweep(*cls.common, '--grid', 'model.name=lightgcn,bprmf')

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()

  def run_path(self, name, *parts):
    return os.path.join(sweep.run_dir(self.workdir, name), *parts)

  def test_finish_skip_crash_resume(self):
    out = self.first
    self.assertEqual(out.returncode, 0, out.stderr[-3000:])
    for name in ('name=lightgcn', 'name=bprmf'):
      self.assertTrue(sweep.is_finished(self.run_path(name)), name)
      with open(self.run_path(name, 'train.log')) as f:
        self.assertIn(f'[{name[len("name="):]}] epoch 1/1', f.read())
    self.assertRegex(out.stdout, r'\[\d/2\] name=bprmf done in [\d.]+ s: '
                     r'val/recall@20 0\.\d{4}, test 0\.\d{4}, best epoch 1')
    with open(os.path.join(self.workdir, 'results.csv')) as f:
      rows = list(csv.DictReader(f))
    self.assertEqual([(r['model.name'], r['status']) for r in rows],
                     [('lightgcn', 'done'), ('bprmf', 'done')])
    # Two workers: each run had half the cores (launch records XLA_FLAGS).
    threads = max(1, sweep.available_cores() // 2)
    with open(self.run_path('name=bprmf', 'runinfo.json')) as f:
      self.assertIn(f'intra_op_parallelism_threads={threads}',
                    json.load(f)['xla_flags'])

    # (b) Started again: both are skipped, no launch runs.
    before = {n: mtimes_and_logs(self.run_path(n))
              for n in ('name=lightgcn', 'name=bprmf')}
    again = run_sweep(*self.common, '--grid', 'model.name=lightgcn,bprmf')
    self.assertEqual(again.returncode, 0, again.stderr[-3000:])
    self.assertIn('2 finished (skipped), 0 to run', again.stdout)
    for name, files in before.items():
      self.assertEqual(mtimes_and_logs(self.run_path(name)), files)

    # (c) + (d) A grown grid with a value that crashes at run time, and
    # lightgcn interrupted after its checkpoint (results and status gone).
    with open(self.run_path('name=lightgcn', 'results.json')) as f:
      results = json.load(f)
    os.remove(self.run_path('name=lightgcn', 'results.json'))
    os.remove(self.run_path('name=lightgcn', sweep.STATUS))
    bprmf = mtimes_and_logs(self.run_path('name=bprmf'))
    third = run_sweep(*self.common, '--grid',
                      'model.name=lightgcn,bprmf,nosuch')
    self.assertEqual(third.returncode, 1, third.stderr[-3000:])
    self.assertIn('1 finished (skipped), 2 to run', third.stdout)
    self.assertIn('name=nosuch FAILED (exit 2)', third.stdout)
    self.assertIn('1 of 2 runs failed', third.stderr)
    status = sweep.read_status(self.run_path('name=nosuch'))
    self.assertEqual((status['state'], status['exit_code']), ('failed', 2))
    self.assertIn('nosuch', status['log_tail'][-1])
    self.assertEqual(mtimes_and_logs(self.run_path('name=bprmf')), bprmf)
    # Resumed from its checkpoint, not retrained: same results.
    with open(self.run_path('name=lightgcn', 'train.log')) as f:
      log = f.read()
    self.assertIn('Resumed lightgcn from epoch 1', log)
    self.assertEqual(log.count('[lightgcn] epoch 1/1'), 1)
    self.assertTrue(sweep.is_finished(self.run_path('name=lightgcn')))
    with open(self.run_path('name=lightgcn', 'results.json')) as f:
      # As JSON text: the metrics hold NaNs (no cold items here).
      self.assertEqual(json.dumps(json.load(f)['best'], sort_keys=True),
                       json.dumps(results['best'], sort_keys=True))
    with open(os.path.join(self.workdir, 'results.csv')) as f:
      self.assertEqual([r['status'] for r in csv.DictReader(f)],
                       ['done', 'done', 'failed'])

    # Another config in the same sweep directory is refused in one line.
    other = run_sweep(*self.common[:1], TEST_CONFIG + ':bprmf',
                      *self.common[2:])
    self.assertEqual(other.returncode, 2)
    self.assertEqual(other.stderr.count('\n'), 1, other.stderr)
    self.assertIn('holds a sweep of another config variant', other.stderr)


if __name__ == '__main__':
  absltest.main()
