r"""Representations of a folder of LVLM output files, named after each file.

  python -m mmjax.features.extract --config configs/features/lvlm_outputs.py \
      --config.dataset_dir=DATASET --config.lvlm_dir=OUTPUTS \
      --config.domain=recipes

Each file of `lvlm_dir` whose name matches `files` (default '*.csv') is a CSV
with a header, one row per item: the raw item id in column `key` (default
'asin') and the model's answer in column `column` (default 'result'), the
published layout. The file `<stem>.csv` becomes
  minilm_<stem>    the sentence embedding of the whole answer (`encoder`,
                   default all-MiniLM-L6-v2, resolved offline), every file;
  keywords_<stem>  one-hot keywords of its fill-in-the-blank answers (the
                   `top_k` most frequent values per slot plus Other,
                   near-duplicates merged at cosine distance `threshold` with
                   `encoder`), keyword files only.
Items a file lacks, and answers that do not parse, are recorded as failed in
the manifests (masked).

What kind a file is comes from three fields, each a comma-separated list of
glob patterns matched against file names (defaults: the published names):
  fitb         fill-in-the-blank keyword answers ('*keywords*.csv');
  descriptive  free descriptions ('*descriptive*.csv');
  misaligned   the task-misaligned control ('*_mis.csv,*misaligned*.csv').
A file that matches none of them, or more than one, is refused with its name;
e.g. `--config.fitb='qwen*.csv,phi*.csv' --config.descriptive='' ...`.
The slots of the keyword answers: `domain` (a prompt domain of
mmjax/features/prompts.py, e.g. recipes: its fill-in-the-blank slots) or
`slots`, the names in order, comma-separated
(`--config.slots='Dish Type,Cuisine,Primary Ingredient,Flavor Profile,Meal
Type'`); exactly one of the two when there are keyword files.

The dataset the features belong to: `--config.dataset_dir=DIR` (a prepared
dataset folder, as `python -m mmjax.data.prepare` prints it), or the `data`
section, a training config's (mmjax/data/datasets.py): a built-in name, a
data config file anywhere (`--config.data.name=path/to/recipes.py`) or the
data inline (`--config.data.name=recipes --config.data.format=elliot
--config.data.path=DIR --config.data.split=fixed`); it is prepared first when
it is not yet, and the same section in a training config finds the same
dataset directory.

Why the command line is read here: these fields decide which
representations exist, and ml_collections applies `--config.<field>=`
overrides only after `get_config` returns. So `get_config` reads the
overrides of the fields in `LAYOUT_FIELDS` from the command line itself (as
ml_collections finds its overrides, in sys.argv), and the flags then set the
same values. From Python, call `make_config(lvlm_dir=..., ...)` instead of
setting those fields on a loaded config. The other fields (`key`, `column`,
`encoder`, `top_k`, `threshold`, `min_slots`) are ordinary overrides.
"""

from __future__ import annotations

import fnmatch
import os
import re
import sys
from typing import Sequence

from absl import flags
import ml_collections

from mmjax.data import datasets
from mmjax.features import base
from mmjax.features import prompts

MINILM = 'sentence-transformers/all-MiniLM-L6-v2'

# The fields that decide which representations exist, with their defaults.
LAYOUT_FIELDS = {
    'lvlm_dir': '',
    'files': '*.csv',
    'fitb': '*keywords*.csv',
    'descriptive': '*descriptive*.csv',
    'misaligned': '*_mis.csv,*misaligned*.csv',
    'domain': '',
    'slots': '',
}
KINDS = ('fitb', 'descriptive', 'misaligned')


class LayoutError(ValueError):
  """The LVLM outputs folder or its fields cannot work (says which)."""


# A representation name is a file name in the feature store and a config key.
_STEM = re.compile(r'^[A-Za-z0-9_-]+$')


def _patterns(text: str) -> list[str]:
  return [p.strip() for p in text.split(',') if p.strip()]


def classify(names: Sequence[str], patterns: dict[str, str]
             ) -> dict[str, str]:
  """file name -> its kind, by the glob lists of `patterns` (kind -> text).

  Raises:
    LayoutError: a file matching no kind's patterns or several, naming it.
  """
  kinds = {}
  for name in names:
    hits = [k for k in KINDS
            if any(fnmatch.fnmatchcase(name, p)
                   for p in _patterns(patterns[k]))]
    if len(hits) != 1:
      given = ', '.join(f'{k}={patterns[k]!r}' for k in KINDS)
      what = ('matches no kind' if not hits else
              f'matches several kinds ({", ".join(hits)})')
      raise LayoutError(
          f'LVLM output file {name!r} {what} of {given}; set '
          '--config.fitb, --config.descriptive and --config.misaligned '
          '(comma-separated glob patterns) so that each file matches one.')
    kinds[name] = hits[0]
  return kinds


def slot_spec(domain: str, slots: str) -> dict:
  """The keyword specs' slot keys: `prompt` (a domain) or `prompt_slots`.

  Raises:
    LayoutError: neither or both given, an unknown domain, or not one name
      per slot.
  """
  if bool(domain) == bool(slots):
    raise LayoutError(
        'keyword (fill-in-the-blank) files need the slots their prompt asked '
        'for: set exactly one of --config.domain (one of '
        f'{", ".join(prompts.DOMAINS)}) and --config.slots (the slot names, '
        f'comma-separated); got domain={domain!r}, slots={slots!r}.')
  if domain:
    if domain not in prompts.DOMAINS:
      raise LayoutError(f'--config.domain={domain!r}: unknown prompt domain; '
                        f'have {", ".join(prompts.DOMAINS)}.')
    return {'prompt': {'domain': domain, 'kind': 'fitb'}}
  names = [s.strip() for s in slots.split(',')]
  if any(not s for s in names) or len(set(names)) != len(names):
    raise LayoutError(f'--config.slots={slots!r}: expected distinct, '
                      'non-empty slot names separated by commas.')
  return {'prompt_slots': names}


def output_files(lvlm_dir: str, files: str) -> list[str]:
  """The file names of `lvlm_dir` matching the glob list `files`, sorted.

  Raises:
    LayoutError: the folder does not exist, no file matches, a stem that
      cannot name a representation, or two files with the same stem.
  """
  if not lvlm_dir:
    raise LayoutError(
        'no LVLM outputs folder: set --config.lvlm_dir=DIR (a folder of '
        'output files, one CSV per model and prompt).')
  if not os.path.isdir(lvlm_dir):
    raise LayoutError(f'{lvlm_dir}: LVLM outputs folder not found '
                      '(--config.lvlm_dir).')
  names = sorted(n for n in os.listdir(lvlm_dir)
                 if os.path.isfile(os.path.join(lvlm_dir, n))
                 and any(fnmatch.fnmatchcase(n, p) for p in _patterns(files)))
  if not names:
    raise LayoutError(f'{lvlm_dir}: no file matches files={files!r}.')
  stems: dict[str, str] = {}
  for n in names:
    stem = os.path.splitext(n)[0]
    if not _STEM.match(stem):
      raise LayoutError(
          f'{os.path.join(lvlm_dir, n)}: the file name {stem!r} names its '
          'representations (minilm_<name>, keywords_<name>), so it may hold '
          'only letters, digits, _ and -; rename the file.')
    if stem in stems:
      raise LayoutError(f'{lvlm_dir}: {stems[stem]!r} and {n!r} would give '
                        f'the same representation names ({stem!r}).')
    stems[stem] = n
  return names


def representations(config: ml_collections.ConfigDict
                    ) -> ml_collections.ConfigDict:
  """name -> spec for every file, from the layout fields of `config`.

  The specs refer to `config.key`, `column`, `encoder`, `top_k`,
  `threshold` and `min_slots` (FieldReferences), so overriding those later
  changes every spec.
  """
  names = output_files(config.lvlm_dir, config.files)
  kinds = classify(names, {k: config[k] for k in KINDS})
  slots = (slot_spec(config.domain, config.slots)
           if 'fitb' in kinds.values() else {})
  reps = ml_collections.ConfigDict()
  for name in names:
    stem = os.path.splitext(name)[0]
    csv = {'path': os.path.abspath(os.path.join(config.lvlm_dir, name)),
           'key': '', 'column': '', 'field': 'lvlm_text'}
    reps[f'minilm_{stem}'] = {
        'extractor': 'descriptions', 'method': 'text', 'model': '',
        'normalize': True, 'csv': dict(csv)}
    if kinds[name] == 'fitb':
      reps[f'keywords_{stem}'] = {
          'extractor': 'descriptions', 'method': 'keywords', **slots,
          'min_slots': 0, 'top_k': 0, 'threshold': 0.0, 'embed_model': '',
          'csv': dict(csv)}
  for spec in reps.values():
    spec.csv.key = config.get_ref('key')
    spec.csv.column = config.get_ref('column')
    if spec.method == 'text':
      spec.model = config.get_ref('encoder')
    else:
      spec.embed_model = config.get_ref('encoder')
      spec.min_slots = config.get_ref('min_slots')
      spec.top_k = config.get_ref('top_k')
      spec.threshold = config.get_ref('threshold')
  return reps


def command_line_fields(argv: Sequence[str],
                        names: Sequence[str]) -> dict[str, str]:
  """The values `--config.<name>=v` (or `--config.<name> v`) give in argv.

  The last one wins, as with absl. Flag files (--flagfile) are expanded as
  ml_collections expands them.
  """
  if any(a.startswith('--flagfile') for a in argv):
    argv = flags.FLAGS.read_flags_from_files(list(argv), force_gnu=False)
  found = {}
  for i, arg in enumerate(argv):
    for name in names:
      flag = f'--config.{name}'
      if arg.startswith(flag + '='):
        found[name] = arg[len(flag) + 1:]
      elif arg == flag and i + 1 < len(argv):
        found[name] = argv[i + 1]
  return found


def make_config(**fields) -> ml_collections.ConfigDict:
  """The extraction config of an LVLM outputs folder (see the docstring).

  Args:
    **fields: any of LAYOUT_FIELDS, `key`, `column`, `encoder`, `top_k`,
      `threshold`, `min_slots`, `data` (a dict of the data section's
      fields), and the run fields of `base.run_config` (`dataset_dir`,
      `batch_size`, ...).

  Raises:
    LayoutError: see `output_files`, `classify` and `slot_spec`; each
      message names the file or field, or an unknown field.
  """
  config = base.run_config(batch_size=256, shard_size=4096)
  config.update(LAYOUT_FIELDS)
  config.key = 'asin'
  config.column = 'result'
  config.encoder = MINILM
  config.top_k = 50
  config.threshold = 0.45
  config.min_slots = 3
  # Used when dataset_dir is empty; name '' asks for one of the two.
  config.data = datasets.training_section('')
  unknown = sorted(set(fields) - set(config))
  if unknown:
    raise LayoutError(f'unknown LVLM outputs config fields {unknown}; have '
                      f'{sorted(config)}.')
  config.update(fields)
  config.representations = representations(config)
  return config


def command_line_config(**defaults) -> ml_collections.ConfigDict:
  """`make_config(**defaults)` with the layout fields of the command line.

  For `get_config` (this file's and its instances', e.g. ml_lvlm.py): a
  layout problem exits with its message in one line (config_flags would
  wrap it in a traceback). From Python, call `make_config`.
  """
  fields = dict(defaults,
                **command_line_fields(sys.argv, list(LAYOUT_FIELDS)))
  try:
    return make_config(**fields)
  except LayoutError as e:
    raise SystemExit(f'error: {e}') from None


def get_config() -> ml_collections.ConfigDict:
  return command_line_config()
