"""Bring your own data: a dataset and LVLM outputs of your own, by commands.

`LvlmOutputsConfigTest` checks configs/features/lvlm_outputs.py on folders it
writes (names, kinds, slots, refusals). `ByodEndToEndTest` is issue 14's
"Done means": a recipe dataset in Elliot's layout (fixed train/val/test
files) and a folder of LVLM output files (fill-in-the-blank keywords in the
published recipe format, a descriptive file, a task-misaligned one), all
written into a temporary folder, go from nothing to trained and compared
models with the command-line tools only, and nothing is written into the
checkout. Users prefer one cuisine, which only the keyword file states, so
the keyword one-hots can be checked against that planted partition.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import re
import subprocess
import sys
import time
from unittest import mock

from absl.testing import absltest
import numpy as np

from mmjax.data import dataset as dataset_lib
from mmjax.data import store
from mmjax.features import extract
from tests.testing import fixtures

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
LVLM_OUTPUTS = os.path.join(_ROOT, 'configs', 'features', 'lvlm_outputs.py')
_HAS_EXTRACT = all(importlib.util.find_spec(m) is not None for m in (
    'torch', 'transformers', 'sentence_transformers', 'simplemma'))

# The published recipe prompt's slots, in order.
RECIPE_SLOTS = ('Dish Type', 'Cuisine', 'Primary Ingredient', 'Flavor Profile',
                'Meal Type')
CUISINES = ('Thai', 'Italian', 'Mexican', 'Indian')
INGREDIENTS = {'Thai': ('Coconut Milk', 'Lemongrass'),
               'Italian': ('Tomato', 'Basil'),
               'Mexican': ('Black Beans', 'Corn'),
               'Indian': ('Chickpeas', 'Lentils')}
DISHES = ('Soup', 'Salad', 'Stew', 'Curry')
FLAVORS = ('Spicy', 'Savory', 'Tangy')
MEALS = ('Dinner', 'Lunch')


def load_module():
  spec = importlib.util.spec_from_file_location('byod_lvlm_outputs',
                                                LVLM_OUTPUTS)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def write_csv(path: str, rows: list[tuple[str, str]],
              header: tuple[str, str] = ('asin', 'result')) -> None:
  with open(path, 'w', encoding='utf-8', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(header)
    writer.writerows(rows)


def write_recipes(root: str, num_users: int = 48, items_per_cuisine: int = 8,
                  seed: int = 0) -> dict[str, str]:
  """An Elliot folder and an LVLM outputs folder; returns raw item -> cuisine.

  User u prefers cuisine u % 4: 7 of its 9 interactions are recipes of that
  cuisine (train 7, val 1, test 1, by a seeded shuffle). Round-robin picks
  put every recipe into some user's training interactions.
  """
  rng = np.random.default_rng(seed)
  items = {c: [f'R{c[:2].upper()}{k:02d}' for k in range(items_per_cuisine)]
           for c in CUISINES}
  cuisine_of = {i: c for c, ids in items.items() for i in ids}
  everything = sorted(cuisine_of)
  elliot = os.path.join(root, 'recipes')
  os.makedirs(elliot)
  splits = {'train': [], 'val': [], 'test': []}
  for u in range(num_users):
    own = items[CUISINES[u % len(CUISINES)]]
    start = (u // len(CUISINES)) * 3
    liked = [own[(start + k) % len(own)] for k in range(7)]
    others = [i for i in everything if i not in own]
    liked += list(rng.choice(others, 2, replace=False))
    order = rng.permutation(len(liked))
    # Test and validation take one recipe each; every user keeps 7 in train.
    for k, j in enumerate(order):
      part = 'test' if k == 0 else 'val' if k == 1 else 'train'
      splits[part].append(f'U{u:03d}\t{liked[j]}\t1')
  for part, lines in splits.items():
    with open(os.path.join(elliot, f'{part}.tsv'), 'w') as f:
      f.write('\n'.join(lines) + '\n')

  lvlm = os.path.join(root, 'lvlm')
  os.makedirs(lvlm)
  fitb, descriptive, misaligned = [], [], []
  for i in everything:
    c = cuisine_of[i]
    dish, flavor, meal = (rng.choice(DISHES), rng.choice(FLAVORS),
                          rng.choice(MEALS))
    ingredient = rng.choice(INGREDIENTS[c])
    fitb.append((i, f'[Dish Type] {{{dish}}}, [Cuisine] {{{c}}}, '
                    f'[Primary Ingredient] {{{ingredient}}}, '
                    f'[Flavor Profile] {{{flavor}}}, [Meal Type] {{{meal}}}'))
    descriptive.append((i, f'A {flavor.lower()} {c} {dish.lower()} with '
                           f'{ingredient.lower()}, served for '
                           f'{meal.lower()}.'))
    misaligned.append((i, f'I would grind the {ingredient.lower()} into a '
                          'fuel paste and pack it into the rocket nozzle.'))
  # A recipe the dataset does not have is ignored; one the descriptive file
  # lacks is a counted, masked failure of that file only.
  fitb.append(('RXX99', '[Dish Type] {Pie}, [Cuisine] {French}'))
  write_csv(os.path.join(lvlm, 'qwen_keywords.csv'), fitb)
  write_csv(os.path.join(lvlm, 'qwen_descriptive.csv'), descriptive[1:])
  write_csv(os.path.join(lvlm, 'qwen_mis.csv'), misaligned)
  return cuisine_of


def save_tiny_text_encoder(path: str, seed: int = 0) -> None:
  """A random-weight 1-layer BERT and its tokenizer, saved with transformers.

  The text extractor embeds with it by mean pooling (its plain-HF backend)
  and the keyword merging wraps it the same way (Sentence-Transformers'
  default for a plain model). The vocabulary spells any lower-case word
  letter by letter (WordPiece continuations), so distinct keywords get
  distinct embeddings.
  """
  import torch  # pylint: disable=g-import-not-at-top
  import transformers  # pylint: disable=g-import-not-at-top

  letters = [chr(c) for c in range(ord('a'), ord('z') + 1)] + list(
      '0123456789')
  vocab = (['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] + letters
           + ['##' + x for x in letters] + list('.,;:!?-()[]{}\'"'))
  os.makedirs(path)
  with open(os.path.join(path, 'vocab.txt'), 'w') as f:
    f.write('\n'.join(vocab) + '\n')
  # From the folder: the constructor's vocabulary argument changed name
  # across transformers versions.
  transformers.BertTokenizer.from_pretrained(path).save_pretrained(path)
  torch.manual_seed(seed)
  transformers.BertModel(transformers.BertConfig(
      vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1,
      num_attention_heads=2, intermediate_size=64,
      max_position_embeddings=256)).save_pretrained(path)


def checkout_state() -> tuple[str, set[str]]:
  """`git status --porcelain --ignored` and every path under the checkout."""
  status = subprocess.run(
      ['git', 'status', '--porcelain', '--ignored'], cwd=_ROOT, check=True,
      capture_output=True, text=True).stdout
  paths = set()
  for folder, dirs, files in os.walk(_ROOT):
    dirs[:] = [d for d in dirs if d != '.git']
    paths.update(os.path.join(folder, f) for f in files)
  return status, paths


class LvlmOutputsConfigTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.outputs = load_module()
    self.dir = fixtures.new_tempdir(self)
    for name in ('qwen_keywords.csv', 'qwen_descriptive.csv', 'qwen_mis.csv',
                 'README.md'):
      with open(os.path.join(self.dir, name), 'w') as f:
        f.write('asin,result\n1,x\n')

  def test_every_file_becomes_its_representations(self):
    config = self.outputs.make_config(lvlm_dir=self.dir, domain='recipes',
                                      dataset_dir='/data/x')
    reps = config.representations
    # README.md is not a *.csv file: not an output file.
    self.assertCountEqual(reps, [
        'minilm_qwen_keywords', 'minilm_qwen_descriptive', 'minilm_qwen_mis',
        'keywords_qwen_keywords'])
    self.assertCountEqual(extract.run_order(reps), list(reps))
    for spec in reps.values():
      self.assertEqual(spec.extractor, 'descriptions')
      self.assertIsNotNone(importlib.util.find_spec('mmjax.features.'
                                                    'descriptions'))
    kw = reps.keywords_qwen_keywords
    self.assertEqual((kw.method, kw.prompt.domain, kw.prompt.kind),
                     ('keywords', 'recipes', 'fitb'))
    self.assertEqual(kw.csv.path, os.path.join(self.dir, 'qwen_keywords.csv'))
    self.assertEqual((kw.csv.key, kw.csv.column), ('asin', 'result'))
    self.assertEqual(reps.minilm_qwen_mis.method, 'text')
    # The model and keyword fields are ordinary overrides of every spec.
    config.encoder = '/models/tiny'
    config.column = 'answer'
    config.threshold = 0.3
    self.assertEqual(reps.minilm_qwen_mis.model, '/models/tiny')
    self.assertEqual(kw.embed_model, '/models/tiny')
    self.assertEqual(kw.threshold, 0.3)
    self.assertEqual(reps.minilm_qwen_descriptive.csv.column, 'answer')

  def test_explicit_slots_and_kind_lists(self):
    config = self.outputs.make_config(
        lvlm_dir=self.dir, slots=' Dish Type, Cuisine,Meal Type ',
        fitb='qwen_k*.csv', descriptive='*descriptive.csv,*_mis.csv',
        misaligned='')
    kw = config.representations.keywords_qwen_keywords
    self.assertEqual(list(kw.prompt_slots), ['Dish Type', 'Cuisine',
                                             'Meal Type'])
    self.assertNotIn('prompt', kw)
    # Without keyword files no slots are needed.
    config = self.outputs.make_config(lvlm_dir=self.dir, fitb='',
                                      descriptive='*.csv', misaligned='')
    self.assertCountEqual(config.representations, [
        'minilm_qwen_keywords', 'minilm_qwen_descriptive', 'minilm_qwen_mis'])

  def test_refusals_name_the_file_or_field(self):
    make, err = self.outputs.make_config, self.outputs.LayoutError
    with open(os.path.join(self.dir, 'notes.csv'), 'w') as f:
      f.write('asin,result\n')
    with self.assertRaisesRegex(err, r"'notes.csv' matches no kind of "
                                r"fitb='\*keywords\*.csv', .*--config.fitb"):
      make(lvlm_dir=self.dir, domain='recipes')
    os.remove(os.path.join(self.dir, 'notes.csv'))
    with self.assertRaisesRegex(err, r"'qwen_keywords.csv' matches several "
                                r'kinds \(fitb, descriptive\)'):
      make(lvlm_dir=self.dir, domain='recipes', descriptive='*')
    with self.assertRaisesRegex(err, 'exactly one of --config.domain'):
      make(lvlm_dir=self.dir)
    with self.assertRaisesRegex(err, 'exactly one of --config.domain'):
      make(lvlm_dir=self.dir, domain='recipes', slots='A,B')
    with self.assertRaisesRegex(err, "domain='cars': unknown prompt domain"):
      make(lvlm_dir=self.dir, domain='cars')
    with self.assertRaisesRegex(err, 'distinct, non-empty slot names'):
      make(lvlm_dir=self.dir, slots='A,,B')
    with self.assertRaisesRegex(err, 'set --config.lvlm_dir'):
      make()
    with self.assertRaisesRegex(err, '/nope: LVLM outputs folder not found'):
      make(lvlm_dir='/nope', domain='recipes')
    with self.assertRaisesRegex(err, r"no file matches files='\*.tsv'"):
      make(lvlm_dir=self.dir, files='*.tsv')
    with self.assertRaisesRegex(err, "unknown LVLM outputs config fields "
                                r"\['domian'\]"):
      make(lvlm_dir=self.dir, domian='recipes')
    with open(os.path.join(self.dir, 'qwen 7b_keywords.csv'), 'w') as f:
      f.write('asin,result\n')
    with self.assertRaisesRegex(err, r"qwen 7b_keywords.csv: the file name "
                                '.* rename the file'):
      make(lvlm_dir=self.dir, domain='recipes')

  def test_command_line_sets_the_layout(self):
    argv = ['extract', '--config', LVLM_OUTPUTS, '--config.lvlm_dir',
            self.dir, '--config.fitb=*_keywords.csv', '--config.domain=x',
            '--config.domain=recipes']
    with mock.patch.object(sys, 'argv', argv):
      config = self.outputs.get_config()
    # The last value wins, as with absl.
    self.assertEqual((config.lvlm_dir, config.fitb, config.domain),
                     (self.dir, '*_keywords.csv', 'recipes'))
    self.assertIn('keywords_qwen_keywords', config.representations)
    with mock.patch.object(sys, 'argv', ['extract']), \
         self.assertRaisesRegex(SystemExit, '^error: no LVLM outputs folder'):
      self.outputs.get_config()


@absltest.skipUnless(_HAS_EXTRACT, 'needs the extraction extras')
class ByodEndToEndTest(absltest.TestCase):

  def start(self, *args: str) -> tuple[subprocess.Popen, tuple[str, ...]]:
    """Starts `python -m <args>` in the temporary folder."""
    proc = subprocess.Popen([sys.executable, '-m', *args], cwd=self.tmp,
                            env=self.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    self.addCleanup(proc.kill)  # A no-op once it has exited.
    return proc, args

  def finish(self, started: tuple[subprocess.Popen, tuple[str, ...]]) -> str:
    """Waits for a started command; fails the test unless it exits 0."""
    proc, args = started
    out, err = proc.communicate(timeout=300)
    self.assertEqual(proc.returncode, 0, f'{" ".join(args)}\n{out}\n{err}')
    return out

  def run_command(self, *args: str) -> str:
    return self.finish(self.start(*args))

  def test_from_nothing_to_compared_models_by_commands(self):
    # This process writes no bytecode into the checkout either (a module
    # imported for the first time below would).
    self.enter_context(mock.patch.object(sys, 'dont_write_bytecode', True))
    before = checkout_state()
    started = time.perf_counter()
    self.tmp = fixtures.new_tempdir(self)
    # The commands write no bytecode and run on one device (the suite's 8
    # virtual devices test sharding, not this).
    self.env = dict(os.environ, PYTHONDONTWRITEBYTECODE='1',
                    # Stripped: XLA reads a value that does not start
                    # with '--' (a lone space too) as a flags file's name.
                    XLA_FLAGS=re.sub(r'--xla_force_host_platform_device_count'
                                     r'=\d+', '',
                                     os.environ.get('XLA_FLAGS', '')).strip(),
                    MMJAX_DATA=os.path.join(self.tmp, 'data'))
    cuisine_of = write_recipes(self.tmp)
    save_tiny_text_encoder(os.path.join(self.tmp, 'encoder'))
    data = {'name': 'recipes', 'format': 'elliot',
            'path': os.path.join(self.tmp, 'recipes'), 'split': 'fixed'}
    root = os.path.join(self.tmp, 'data')

    # 1. Prepare the dataset from the command line alone (inline fields).
    self.run_command('mmjax.data.prepare', f'--config.root={root}',
                     *[f'--config.{k}={v}' for k, v in data.items()])
    (dataset_dir,) = [os.path.join(root, d) for d in os.listdir(root)]
    ds = dataset_lib.load(dataset_dir)
    self.assertEqual(ds.num_items, len(cuisine_of))

    # 2. Train BPR-MF, naming the same data by a data config file anywhere:
    # it resolves to the dataset prepared above (same fields, same hash).
    # It needs no features: it trains while they are extracted.
    data_file = os.path.join(self.tmp, 'recipes_data.py')
    with open(data_file, 'w') as f:
      f.write('from mmjax.data import datasets\n\n\n'
              'def get_config(arg=None):\n'
              '  del arg\n'
              '  config = datasets.base_config()\n' +
              ''.join(f'  config.{k} = {v!r}\n' for k, v in data.items()) +
              '  return config\n')
    common = [f'--config.data.root={root}', '--config.train.num_epochs=3',
              '--config.train.batch_size=128', '--config.model.embed_dim=16',
              '--config.eval.batch_users=64', '--config.eval.topk=(5, 10)',
              '--config.eval.select_metric=recall@10',
              '--config.ckpt.every_epochs=3']
    runs = {name: os.path.join(self.tmp, 'runs', name)
            for name in ('bprmf', 'vbpr', 'vbpr_shuffled')}

    def launch(name, config, *extra):
      return self.start('mmjax.launch', '--config',
                        os.path.join(_ROOT, 'configs', config),
                        f'--workdir={runs[name]}', *common, *extra)

    bprmf = launch('bprmf', 'bprmf.py', f'--config.data.name={data_file}')

    # 3. Every LVLM output file becomes its representations, in the dataset
    # its data section names (inline, as prepared).
    out = self.run_command(
        'mmjax.features.extract', '--config', LVLM_OUTPUTS,
        f'--config.data.root={root}',
        *[f'--config.data.{k}={v}' for k, v in data.items()],
        f'--config.lvlm_dir={os.path.join(self.tmp, "lvlm")}',
        # The published recipe prompt's slots.
        '--config.domain=recipes',
        f'--config.encoder={os.path.join(self.tmp, "encoder")}',
        # Random weights would merge unrelated keywords; keep them apart.
        '--config.threshold=0.0', '--config.batch_size=64')
    self.assertCountEqual(
        store.list_features(dataset_dir),
        ['minilm_qwen_keywords', 'minilm_qwen_descriptive', 'minilm_qwen_mis',
         'keywords_qwen_keywords'], out)
    keywords = store.load(dataset_dir, 'keywords_qwen_keywords')
    self.assertTrue(keywords.mask.all())
    vocab = keywords.manifest['vocabulary']
    self.assertEqual(list(vocab['slots']), list(RECIPE_SLOTS))
    one_hot = keywords.values  # [I, sum of the slots' columns]
    # Every answer parsed: one column per slot.
    np.testing.assert_array_equal(one_hot.sum(axis=1), len(RECIPE_SLOTS))
    # The Cuisine block reproduces the planted cuisines exactly.
    start = vocab['block_offsets']['Cuisine']
    block = one_hot[:, start:start + len(vocab['columns']['Cuisine'])]
    planted = np.array([CUISINES.index(cuisine_of[i]) for i in ds.item_ids])
    found = block.argmax(axis=1)
    for c in range(len(CUISINES)):
      self.assertLen(set(found[planted == c]), 1)
    self.assertLen(set(found), len(CUISINES))
    descriptive = store.load(dataset_dir, 'minilm_qwen_descriptive')
    self.assertEqual(int((~descriptive.mask).sum()), 1)
    self.assertEqual(descriptive.values.shape, (len(cuisine_of), 32))

    # 4. VBPR on the keywords (and the descriptions), real and shuffled,
    # with the data inline.
    features = [*[f'--config.data.{k}={v}' for k, v in data.items()],
                '--config.features.sources.textual=keywords_qwen_keywords',
                '--config.features.sources.visual=minilm_qwen_descriptive']
    self.finish(launch('vbpr', 'vbpr.py', *features))
    # After the real run: the shuffled one reuses its compiled programs.
    self.finish(launch('vbpr_shuffled', 'vbpr.py', *features,
                       '--config.features.control=shuffle'))
    self.finish(bprmf)

    # 5. Compare: each VBPR run against BPR-MF on the same test users.
    table = self.run_command('mmjax.eval.compare', runs['bprmf'],
                             runs['vbpr'], runs['vbpr_shuffled'],
                             '--metric=recall@10', '--num_boot=200')
    means = {}
    for name, path in runs.items():
      with np.load(os.path.join(path, 'per_user_test.npz')) as f:
        row = list(f['metric_names']).index('recall@10')
        means[name] = (len(f['users']), f['values'][row].mean())
    # n, mean_base, mean_run, diff of each row (labels are compare's).
    numbers = re.findall(r'\s(\d+)\s+(\d\.\d{4})\s+(\d\.\d{4})\s+'
                         r'([+-]\d\.\d{4})\s', table)
    self.assertLen(numbers, 2, table)
    for (n, base, run, diff), name in zip(numbers, ('vbpr', 'vbpr_shuffled')):
      self.assertEqual(int(n), means['bprmf'][0], table)
      self.assertAlmostEqual(float(base), means['bprmf'][1], delta=6e-5)
      self.assertAlmostEqual(float(run), means[name][1], delta=6e-5)
      self.assertAlmostEqual(float(diff), means[name][1] - means['bprmf'][1],
                             delta=1.1e-4)

    # The three ways of naming the data found one dataset.
    self.assertEqual(os.listdir(root), [os.path.basename(dataset_dir)])
    # Nothing was written into the checkout.
    after = checkout_state()
    self.assertEqual(before[0], after[0])
    self.assertEqual(sorted(after[1] - before[1]), [])
    print(f'byod: {time.perf_counter() - started:.1f} s wall')


if __name__ == '__main__':
  absltest.main()
