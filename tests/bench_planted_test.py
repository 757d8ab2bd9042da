"""Tests of the planted-answer script on top of the study (bench/planted.py).

The science (which model finds which planted signal) is the study's output,
not a test (tests/study_test.py runs the runlocal study end to end): here the
planted modalities from the generator's mixture, the knob's study configs,
the answer and knob tables read from hand-made study tables (Holm over the
knob by hand), and the kNN agreement diagnostic against brute force on a
tiny prepared synthetic dataset.
"""

import json
import os
import sys
import tempfile

from absl.testing import absltest
import ml_collections
import numpy as np

from mmjax import study
from mmjax import sweep
from mmjax.data import prepare
from mmjax.data import store
from mmjax.models import controls
from tests.testing import numerics

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'bench'))
import planted  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position

SOURCES = {'textual': 'synthetic_text', 'visual': 'synthetic_visual'}


def _tmpdir(test: absltest.TestCase) -> str:
  # absltest's create_tempdir needs parsed absl flags, which pytest lacks.
  tmp = tempfile.TemporaryDirectory()
  test.addCleanup(tmp.cleanup)
  return tmp.name


def _record(synth: dict, dataset: str, entries=()) -> dict:
  return {'config': 'x', 'dataset': dataset, 'entries': list(entries),
          'spec': {'sets': {'data': {'overrides': {'synthetic': synth}}}}}


def _row(model, control, group='all', **numbers) -> dict:
  return {'dataset': 'd', 'model': model, 'representation': 'synthetic',
          'control': control, 'group': group, 'n_seeds': 3,
          'at_budget': False, **numbers}


def _study(workdir, synth, dataset, rows, entries=()) -> str:
  """A study directory holding only study.json and its table."""
  os.makedirs(workdir, exist_ok=True)
  record = _record(synth, dataset, entries)
  study.write_record(workdir, record)
  study.write_table(workdir, [{**r, 'dataset': dataset} for r in rows],
                    record)
  return workdir


class PlantedModalitiesTest(absltest.TestCase):

  def test_from_the_generator_mixture(self):
    self.assertEqual(planted.planted_modalities({'preset': 'visual'}),
                     {'visual'})
    self.assertEqual(planted.planted_modalities({'preset': 'text'}),
                     {'textual'})
    self.assertEqual(planted.planted_modalities({'preset': 'none'}), set())
    # The knob at 0 plants nothing; a signal added to `none` is planted.
    self.assertEqual(planted.planted_modalities(
        {'preset': 'visual', 'visual_signal': 0.0}), set())
    self.assertEqual(planted.planted_modalities(
        {'preset': 'none', 'visual_signal': 0.3, 'num_users': 10}),
                     {'visual'})

  def test_knob_spec_reaches_the_study_config(self):
    spec = planted.knob_spec(planted.CONFIG, '0.25', 'models=vbpr,seeds=3')
    cfg = study.load_config(spec)
    synth = cfg.sets.data.overrides.synthetic.to_dict()
    self.assertEqual(synth['visual_signal'], 0.25)
    self.assertEqual(synth['preset'], 'visual')
    self.assertEqual(list(cfg.models), ['vbpr'])
    self.assertEqual(tuple(cfg.final_seeds), (0, 1, 2))
    self.assertEqual(planted.planted_modalities(synth), {'visual'})
    zero = study.load_config(planted.knob_spec(planted.CONFIG, '0', ''))
    self.assertEqual(planted.planted_modalities(
        zero.sets.data.overrides.synthetic.to_dict()), set())
    self.assertNotEqual(cfg.name, zero.name)  # Tables tell them apart.
    with self.assertRaisesRegex(study.StudyError, 'visual_signal'):
      study.load_config(planted.knob_spec(planted.CONFIG, 'x', ''))


class TablesTest(absltest.TestCase):

  def test_answer_expected_significant_holds(self):
    tmp = _tmpdir(self)
    visual = _study(os.path.join(tmp, 'visual'), {'preset': 'visual'},
                    'synthetic_visual', [
                        _row('vbpr', 'real', **{'recall@20_mean': 0.13}),
                        _row('vbpr', 'shuffle_visual',
                             **{'recall@20_mean': 0.05, 'gap': 0.08,
                                'p_t': 1e-9, 'p_t_holm': 1e-8,
                                'ci_low': 0.06, 'ci_high': 0.1,
                                'gap_per_seed': {0: 0.07, 1: 0.09}}),
                        _row('vbpr', 'shuffle_textual',
                             **{'recall@20_mean': 0.14, 'gap': -0.01,
                                'p_t': 0.3, 'p_t_holm': 0.9}),
                        # Not a shuffle: left out of the answer.
                        _row('vbpr', 'noise', **{'gap': 0.1,
                                                 'p_t_holm': 1e-9}),
                    ])
    none = _study(os.path.join(tmp, 'none'), {'preset': 'none'},
                  'synthetic_none', [
                      _row('vbpr', 'real', **{'recall@20_mean': 0.05}),
                      # A false positive: significant without a signal.
                      _row('vbpr', 'shuffle_visual',
                           **{'recall@20_mean': 0.03, 'gap': 0.02,
                              'p_t': 1e-4, 'p_t_holm': 1e-3}),
                      # Significant, but the control wins: no effect of
                      # the content in the expected direction.
                      _row('vbpr', 'shuffle_textual',
                           **{'recall@20_mean': 0.06, 'gap': -0.01,
                              'p_t': 1e-5, 'p_t_holm': 1e-4}),
                  ])
    rows = planted.answer_rows([visual, none], alpha=0.01)
    got = {(r['dataset'], r['control']):
           (r['expected'], r['significant'], r['holds']) for r in rows}
    self.assertEqual(got, {
        ('synthetic_visual', 'shuffle_visual'): (True, True, True),
        ('synthetic_visual', 'shuffle_textual'): (False, False, True),
        ('synthetic_none', 'shuffle_visual'): (False, True, False),
        ('synthetic_none', 'shuffle_textual'): (False, False, True)})
    first = rows[0]
    self.assertEqual((first['real'], first['shuffled']), (0.13, 0.05))
    text = planted.format_answer(rows)
    self.assertIn('| synthetic_visual | vbpr | all | shuffle_visual | '
                  '0.1300 | 0.0500 | +0.0800 | [+0.0600, +0.1000] | '
                  '+0.070 +0.090 |', text)
    with self.assertRaisesRegex(planted.PlantedError, 'not a study'):
      planted.answer_rows([tmp], alpha=0.01)

  def test_knob_rows_holm_over_the_knob(self):
    tmp = _tmpdir(self)
    # p_t per value 0.01, 0.04, 0.03; the studies' own Holm is ignored.
    # Holm by hand (m = 3): sorted 0.01 * 3 = 0.03, 0.03 * 2 = 0.06,
    # 0.04 * 1 = 0.04 -> running max 0.06.
    for value, p, gap in (('0', 0.01, 0.001), ('0.25', 0.04, 0.03),
                          ('0.5', 0.03, 0.06)):
      _study(planted.knob_dir(tmp, value),
             {'preset': 'visual', 'visual_signal': float(value)},
             f'synthetic_visual_vs{value}', [
                 _row('vbpr', 'real', **{'recall@20_mean': 0.1}),
                 _row('vbpr', 'shuffle_visual',
                      **{'recall@20_mean': 0.1 - gap, 'gap': gap,
                         'p_t': p, 'p_t_holm': 0.5}),
                 _row('vbpr', 'shuffle_textual',
                      **{'gap': 0.0, 'p_t': 0.9, 'p_t_holm': 1.0}),
             ])
    rows = planted.knob_rows(tmp, ['0.5', '0', '0.25'])
    self.assertEqual([r['visual_signal'] for r in rows], [0.0, 0.25, 0.5])
    self.assertEqual([r['gap'] for r in rows], [0.001, 0.03, 0.06])
    np.testing.assert_allclose([r['p_t_holm'] for r in rows],
                               [0.03, 0.06, 0.06], rtol=1e-12)
    self.assertIn('| vbpr | all | 0.25 |', planted.format_knob(rows))


def _dataset(root: str, seed: int) -> str:
  """A tiny prepared synthetic dataset (preset visual)."""
  cfg = sweep.load_module(
      os.path.join(REPO, 'configs', 'vbpr.py')).get_config()
  cfg.data.root = root
  cfg.data.overrides = ml_collections.ConfigDict({
      'seed': seed, 'synthetic': {
          'preset': 'visual', 'num_users': 150, 'num_items': 80,
          'interactions_per_user': 10, 'max_images': 0}})
  return prepare.ensure_dataset(cfg.data)


class AgreementTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.TemporaryDirectory()
    cls.ds_dir = _dataset(os.path.join(cls.tmp.name, 'data'), 3)

  @classmethod
  def tearDownClass(cls):
    cls.tmp.cleanup()
    super().tearDownClass()

  def test_shares_by_hand(self):
    values = np.array(['r', 'r', 'g', 'g', 'b'])
    idx = np.array([[1, 2], [0, 4], [3, 0], [2, 1], [0, 1]])
    ok = np.array([[True, True], [True, True], [True, True], [True, False],
                   [False, False]])
    # Valid pairs: (0,1) same, (0,2), (1,0) same, (1,4), (2,3) same, (2,0),
    # (3,2) same -> 4 of 7.
    self.assertAlmostEqual(planted.same_share(idx, ok, values), 4 / 7)
    # Pairs of distinct items sharing the value: 2 + 2 of 5 * 4.
    self.assertAlmostEqual(planted.chance_share(values), 4 / 20)

  def test_graphs_match_brute_force_and_see_the_planted_colour(self):
    ds_dir, k = self.ds_dir, 5
    ds, graphs = planted.neighbour_graphs(ds_dir, SOURCES, 3, k)
    self.assertEqual([g[:2] for g in graphs],
                     [('textual', 'real'), ('textual', 'shuffled'),
                      ('visual', 'real'), ('visual', 'shuffled'),
                      ('interactions', 'real')])

    def cosine(x):
      n = np.linalg.norm(x, axis=1, keepdims=True)
      x = np.where(n > 0, x / np.where(n > 0, n, 1), 0)
      sim = x @ x.T
      np.fill_diagonal(sim, -np.inf)
      return sim

    visual = store.load(ds_dir, 'synthetic_visual', ds.item_ids).values
    _, _, idx, ok = graphs[2]
    self.assertTrue(ok.all())
    # float32 on device against float64 here: ids are exact wherever the
    # reference has no near-tie (1e-5), near-ties may swap.
    fixed = numerics.assert_same_ranking(
        idx, cosine(visual.astype(np.float64)), atol=1e-5)
    self.assertGreater(fixed.mean(), 0.9)
    # The shuffled graph is that of the rows a control run of seed 3 sees.
    shuffled = controls.control_features(visual, np.ones(len(visual), bool),
                                         'shuffle', 3, 'visual')
    self.assertFalse(np.array_equal(shuffled, visual))
    fixed = numerics.assert_same_ranking(
        graphs[3][2], cosine(shuffled.astype(np.float64)), atol=1e-5)
    self.assertGreater(fixed.mean(), 0.9)
    # Interactions: tied similarities may pick other ids, so the chosen
    # neighbours' similarities must be the k largest of each row.
    users, items = ds.select(0)
    inter = np.zeros((ds.num_items, ds.num_users))
    inter[items, users] = 1
    isim = cosine(inter)
    _, _, idx, ok = graphs[4]
    np.testing.assert_array_equal(ok.any(1), inter.sum(1) > 0)
    for i in np.flatnonzero(ok.all(1)):
      np.testing.assert_allclose(np.sort(isim[i, idx[i]])[::-1],
                                 np.sort(isim[i])[::-1][:k], atol=1e-5)
    rows = planted.neighbour_agreement(ds_dir, SOURCES, 3, k)
    by = {(r['source'], r['features']): r for r in rows}
    colour = np.asarray(ds.item_table['colour'])
    self.assertAlmostEqual(by['visual', 'real']['colour'],
                           planted.same_share(graphs[2][2], graphs[2][3],
                                              colour))
    # The visual features carry the colour; shuffled ones do not beat the
    # real ones.
    self.assertGreater(by['visual', 'real']['colour'],
                       2 * by['visual', 'real']['colour_chance'])
    self.assertLess(by['visual', 'shuffled']['colour'],
                    by['visual', 'real']['colour'])

  def test_rows_of_a_study_average_its_seeds(self):
    # A study whose finished real runs of seeds 1 and 2 used this dataset;
    # an unfinished run and a control run are not read.
    tmp = _tmpdir(self)
    entries = []
    for seed, control, done in ((1, 'real', True), (2, 'real', True),
                                (5, 'real', False),
                                (1, 'shuffle_visual', True)):
      name = f'vbpr.synthetic.{control}.seed={seed}'
      entries.append({'model': 'vbpr', 'representation': 'synthetic',
                      'control': control, 'seed': seed, 'run': name,
                      'kind': 'real' if control == 'real' else 'control'})
      run = sweep.run_dir(os.path.join(tmp, study.FINAL), name)
      os.makedirs(run)
      sweep.write_json(os.path.join(run, 'runinfo.json'),
                       {'dataset': {'dir': self.ds_dir}})
      sweep.write_json(os.path.join(run, sweep.CONFIG),
                       {'features': {'sources': SOURCES,
                                     'transform': 'none'}})
      if done:
        sweep.write_json(os.path.join(run, sweep.RESULTS), {'best': {}})
        sweep.write_json(os.path.join(run, sweep.STATUS), {'state': 'done'})
    study.write_record(tmp, _record({'preset': 'visual'}, 'synthetic_visual',
                                    entries))
    self.assertEqual([(d['seed'], d['dataset_dir'])
                      for d in planted.study_datasets(tmp)],
                     [(1, self.ds_dir), (2, self.ds_dir)])
    rows = planted.agreement_rows([tmp], k=5)
    per_seed = [planted.neighbour_agreement(self.ds_dir, SOURCES, s, 5)
                for s in (1, 2)]
    self.assertLen(rows, len(per_seed[0]))
    for j, row in enumerate(rows):
      self.assertEqual((row['dataset'], row['seeds']),
                       ('synthetic_visual', 2))
      values = [s[j]['colour'] for s in per_seed]
      self.assertAlmostEqual(row['colour'], np.mean(values), places=12)
      self.assertEqual((row['colour_min'], row['colour_max']),
                       (min(values), max(values)))
      if row['features'] == 'real':
        # Real features and interactions do not depend on the run seed.
        self.assertEqual(row['colour_min'], row['colour_max'])
    self.assertIn('| synthetic_visual | interactions | real |',
                  planted.format_agreement(rows, 5))
    with open(os.path.join(tmp, study.STUDY), encoding='utf-8') as f:
      self.assertLen(json.load(f)['entries'], 4)


if __name__ == '__main__':
  absltest.main()
