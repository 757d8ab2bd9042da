"""Checkpoints: every orbax call of the project lives here (orbax V0 API).

Two `ocp.CheckpointManager`s under `<workdir>/checkpoints/`:
  latest/  the train state and the loop state every `ckpt.every_epochs`
           epochs and at the end; keeps `ckpt.keep`. Resume reads it.
  best/    the train state at the best validation point, kept by
           `best_fn = metrics[eval.select_metric]` (max); one kept.
Steps are epochs (completed). Saving is synchronous: the next epoch donates
the state's buffers, which an asynchronous save might still be reading.
Keeping every call behind this class makes the later move to orbax V1 a
one-file change.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp


class Checkpointer:
  """Latest and best checkpoints of one run (see the module doc)."""

  def __init__(self, workdir: str, keep: int, select_metric: str):
    root = os.path.join(os.path.abspath(workdir), 'checkpoints')
    self.select_metric = select_metric
    self.latest = ocp.CheckpointManager(
        os.path.join(root, 'latest'),
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max(int(keep), 1), enable_async_checkpointing=False,
            create=True),
        item_names=('state', 'loop'))
    self.best = ocp.CheckpointManager(
        os.path.join(root, 'best'),
        options=ocp.CheckpointManagerOptions(
            max_to_keep=1, best_fn=lambda m: m[select_metric],
            best_mode='max', enable_async_checkpointing=False, create=True),
        item_names=('state',))

  def latest_step(self) -> int | None:
    return self.latest.latest_step()

  def save(self, epoch: int, state: Any, loop_state: dict[str, Any]) -> None:
    """Saves the train state and the (JSON) loop state after `epoch`."""
    self.latest.save(
        int(epoch),
        args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                loop=ocp.args.JsonSave(loop_state)),
        force=True)
    self.latest.wait_until_finished()

  def restore(self, abstract_state: Any, epoch: int | None = None
              ) -> tuple[Any, dict[str, Any]]:
    """(train state, loop state) of `epoch` (default: the latest).

    Args:
      abstract_state: `jax.ShapeDtypeStruct` pytree with shardings (from
        `jax.eval_shape`), the target structure.
      epoch: which step; None for the latest.
    """
    epoch = self.latest_step() if epoch is None else epoch
    out = self.latest.restore(
        epoch,
        args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state),
            loop=ocp.args.JsonRestore()))
    return out['state'], dict(out['loop'])

  def save_best(self, epoch: int, state: Any, metrics: dict[str, float]
                ) -> None:
    """Offers the state at `epoch` with its validation metrics."""
    self.best.save(int(epoch), args=ocp.args.Composite(
        state=ocp.args.StandardSave(state)),
        metrics={self.select_metric: float(metrics[self.select_metric])},
        force=True)
    self.best.wait_until_finished()

  def best_step(self) -> int | None:
    return self.best.best_step()

  def restore_best(self, abstract_state: Any) -> Any:
    step = self.best.best_step()
    if step is None:
      raise FileNotFoundError('no best checkpoint saved yet.')
    return self.best.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state)))['state']

  def drop_after(self, epoch: int) -> None:
    """Deletes checkpoints written after `epoch` (a killed run's leftovers)."""
    for manager in (self.latest, self.best):
      for step in manager.all_steps():
        if step > epoch:
          manager.delete(step)
      manager.reload()

  def close(self) -> None:
    self.latest.close()
    self.best.close()


def abstract(tree: Any, sharding: jax.sharding.Sharding) -> Any:
  """ShapeDtypeStructs of `tree` (e.g. from `jax.eval_shape`) on `sharding`."""
  return jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
      tree)
