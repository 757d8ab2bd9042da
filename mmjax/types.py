"""Shared type aliases and the dimension legend used in every docstring.

Dimensions:
  U: users.            I: items.            N = U + I: graph nodes.
  E: edges.            B: batch size.       D: embedding dimension.
  F_m: raw feature dimension of modality m. K: top-k cut-off.
  n: interactions.
"""

from typing import Any

import jax
import numpy as np

Array = jax.Array
PRNGKey = jax.Array
Params = Any  # A pytree of arrays.
NDArray = np.ndarray
