"""Key derivation: one root key per run, streams by name, steps by counter.

Keys derive by `fold_in`, never by chained splitting across steps, so the key
of epoch e (or step s) is a pure function of (seed, stream, e): a resumed run
regenerates exactly the keys an unbroken run uses. Keys never go into
checkpoints.
"""

import jax

STREAM_INIT = 1   # Parameter initialisation.
STREAM_DATA = 2   # Epoch order of the positives: fold_in(data, epoch).
STREAM_TRAIN = 3  # Per-step negatives and model randomness: fold_in(., step).
STREAM_EVAL = 4   # Evaluation tie-breaks: fold_in(eval, epoch).


def root_key(seed: int) -> jax.Array:
  """The run's root key (typed, threefry)."""
  return jax.random.key(int(seed))


def stream(seed: int, name: int) -> jax.Array:
  """The key of one stream (STREAM_*) of a run."""
  return jax.random.fold_in(root_key(seed), name)
