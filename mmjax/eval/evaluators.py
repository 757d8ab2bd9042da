r"""Evaluators named in the config (`eval.evaluators`), as big_vision's.

Why: a study asks more of a run than its validation and test ranking: how
well it ranks the items nobody trained on (the leverage study's cold-item
diagnostic, which was a bench script reaching into the Trainer), and how it
does for users with short and long training histories. Each such question is
an evaluator kind, asked for by name in the config:

  config.eval.evaluators = ml_collections.ConfigDict({
      'cold': {'kind': 'cold_items_only', 'split': 'test'},
      'groups': {'kind': 'user_groups', 'split': 'test',
                 'groups': (0, 6, float('inf'))},
  })

'val' and 'test' (the full ranking of the validation and test splits with
the `eval` section's settings) always run, and model selection reads only
'val/' + `eval.select_metric`; the section adds evaluators beside them. Their
metrics are '<name>/<metric>' in metrics.jsonl and results.json ('cold/
recall@20', 'groups/recall@20/group=0-6'). With the section empty (the
default) a run computes, names and writes exactly what it did before.

Kinds (keys beside `kind`, `split` ('val' or 'test', default 'test') and
`every`):
  ranking: the full-ranking evaluator (`ranking.Evaluator`) of the split; may
    set `topk`, `user_groups` and `mask_valid_at_test` apart from `eval`.
  cold_items_only: ranks only the cold items (those without a training
    interaction): warm items are removed from the candidates and only the
    held-out cold items are relevant; metrics @K over the users with at
    least one, plus 'warm_above_median' (the median over those users of the
    number of warm items scored strictly above the user's best cold
    candidate: how far the model is from lifting cold items into a full
    ranking) and 'random_recall@K' (the expected Recall@K of a random order
    of the user's cold candidates, min(K, n) / n for n candidates, the
    chance level). May set `topk` and `mask_valid_at_test`.
  user_groups: the split's per-user metrics averaged per group of users by
    training-history length, `groups` edges [lo, hi) (default
    `eval.user_groups`): e.g. (0, 6, inf) gives 'recall@20/group=0-6' for
    cold users (at most 5 training interactions) and 'recall@20/group=6-inf'
    for the warm ones. It reuses the split's ranking, so it costs no scoring.

`every`: 'eval' (default) runs the evaluator at every evaluation; 'best'
only at evaluations that reach a new best validation metric (and at the fit
of a closed-form model), so that results.json always holds its value at the
selected epoch while the costlier diagnostics skip the other epochs.

Keys: an evaluator of split S breaks ties with S's key (`Trainer.eval_key`),
so an extra `ranking` of 'test' with the `eval` settings reproduces 'test'
exactly, and re-evaluating a restored run (mmjax.run.evaluate_checkpoint)
gives back its recorded values. Per-user vectors of evaluators that rank
(ranking, cold_items_only) go to per_user_<name>.npz at the best epoch.

This module's parsing (`specs`) imports no JAX beyond `ranking`; the config
check (mmjax/train/validate.py) keeps a copy of KINDS and the option names.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import jax
import ml_collections
import numpy as np

from mmjax.data import dataset as dataset_lib
from mmjax.eval import ranking

SPLITS = {'val': dataset_lib.VALID, 'test': dataset_lib.TEST}
KINDS = ('ranking', 'cold_items_only', 'user_groups')
EVERY = ('eval', 'best')
COMMON = ('kind', 'split', 'every')
# Options of each kind beside COMMON.
OPTIONS = {
    'ranking': ('topk', 'user_groups', 'mask_valid_at_test'),
    'cold_items_only': ('topk', 'mask_valid_at_test'),
    'user_groups': ('groups',),
}
# Names an extra evaluator may not take: the built-in evaluators and the
# other prefixes of metrics.jsonl.
RESERVED = ('val', 'test', 'train', 'perf', 'best', 'final', 'epoch', 'step')


@dataclasses.dataclass(frozen=True)
class Spec:
  """One evaluator of `eval.evaluators`.

  Attributes:
    name: its metric prefix.
    kind: one of KINDS.
    split: 'val' or 'test'.
    every: 'eval' or 'best'.
    options: the kind's options given (OPTIONS).
  """

  name: str
  kind: str
  split: str = 'test'
  every: str = 'eval'
  options: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def _as_dict(value: Any) -> dict[str, Any]:
  if isinstance(value, ml_collections.ConfigDict):
    return value.to_dict()
  return dict(value)


def specs(section: Mapping[str, Any] | None) -> dict[str, Spec]:
  """The evaluators of an `eval.evaluators` section, in name order.

  Args:
    section: name -> {kind, split, every, options...}; None or empty: none.

  Returns:
    name -> Spec, sorted by name (a run's config.json sorts its keys, so a
    restored run finds them in the same order).

  Raises:
    ValueError: an unknown kind, split, `every` or option, or a reserved
      name. mmjax/train/validate.py reports the same earlier, by key.
  """
  out = {}
  for name in sorted(_as_dict(section or {})):
    entry = _as_dict(section[name])
    if name in RESERVED or not name.isidentifier():
      raise ValueError(f'eval.evaluators.{name}: the name must be an '
                       f'identifier other than {", ".join(RESERVED)}.')
    kind = entry.get('kind')
    if kind not in KINDS:
      raise ValueError(f'eval.evaluators.{name}.kind={kind!r}: expected one '
                       f'of {", ".join(KINDS)}.')
    unknown = sorted(set(entry) - set(COMMON) - set(OPTIONS[kind]))
    if unknown:
      raise ValueError(f'eval.evaluators.{name}: unknown keys {unknown} for '
                       f'kind {kind!r} (it takes {OPTIONS[kind]}).')
    split = entry.get('split', 'test')
    if split not in SPLITS:
      raise ValueError(f'eval.evaluators.{name}.split={split!r}: expected '
                       'val or test.')
    every = entry.get('every', 'eval')
    if every not in EVERY:
      raise ValueError(f'eval.evaluators.{name}.every={every!r}: expected '
                       'eval or best.')
    options = {k: v for k, v in entry.items() if k not in COMMON}
    out[name] = Spec(name, kind, split, every, options)
  return out


def _eval_section(cfg_eval: Any, **changes: Any) -> ml_collections.ConfigDict:
  """A copy of the `eval` section with `changes` (None values ignored)."""
  out = _as_dict(cfg_eval)
  out.update({k: tuple(v) if isinstance(v, list) else v
              for k, v in changes.items() if v is not None})
  return ml_collections.ConfigDict(out)


def cold_only_data(data: ranking.EvalData) -> ranking.EvalData:
  """`data` with only the held-out cold items relevant, and their users.

  Args:
    data: a split's EvalData.

  Returns:
    The EvalData whose relevant items are the held-out items without a
    training interaction, over the users with at least one such item.
  """
  rows = np.repeat(np.arange(data.num_users), np.diff(data.held_indptr))
  keep = data.cold_items[data.held_indices]
  indptr = np.zeros_like(data.held_indptr)
  np.cumsum(np.bincount(rows[keep], minlength=data.num_users),
            out=indptr[1:])
  graded = None if data.held_graded is None else data.held_graded[keep]
  return dataclasses.replace(
      data, held_indptr=indptr, held_indices=data.held_indices[keep],
      held_graded=graded,
      users=np.flatnonzero(np.diff(indptr) > 0).astype(np.int32))


class RankingEval:
  """Kind 'ranking': a full ranking of the split (see the module doc)."""

  needs_split_result = False
  saves_per_user = True

  def __init__(self, spec: Spec, data_of: Callable[[str, bool], Any],
               cfg_eval: Any, mesh: Any, score_fn: ranking.ScoreFn):
    o = spec.options
    cfg = _eval_section(cfg_eval, topk=o.get('topk'),
                        user_groups=o.get('user_groups'),
                        mask_valid_at_test=o.get('mask_valid_at_test'))
    self.spec = spec
    self.evaluator = ranking.Evaluator(
        data_of(spec.split, bool(cfg.mask_valid_at_test)), cfg, mesh,
        score_fn)

  def __call__(self, params: Any, ctx: Any, key: jax.Array,
               split_result: ranking.EvalResult | None = None
               ) -> ranking.EvalResult:
    del split_result
    return self.evaluator(params, ctx, key)


class ColdItemsOnlyEval:
  """Kind 'cold_items_only': ranks the cold items alone (module doc)."""

  needs_split_result = False
  saves_per_user = True

  def __init__(self, spec: Spec, data_of: Callable[[str, bool], Any],
               cfg_eval: Any, mesh: Any, score_fn: ranking.ScoreFn):
    o = spec.options
    cfg = _eval_section(cfg_eval, topk=o.get('topk'),
                        mask_valid_at_test=o.get('mask_valid_at_test'),
                        user_groups=())
    self.spec = spec
    data = data_of(spec.split, bool(cfg.mask_valid_at_test))
    if not data.cold_items.any():
      raise ValueError(f'eval.evaluators.{spec.name}: the split has no cold '
                       'item (no item lacks a training interaction).')
    self.data = cold_only_data(data)
    self.evaluator = ranking.Evaluator(self.data, cfg, mesh, score_fn,
                                       exclude_items=~data.cold_items)
    # Each user's cold candidates: the cold items not masked for them.
    d = self.data
    rows = np.repeat(np.arange(d.num_users), np.diff(d.mask_indptr))
    masked_cold = np.bincount(rows[d.cold_items[d.mask_indices]],
                              minlength=d.num_users)
    self.num_candidates = int(d.cold_items.sum()) - masked_cold  # [U]

  def __call__(self, params: Any, ctx: Any, key: jax.Array,
               split_result: ranking.EvalResult | None = None
               ) -> ranking.EvalResult:
    del split_result
    result = self.evaluator(params, ctx, key)
    summary = {k: v for k, v in result.summary.items()
               if not k.endswith(ranking.COLD)}
    if len(result.users):
      above = result.per_user.pop('excluded_above')
      result.per_user['warm_above'] = above
      del summary['excluded_above']
      summary['warm_above_median'] = float(np.median(above))
      n = self.num_candidates[result.users].astype(np.float64)
      for k in self.evaluator.ks:
        summary[f'random_recall@{k}'] = float(np.mean(np.minimum(k, n) / n))
    result.per_user = {k: v for k, v in result.per_user.items()
                       if not k.endswith(ranking.COLD)}
    result.summary = summary
    return result


class UserGroupsEval:
  """Kind 'user_groups': the split's metrics per history length group."""

  needs_split_result = True
  saves_per_user = False

  def __init__(self, spec: Spec, data_of: Callable[[str, bool], Any],
               cfg_eval: Any, mesh: Any, score_fn: ranking.ScoreFn):
    del mesh, score_fn
    groups = spec.options.get('groups') or cfg_eval.get('user_groups')
    groups = tuple(float(g) for g in groups or ())
    if len(groups) < 2 or any(a >= b for a, b in zip(groups, groups[1:])):
      raise ValueError(f'eval.evaluators.{spec.name}.groups={groups}: '
                       'expected at least two increasing edges (or set '
                       'eval.user_groups).')
    self.spec = spec
    self.groups = groups
    self.data = data_of(spec.split,
                        bool(cfg_eval.get('mask_valid_at_test', False)))

  def __call__(self, params: Any, ctx: Any, key: jax.Array,
               split_result: ranking.EvalResult | None = None
               ) -> ranking.EvalResult:
    """Groups `split_result` (the split's ranking with the same key)."""
    del params, ctx, key
    if split_result is None:
      raise ValueError(f'{self.spec.name}: needs the {self.spec.split} '
                       'result.')
    counts = self.data.user_train_counts[split_result.users]
    summary = ranking.group_means(split_result.per_user, counts, self.groups)
    return ranking.EvalResult({}, split_result.users, summary,
                              split_result.top_items)


KIND_CLASSES = {'ranking': RankingEval, 'cold_items_only': ColdItemsOnlyEval,
                'user_groups': UserGroupsEval}


def build(spec_map: Mapping[str, Spec], data_of: Callable[[str, bool], Any],
          cfg_eval: Any, mesh: Any, score_fn: ranking.ScoreFn
          ) -> dict[str, Any]:
  """The evaluator of each spec.

  Args:
    spec_map: from `specs`.
    data_of: (split 'val'|'test', mask_valid) -> EvalData (cached by the
      caller, so evaluators of one split share it).
    cfg_eval: the `eval` section.
    mesh: the mesh, or None.
    score_fn: as `ranking.Evaluator`'s.

  Returns:
    name -> evaluator, callable as `(params, ctx, key, split_result)` ->
    EvalResult, with attributes `spec`, `needs_split_result` (it reads the
    split's ranking result instead of ranking again) and `saves_per_user`.
  """
  return {name: KIND_CLASSES[s.kind](s, data_of, cfg_eval, mesh, score_fn)
          for name, s in spec_map.items()}

