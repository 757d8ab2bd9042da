"""Each model's options, declared once: names, types, defaults, choices.

One table per model (`MODELS[name]`, the options of `model.<option>` beside
the common `name`, `embed_dim`, `num_layers`, `reg_weight`). Everything that
knows a model's options reads them here:
  - the configs start their `model` section from `section(name)` and set
    only what differs (configs/<model>.py), so the sweep's grid keys and
    `--config.model.<option>` overrides exist exactly for declared options;
  - mmjax/train/validate.py refuses an undeclared, ill-typed or out-of-range
    option before training (`problem`), listing the model's options, the
    closest first;
  - the loop hands each model `complete(section)`: a section with every
    declared option, so a model reads `cfg.<option>` with no default
    of its own (an older config.json, or a test's partial section, gets the
    declared defaults).

This module imports neither JAX nor the models (validate.py runs before any
JAX import); tests/models/options_test.py checks that every model module has
a table and every table a module.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
from typing import Any

import ml_collections


@dataclasses.dataclass(frozen=True)
class Option:
  """One model option.

  Attributes:
    name: the key under `model`.
    default: its value when a config does not set it.
    kind: 'int', 'float', 'bool', 'str' or 'weights' ({modality: number}
      or numbers in the modalities' sorted order).
    choices: the allowed values of a 'str' option (empty: any string).
    low: the smallest allowed number (int and float options), or None.
    below: a float option's exclusive upper bound (a rate), or None.
    optional: None is allowed (meaning documented in `doc`).
    doc: what it does, one line.
  """
  name: str
  default: Any
  kind: str
  choices: tuple[str, ...] = ()
  low: float | None = None
  below: float | None = None
  optional: bool = False
  doc: str = ''

  def problem(self, value: Any) -> str | None:
    """Why `value` is not valid for this option, or None."""
    if value is None:
      return None if self.optional else f'expected {self.expected()}'
    ok = {
        'int': _is_int(value),
        'float': _is_real(value) and math.isfinite(value),
        'bool': isinstance(value, bool),
        'str': isinstance(value, str),
        'weights': _is_weights(value),
    }[self.kind]
    if ok and self.choices and value not in self.choices:
      ok = False
    if ok and self.low is not None and value < self.low:
      ok = False
    if ok and self.below is not None and value >= self.below:
      ok = False
    return None if ok else f'expected {self.expected()}'

  def expected(self) -> str:
    """The allowed values, in words."""
    if self.choices:
      text = 'one of ' + ', '.join(repr(c) for c in self.choices)
    elif self.kind == 'weights':
      text = ('{modality: weight}, or weights in the modalities\' sorted '
              'order')
    else:
      text = {'int': 'an integer', 'float': 'a finite number',
              'bool': 'True or False', 'str': 'a string'}[self.kind]
      if self.low is not None and self.below is not None:
        text += f' in [{self.low}, {self.below})'
      elif self.low is not None:
        text += f' >= {self.low}'
    return text + (' or None' if self.optional else '')


def _is_int(value: Any) -> bool:
  return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
  return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_weights(value: Any) -> bool:
  """{modality: number}, or numbers in the context's modality order."""
  if isinstance(value, (dict, ml_collections.ConfigDict)):
    keys, numbers_ = list(value.keys()), list(value.values())
  elif isinstance(value, (tuple, list)):
    keys, numbers_ = [], list(value)
  else:
    return False
  return (all(isinstance(k, str) for k in keys)
          and all(_is_real(v) and math.isfinite(v) for v in numbers_))


def _common(embed_dim: int = 64, num_layers: int = 0,
            reg_weight: float = 1e-4) -> tuple[Option, ...]:
  return (
      Option('embed_dim', embed_dim, 'int', low=1,
             doc='D, the width of the embeddings.'),
      Option('num_layers', num_layers, 'int', low=0,
             doc='graph propagation layers (0 for models without).'),
      Option('reg_weight', reg_weight, 'float', low=0.0,
             doc="the model's regulariser weight on the batch."),
  )


COMMON = ('name',) + tuple(o.name for o in _common())
CONVENTIONS = ('mmrec', 'elliot')


def _convention() -> Option:
  return Option('convention', 'mmrec', 'str', CONVENTIONS,
                doc="the reference implementation's variant to follow.")


def _train_features() -> Option:
  return Option('train_features', True, 'bool',
                doc='train the item feature tables (MMRec) or keep them '
                'fixed.')


def _knn(default: int = 10) -> Option:
  return Option('knn_k', default, 'int', low=1,
                doc='neighbours per item in the item-item graphs.')


def _mm_layers(default: int = 1) -> Option:
  return Option('num_mm_layers', default, 'int', low=0,
                doc='propagation layers over the item-item graph.')


def _itemknn_common() -> tuple[Option, ...]:
  return (
      Option('neighbors', 40, 'int', low=1, doc='k, neighbours kept per '
             'item.'),
      Option('shrink', 0.0, 'float', low=0.0, doc='similarity shrinkage.'),
      Option('direction', 'candidate', 'str', ('candidate', 'history'),
             doc="whose neighbour lists score (mmjax/models/itemknn.py)."),
      Option('block_size', 256, 'int', low=1,
             doc='items per block of the similarity computation.'),
  )


def _ngcf(aggregation: str) -> tuple[Option, ...]:
  return _common(num_layers=3, reg_weight=0.01) + (
      Option('weight_size', None, 'int', low=1, optional=True,
             doc='W_l, the width of every layer (None: embed_dim).'),
      Option('adjacency', 'elliot', 'str', ('elliot', 'paper'),
             doc="the propagation matrix (Elliot's or the paper's L)."),
      Option('aggregation', aggregation, 'str', ('concat', 'mean'),
             doc='how the layers combine into the final embedding.'),
      Option('node_dropout', 0.1, 'float', low=0.0, below=1.0,
             doc='drop rate of nodes of the graph.'),
      Option('message_dropout', 0.1, 'float', low=0.0, below=1.0,
             doc='drop rate of the messages.'),
      Option('dropout_every', 'epoch', 'str', ('epoch', 'step'),
             doc='how often the node-dropped graph is resampled.'),
      Option('feed_normalized', True, 'bool',
             doc='feed the next layer the L2-normalised output (Elliot).'),
  )


MODELS: dict[str, tuple[Option, ...]] = {
    'bprmf': _common(),
    'lightgcn': _common(num_layers=2),
    'mostpop': _common(),
    'random': _common(),
    'itemknn': _common() + _itemknn_common() + (
        Option('implementation', 'aiolli', 'str', ('aiolli', 'classic'),
               doc='the neighbourhood normalisation.'),
        Option('cooccurrence', 'sparse', 'str', ('sparse', 'propagate'),
               doc='how the item co-occurrence counts are computed.'),
    ),
    'attributeitemknn': _common() + _itemknn_common() + (
        Option('modality', '', 'str',
               doc="the representation's modality ('': the only one)."),
        Option('exclude_self', False, 'bool',
               doc='drop an item from its own neighbours.'),
    ),
    'vbpr': _common(reg_weight=0.01) + (
        _convention(),
        Option('normalize_projection', None, 'bool', optional=True,
               doc='L2-normalise the projected features (None: True for '
               "convention='elliot', else False)."),
    ),
    'freedom': _common(num_layers=2, reg_weight=0.01) + (
        _mm_layers(), _knn(),
        Option('dropout', 0.8, 'float', low=0.0, below=1.0,
               doc='degree-sensitive edge pruning ratio.'),
        Option('prune_every', 'epoch', 'str', ('epoch', 'step'),
               doc='how often the pruned graph is resampled.'),
        Option('mm_weights', {'visual': 0.1, 'textual': 0.9}, 'weights',
               optional=True,
               doc='{modality: weight} of the item-item graphs (None: '
               'uniform).'),
        _train_features(), _convention(),
    ),
    'lattice': _common(num_layers=2, reg_weight=0.01) + (
        _mm_layers(), _knn(),
        Option('lambda_coeff', 0.9, 'float', low=0.0,
               doc='weight of the frozen feature graph in the learnt one.'),
        Option('graph_every', 'epoch', 'str', ('epoch', 'step'),
               doc='how often the learnt item graph is rebuilt (MMRec: '
               'at each epoch\'s first step).'),
        _train_features(), _convention(),
    ),
    'bm3': _common(num_layers=1, reg_weight=0.1) + (
        Option('cl_weight', 2.0, 'float', low=0.0,
               doc='weight of the contrastive losses.'),
        Option('dropout', 0.3, 'float', low=0.0, below=1.0,
               doc='drop rate of the online embeddings.'),
        _train_features(),
    ),
    'mgcn': _common(num_layers=2) + (
        _mm_layers(), _knn(),
        Option('cl_weight', 0.01, 'float', low=0.0,
               doc='weight of the contrastive loss.'),
        Option('temperature', 0.2, 'float', low=0.0,
               doc='temperature of the contrastive loss.'),
        _train_features(),
    ),
    'grcn': _common(num_layers=2, reg_weight=0.001) + (
        Option('content_dim', 64, 'int', low=1,
               doc='width of the projected content.'),
        Option('dropout', 0.0, 'float', low=0.0, below=1.0,
               doc='edge drop rate of the graph.'),
        Option('num_routings', 3, 'int', low=1,
               doc="routing iterations (routing='paper')."),
        Option('routing', 'mmrec', 'str', ('mmrec', 'paper'),
               doc="MMRec's routing or the paper's."),
        Option('weight_mode', 'confid', 'str', ('confid', 'max', 'mean'),
               doc='how the modality confidences weigh the edges.'),
        Option('pruning', True, 'bool', doc='prune negative edge weights.'),
        Option('fusion', 'concat', 'str', ('concat', 'id'),
               doc='the final representation.'),
        Option('full_preference_reg', 'visual', 'str', optional=True,
               doc="the modality whose whole preference table MMRec "
               'regularises (None: none).'),
    ),
    'lgmrec': _common(num_layers=2, reg_weight=1e-6) + (
        _mm_layers(2),
        Option('cf_model', 'lightgcn', 'str', ('lightgcn', 'mf'),
               doc='the collaborative branch.'),
        Option('hyper_num', 4, 'int', low=1, doc='hyperedges.'),
        Option('num_hyper_layers', 1, 'int', low=0,
               doc='hypergraph propagation layers.'),
        Option('keep_rate', 0.5, 'float', low=0.0,
               doc='keep rate of the hypergraph dropout.'),
        Option('alpha', 0.3, 'float', doc='weight of the global embeddings.'),
        Option('cl_weight', 1e-4, 'float', low=0.0,
               doc='weight of the hypergraph contrastive loss.'),
        Option('tau', 0.2, 'float', low=0.0,
               doc='Gumbel-softmax and contrastive temperature.'),
        Option('gumbel', True, 'bool', doc='Gumbel noise in training.'),
        Option('eval_gumbel', True, 'bool',
               doc='Gumbel noise in evaluation too (MMRec).'),
    ),
    'ngcf': _ngcf('concat'),
    'ngcf_m': _ngcf('mean'),
}


def names() -> tuple[str, ...]:
  """The declared models."""
  return tuple(sorted(MODELS))


def declared(name: str) -> dict[str, Option]:
  """The options of model `name`, by key.

  Raises:
    KeyError: an undeclared model, naming the declared ones.
  """
  if name not in MODELS:
    raise KeyError(f'model {name!r} declares no options (the declared '
                   f'models: {", ".join(names())}).')
  return {o.name: o for o in MODELS[name]}


def section(name: str, **overrides: Any) -> ml_collections.ConfigDict:
  """A `model` section of `name` at the declared defaults, then `overrides`.

  Raises:
    KeyError: an undeclared model or option.
  """
  options = declared(name)
  unknown = sorted(set(overrides) - set(options))
  if unknown:
    raise KeyError(unknown_message(name, unknown[0], 'model'))
  values = {'name': name}
  for key, option in options.items():
    values[key] = overrides.get(key, option.default)
  c = ml_collections.ConfigDict(values)
  for key, option in options.items():
    if values[key] is None and option.optional:
      # A typed placeholder keeps `--config.model.<key>=...` working.
      c[key] = ml_collections.config_dict.placeholder(_TYPES[option.kind])
  return c


_TYPES = {'int': int, 'float': float, 'bool': bool, 'str': str,
          'weights': dict}


def complete(model_section: Any) -> ml_collections.ConfigDict:
  """`model_section` with every declared option, the declared default for
  those it lacks (its own values are kept)."""
  name = model_section['name']
  values = {o.name: o.default for o in MODELS[name]} if name in MODELS else {}
  values.update({k: model_section[k] for k in model_section.keys()})
  return ml_collections.ConfigDict(values)


def unknown_message(name: str, key: str, prefix: str) -> str:
  """`<prefix>.<key>` is no option of `name`; its options, closest first."""
  valid = list(COMMON) + [k for k in declared(name) if k not in COMMON]
  close = difflib.get_close_matches(key, valid, n=len(valid), cutoff=0.0)
  return (f'{prefix}.{key}: model {name!r} has no option {key!r}; its '
          f'options, closest first: {", ".join(close)}')


def problem(model_section: Any, prefix: str = 'model') -> str | None:
  """Why a model section cannot run, or None.

  Args:
    model_section: the `model` section (or a `per_model.<name>` one).
    prefix: its dotted place in the config, for the message.

  Returns:
    The first problem: an undeclared model, an option it does not declare
    (its options listed, the closest first), or a value of the wrong type
    or range.
  """
  name = model_section.get('name', None)
  if name not in MODELS:
    return (f'{prefix}.name={name!r}: expected a declared model, one of '
            f'{", ".join(names())}')
  options = declared(name)
  for key in model_section.keys():
    if key == 'name':
      continue
    if key not in options:
      return unknown_message(name, key, prefix)
    value = model_section[key]
    why = options[key].problem(value)
    if why:
      if isinstance(value, ml_collections.ConfigDict):
        value = value.to_dict()  # One line in the message.
      return f'{prefix}.{key}={value!r}: {why}'
  return None
