"""Recommenders, one module per model, with a uniform functional interface.

Every model module exports (see STYLE.md, "Pure functions, modules and state"):
  init(key, ctx, cfg) -> params
  loss(params, batch, ctx, key, cfg) -> (loss [], aux {name: []})
  embed(params, ctx, cfg) -> (user_emb [U, D], item_emb [I, D])
and optionally
  score(params, ctx, users [U_b], cfg) -> [U_b, I]   (default: dot of embed)
  fit(key, ctx, cfg) -> params  (closed form; the training loop is skipped;
                                 `key` is the one `init` would get)
  prepare(ctx, cfg) -> pytree   (frozen precomputed data, put in
                                 ctx.extras[cfg.name] once per run)
  pre_epoch(ctx, key, cfg) -> ctx
                                (called inside the compiled epoch before
                                 its steps; the returned context, e.g. with
                                 a graph resampled once per epoch in its
                                 extras, is what the epoch's steps see)
  epoch_cache(params, ctx, cfg) -> pytree or None
                                (per-epoch state computed from the
                                 parameters at the epoch's start, e.g.
                                 LATTICE's learnt item graph, MMRec's
                                 `build_item_graph`. The epoch's first step
                                 computes it inside its loss, so that
                                 step's gradient flows through it; the
                                 epoch's later steps reuse that value,
                                 detached (`stop_gradient`). The loss reads
                                 it with `epoch_cached(ctx, cfg)`, which is
                                 None outside the loop (evaluation, a bare
                                 context): the loss then builds it itself,
                                 with gradient. None from `epoch_cache`
                                 (decided from `cfg` alone, e.g. an option
                                 asking for a rebuild every step): no
                                 cache. Not part of the train state: a run
                                 resumed at an epoch boundary rebuilds it
                                 from the same parameters)
  USES_NEGATIVES = False        (the batch then has no 'neg' entry)

`cfg` is the model's own section (the config's `model`, with every option
the model declares in options.py), not the whole config: a model needs
nothing else, and what it would (a key) is passed explicitly.

A BPR batch is {'users': int32 [B], 'pos': int32 [B], 'neg': int32 [B, k],
'mask': float32 [B]} with mask 0 on padded rows. `ctx` is a
`mmjax.models.context.ModelContext`.

Shared pieces, one home each (a model imports these, never another model
for a helper):
  layers.py    Flax Linen layers (Linear, BiInteraction, AttentionScore),
               torch-matching initialisers, dropout (a drop rate), feature
               access
  losses.py    BPR variants and the regularisers, on padded batches
  context.py   ModelContext, make_context, and `prepared` (a model's
               `prepare` output, from ctx.extras or computed)
  controls.py  feature transforms and the null controls (shuffle, noise)
  options.py   each model's options (names, types, defaults, choices),
               declared once and imported without JAX: the configs start
               from `options.section(name)`, validate refuses undeclared or
               ill-typed options, and the loop hands a model a section with
               every declared option (`cfg.<option>`, no defaults in
               the model). A new model adds its table there.
  mmjax/graph/propagation.py  multi-layer propagation (LightGCN's mean)
A variant imports the model it extends, and only that: NGCF-M (NGCF's graph
branch plus content), AttributeItemKNN (ItemKNN on item attributes).
"""

from __future__ import annotations

import dataclasses
import importlib
import types as pytypes
from typing import Any


def get_model(name: str) -> pytypes.ModuleType:
  """The model module `mmjax.models.<name>`.

  Raises:
    ValueError: no such model, or the module lacks the interface.
  """
  if not name or not name.isidentifier():
    raise ValueError(f'model.name {name!r} is not a module name.')
  try:
    module = importlib.import_module(f'mmjax.models.{name}')
  except ModuleNotFoundError as e:
    if e.name != f'mmjax.models.{name}':
      raise
    raise ValueError(f'unknown model {name!r}: no module mmjax/models/'
                     f'{name}.py.') from e
  if not hasattr(module, 'fit'):
    missing = [f for f in ('init', 'loss', 'embed') if not hasattr(module, f)]
    if missing:
      raise ValueError(f'mmjax.models.{name} lacks {missing} (and has no '
                       'fit).')
  return module


def uses_negatives(module: pytypes.ModuleType) -> bool:
  return bool(getattr(module, 'USES_NEGATIVES', True))


def epoch_cache_key(name: str) -> str:
  """The `ctx.extras` key of model `name`'s per-epoch cache."""
  return f'{name}/epoch_cache'


def with_epoch_cache(ctx: Any, cfg: Any, cache: Any) -> Any:
  """`ctx` with the model's per-epoch cache in its extras (the loop's)."""
  extras = {**(ctx.extras or {}), epoch_cache_key(cfg.name): cache}
  return dataclasses.replace(ctx, extras=extras)


def epoch_cached(ctx: Any, cfg: Any) -> Any:
  """The per-epoch cache the loop put in `ctx`, or None (build it now)."""
  return (getattr(ctx, 'extras', None) or {}).get(epoch_cache_key(cfg.name))
