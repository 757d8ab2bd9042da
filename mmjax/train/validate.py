"""Checks a whole training config before any dataset or device work.

A bad value found by the loop costs a dataset preparation, a compile and
sometimes epochs of training and written checkpoints before it fails (a
misspelt `eval.select_metric` was a KeyError after epoch 1), or it is never
found at all (`optim.lr=nan` trained to Recall@20 0.0 and reported it as the
best). `check(cfg)` refuses such configs at once with a `ConfigError` whose
message names the key, the value and what is expected.

This module imports neither JAX nor the models (only their option
declarations, mmjax/models/options.py, which import no JAX), so that `python -m
mmjax.launch` can report a config error in a fraction of a second. The
metric, optimiser and control names it accepts are copies of those in
mmjax/eval/metrics.py, mmjax/train/optim.py, mmjax/train/sampler.py and
mmjax/models/controls.py; tests/train/validate_test.py checks that the copies
agree with the originals.

Multi-model configs (`models` with a `per_model.<name>` section each, see
configs/quickstart.py) are checked once for the shared sections and once per
model section.
"""

from __future__ import annotations

import difflib
import math
import numbers
import re
from typing import Any, Callable, Sequence

import ml_collections

from mmjax.models import options as model_options

# mmjax/eval/metrics.py NAMES: the accuracy metrics computed at every
# cut-off. Selection keeps the largest value, so only these (higher is
# better), optionally restricted to cold items, can select the best epoch.
SELECT_METRICS = ('recall', 'ndcg', 'precision', 'hit', 'map', 'mrr')
COLD_SUFFIX = '/cold_items'  # mmjax/eval/ranking.py COLD.
# mmjax/train/optim.py OPTIMIZERS: the optax optimisers that take a learning
# rate (a copy: this module imports no JAX; validate_test checks they agree).
OPTIMIZERS = (
    'adabelief', 'adadelta', 'adafactor', 'adagrad', 'adam', 'adamax',
    'adamaxw', 'adamw', 'amsgrad', 'fromage', 'lamb', 'lars', 'lion',
    'novograd', 'radam', 'rmsprop', 'sgd', 'yogi')
SCHEDULES = ('constant', 'mmrec', 'cosine')  # mmjax/train/optim.py.
NEGATIVES_FROM = ('train_items', 'all')  # mmjax/train/sampler.py.
CONTROLS = ('none', 'shuffle', 'noise')  # mmjax/models/controls.py.
CONVENTIONS = ('mmrec', 'elliot')  # mmjax/eval/metrics.py.
GAINS = ('binary', 'graded')  # mmjax/eval/ranking.py.
# mmjax/eval/evaluators.py KINDS, EVERY, COMMON, OPTIONS and RESERVED.
EVALUATOR_KINDS = ('ranking', 'cold_items_only', 'user_groups')
EVALUATOR_EVERY = ('eval', 'best')
EVALUATOR_COMMON = ('kind', 'split', 'every')
EVALUATOR_OPTIONS = {
    'ranking': ('topk', 'user_groups', 'mask_valid_at_test'),
    'cold_items_only': ('topk', 'mask_valid_at_test'),
    'user_groups': ('groups',),
}
EVALUATOR_RESERVED = ('val', 'test', 'train', 'perf', 'best', 'final',
                      'epoch', 'step')

_MISSING = object()
_SELECT = re.compile(r'^([a-z_]+)@(\d+)(' + re.escape(COLD_SUFFIX) + r')?$')


class ConfigError(ValueError):
  """A config value that cannot run; the message names key, value, fix."""


def _get(cfg: Any, key: str) -> Any:
  """The value at dotted `key`, or _MISSING when a section or key is absent."""
  node = cfg
  for part in key.split('.'):
    if not isinstance(node, (ml_collections.ConfigDict, dict)):
      return _MISSING
    if part not in node:
      return _MISSING
    node = node[part]
  return node


def _fail(key: str, value: Any, expected: str) -> None:
  raise ConfigError(f'{key}={value!r}: {expected}.')


def _required(cfg: Any, key: str) -> Any:
  value = _get(cfg, key)
  if value is _MISSING:
    raise ConfigError(f'{key} is missing from the config.')
  return value


def _is_int(value: Any) -> bool:
  return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
  return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _int_at_least(cfg: Any, key: str, low: int, required: bool = True,
                  allow_none: bool = False) -> None:
  value = _required(cfg, key) if required else _get(cfg, key)
  if value is _MISSING or (allow_none and value is None):
    return
  if not _is_int(value) or value < low:
    _fail(key, value, f'expected an integer >= {low}')


def _number(cfg: Any, key: str, *, positive: bool, required: bool = True,
            allow_none: bool = False) -> None:
  """A finite number, > 0 when `positive`, else >= 0."""
  value = _required(cfg, key) if required else _get(cfg, key)
  if value is _MISSING or (allow_none and value is None):
    return
  sign = '> 0' if positive else '>= 0'
  if (not _is_real(value) or not math.isfinite(value)
      or value < 0 or (positive and value == 0)):
    _fail(key, value, f'expected a finite number {sign}')


def _one_of(cfg: Any, key: str, choices: Sequence[str],
            required: bool = False, allow_none: bool = False) -> None:
  value = _required(cfg, key) if required else _get(cfg, key)
  if value is _MISSING or (allow_none and value is None):
    return
  if value not in choices:
    _fail(key, value, f'expected one of {", ".join(choices)}')


def model_exists(name: Any) -> bool:
  """Whether `name` is a model: one declared in mmjax/models/options.py
  (found without importing the model, so without JAX)."""
  return isinstance(name, str) and name in model_options.MODELS


def _check_model(section: Any, prefix: str) -> None:
  """A `model` section (or a `per_model.<name>` one, under `prefix`):
  its name and every option against the model's declaration."""
  name = _get(section, 'name')
  if name is _MISSING:
    raise ConfigError(f'{prefix}.name is missing from the config.')
  if not model_exists(name):
    close = difflib.get_close_matches(str(name), model_options.names(),
                                      n=len(model_options.MODELS),
                                      cutoff=0.0)
    _fail(f'{prefix}.name', name,
          f'no such model (the models, closest first: {", ".join(close)})')
  why = model_options.problem(section, prefix)
  if why:
    raise ConfigError(why + '.')


def _check_models(cfg: Any) -> None:
  names = _get(cfg, 'models')
  if names in (_MISSING, None) or not tuple(names):
    _check_model(_required(cfg, 'model'), 'model')
    return
  per_model = _get(cfg, 'per_model')
  for name in names:
    if (per_model in (_MISSING, None) or not isinstance(name, str)
        or name not in per_model):
      _fail('models', tuple(names),
            f'each name needs a per_model.{name} section (the model section '
            'of that run)')
    _check_model(per_model[name], f'per_model.{name}')


def _check_optim(cfg: Any) -> None:
  _number(cfg, 'optim.lr', positive=True)
  _one_of(cfg, 'optim.name', OPTIMIZERS, required=True)
  _one_of(cfg, 'optim.schedule', SCHEDULES, allow_none=True)
  _number(cfg, 'optim.weight_decay', positive=False, required=False,
          allow_none=True)
  _number(cfg, 'optim.clip_norm', positive=True, required=False,
          allow_none=True)
  if _get(cfg, 'optim.schedule') == 'mmrec':
    decay = _get(cfg, 'optim.lr_decay')
    if (decay is _MISSING or len(tuple(decay)) != 2
        or not all(_is_real(v) and math.isfinite(v) for v in decay)
        or decay[0] <= 0 or decay[1] == 0):
      _fail('optim.lr_decay', decay,
            "expected (a > 0, b != 0) with optim.schedule='mmrec' "
            '(lr * a ** (epoch / b))')


def _check_train(cfg: Any) -> None:
  # 0 epochs trains nothing and evaluates nothing ("best": {}); closed-form
  # models ignore the value, so it is refused for every model alike.
  _int_at_least(cfg, 'train.num_epochs', 1)
  _int_at_least(cfg, 'train.batch_size', 1)
  _int_at_least(cfg, 'train.num_negatives', 1, required=False)
  _int_at_least(cfg, 'train.eval_every_epochs', 1)
  # None counts as 0 (no early stopping) in the loop.
  _int_at_least(cfg, 'train.patience', 0, required=False, allow_none=True)
  _one_of(cfg, 'train.negatives_from', NEGATIVES_FROM)
  devices = _get(cfg, 'mesh.data')
  batch = _get(cfg, 'train.batch_size')
  if _is_int(devices) and devices >= 1 and batch % devices:
    _fail('train.batch_size', batch,
          f'expected a multiple of mesh.data={devices} (each device gets '
          'the same number of rows)')


def _check_eval(cfg: Any) -> None:
  topk = _required(cfg, 'eval.topk')
  if isinstance(topk, (str, bytes)) or not isinstance(topk, Sequence):
    _fail('eval.topk', topk, 'expected a tuple of cut-offs, e.g. (10, 20)')
  if not topk or not all(_is_int(k) and k >= 1 for k in topk):
    _fail('eval.topk', topk, 'expected a non-empty tuple of integers >= 1')
  select = _required(cfg, 'eval.select_metric')
  match = _SELECT.match(select) if isinstance(select, str) else None
  expected = (f'expected <metric>@<k>[{COLD_SUFFIX}] with <metric> one of '
              f'{", ".join(SELECT_METRICS)}')
  if match is None or match.group(1) not in SELECT_METRICS:
    _fail('eval.select_metric', select, expected)
  if int(match.group(2)) not in tuple(topk):
    _fail('eval.select_metric', select,
          f'its cut-off @{match.group(2)} is not in eval.topk '
          f'{tuple(topk)}: add it there or select at one of those')
  _int_at_least(cfg, 'eval.batch_users', 1, required=False)
  _one_of(cfg, 'eval.convention', CONVENTIONS)
  _one_of(cfg, 'eval.gain', GAINS)
  if _get(cfg, 'eval.gain') == 'graded':
    if _get(cfg, 'eval.convention') == 'mmrec':
      _fail('eval.gain', 'graded',
            "needs eval.convention='elliot' (MMRec defines binary gains "
            'only)')
    if _get(cfg, 'eval.relevance_threshold') in (_MISSING, None):
      _fail('eval.gain', 'graded', 'needs eval.relevance_threshold')
  groups = _get(cfg, 'eval.user_groups')
  if groups not in (_MISSING, None) and tuple(groups):
    groups = tuple(groups)
    if (not all(_is_real(g) for g in groups)
        or any(a >= b for a, b in zip(groups, groups[1:]))):
      _fail('eval.user_groups', groups, 'expected increasing numbers')


def _increasing(value: Any) -> bool:
  return (not isinstance(value, (str, bytes)) and isinstance(value, Sequence)
          and all(_is_real(g) for g in value)
          and all(a < b for a, b in zip(value, value[1:])))


def _check_evaluators(cfg: Any) -> None:
  """`eval.evaluators`: name -> {kind, split, every, the kind's options}."""
  section = _get(cfg, 'eval.evaluators')
  if section in (_MISSING, None):
    return
  if not isinstance(section, (ml_collections.ConfigDict, dict)):
    _fail('eval.evaluators', section, 'expected a section of name -> '
          "{kind: ..., split: ...}")
  for name in section:
    key = f'eval.evaluators.{name}'
    entry = section[name]
    if not isinstance(entry, (ml_collections.ConfigDict, dict)):
      _fail(key, entry, "expected {kind: ..., split: 'val' or 'test'}")
    if name in EVALUATOR_RESERVED or not str(name).isidentifier():
      _fail(key, dict(entry), 'the name must be an identifier other than '
            f'{", ".join(EVALUATOR_RESERVED)}')
    kind = entry.get('kind', _MISSING)
    if kind not in EVALUATOR_KINDS:
      _fail(f'{key}.kind', None if kind is _MISSING else kind,
            f'expected one of {", ".join(EVALUATOR_KINDS)}')
    unknown = sorted(set(entry) - set(EVALUATOR_COMMON)
                     - set(EVALUATOR_OPTIONS[kind]))
    if unknown:
      _fail(f'{key}.{unknown[0]}', entry[unknown[0]],
            f'not an option of kind {kind!r} (it takes '
            f'{", ".join(EVALUATOR_COMMON + EVALUATOR_OPTIONS[kind])})')
    _one_of(cfg, f'{key}.split', ('val', 'test'))
    _one_of(cfg, f'{key}.every', EVALUATOR_EVERY)
    own_topk = entry.get('topk', None)
    if own_topk is not None and (
        not _increasing(own_topk) or not own_topk
        or not all(_is_int(k) and k >= 1 for k in own_topk)):
      _fail(f'{key}.topk', own_topk,
            'expected increasing integers >= 1, e.g. (10, 20)')
    for option in ('user_groups', 'groups'):
      groups = entry.get(option, None)
      if groups is not None and not _increasing(groups):
        _fail(f'{key}.{option}', groups, 'expected increasing numbers')
    if kind == 'user_groups':
      groups = entry.get('groups', None) or _get(cfg, 'eval.user_groups')
      if groups in (_MISSING, None) or len(tuple(groups)) < 2:
        _fail(f'{key}.groups', entry.get('groups', None),
              'expected at least two increasing edges, e.g. (0, 6, inf) '
              'for users with at most 5 training interactions and the '
              'others (or set eval.user_groups)')
    mask = entry.get('mask_valid_at_test', None)
    if mask is not None and not isinstance(mask, bool):
      _fail(f'{key}.mask_valid_at_test', mask, 'expected True or False')


def _check_features(cfg: Any) -> None:
  _one_of(cfg, 'features.control', CONTROLS, allow_none=True)
  sources = _get(cfg, 'features.sources')
  sources = {} if sources in (_MISSING, None) else dict(sources)
  for modality, name in sources.items():
    if name is not None and not isinstance(name, str):
      _fail(f'features.sources.{modality}', name,
            'expected a representation name (a string)')
  controlled = _get(cfg, 'features.control_modalities')
  if controlled not in (_MISSING, None):
    unknown = sorted(set(controlled) - set(sources))
    if unknown:
      _fail('features.control_modalities', tuple(controlled),
            f'{unknown} not in features.sources {sorted(sources)}')
  transform = _get(cfg, 'features.transform')
  if transform in (_MISSING, None, 'none', 'l2', 'standardize'):
    return
  match = (re.match(r'^pca:(\d+)$', transform)
           if isinstance(transform, str) else None)
  if match is None or int(match.group(1)) < 1:
    _fail('features.transform', transform,
          'expected none, l2, standardize or pca:<k> with k >= 1')


def _check_mesh_and_ckpt(cfg: Any) -> None:
  devices = _get(cfg, 'mesh.data')
  if devices not in (_MISSING, None, -1) and (not _is_int(devices)
                                              or devices < 1):
    _fail('mesh.data', devices, 'expected -1 (all devices) or an integer '
          '>= 1')
  _int_at_least(cfg, 'mesh.num_processes', 1, required=False)
  pid, count = _get(cfg, 'mesh.process_id'), _get(cfg, 'mesh.num_processes')
  if pid is not _MISSING and count is not _MISSING and _is_int(count):
    if not _is_int(pid) or not 0 <= pid < count:
      _fail('mesh.process_id', pid,
            f'expected an integer in [0, mesh.num_processes={count})')
  _int_at_least(cfg, 'ckpt.every_epochs', 1, required=False)
  _int_at_least(cfg, 'ckpt.keep', 1, required=False)


def check(cfg: Any) -> None:
  """Checks a training config; returns None when it can run.

  Args:
    cfg: a training config (the sections of `defaults.base_config()`), with
      one `model` or a multi-model `models` + `per_model`.

  Raises:
    ConfigError: the first bad value, named as `key=value: expected ...`.
  """
  seed = _get(cfg, 'seed')
  if seed is not _MISSING and not _is_int(seed):
    _fail('seed', seed, 'expected an integer')
  data_name = _required(cfg, 'data.name')
  if not isinstance(data_name, str) or not data_name:
    _fail('data.name', data_name, 'expected a built-in dataset name, a '
          'data config file or, with data.format and data.path, a new name')
  _check_models(cfg)
  _check_optim(cfg)
  _check_train(cfg)
  _check_eval(cfg)
  _check_evaluators(cfg)
  _check_features(cfg)
  _check_mesh_and_ckpt(cfg)


def model_names(cfg: Any) -> list[str]:
  """The model names a config runs: `model.name`, or each `per_model`'s."""
  names = _get(cfg, 'models')
  if names in (_MISSING, None) or not tuple(names):
    return [cfg.model.name]
  return [cfg.per_model[n].name for n in names]


def check_devices(cfg: Any, device_count: int,
                  closed_form: Callable[[str], bool] = lambda name: False
                  ) -> None:
  """Checks the mesh against the devices present, once JAX knows them.

  The loop finds these only after preparing the dataset and building the
  model context: `mesh.data` larger than the device count, and a batch size
  that does not split evenly over the mesh (closed-form models, which have
  no batches, excepted).

  Args:
    cfg: a training config that passed `check`.
    device_count: `jax.device_count()`.
    closed_form: model name -> whether the model is fitted in closed form.

  Raises:
    ConfigError: either mismatch.
  """
  want = _get(cfg, 'mesh.data')
  n = device_count if want in (_MISSING, None, -1) else int(want)
  if n > device_count:
    _fail('mesh.data', want, f'only {device_count} device(s) available')
  batch = int(cfg.train.batch_size)
  if batch % n and not all(closed_form(m) for m in model_names(cfg)):
    _fail('train.batch_size', batch,
          f'expected a multiple of the {n} devices of the mesh (each device '
          'gets the same number of rows)')
