"""`jax.random.permutation(key, n)` with its sorts on the compiled kernel.

Why: JAX shuffles by sorting: `_shuffle` (jax/_src/random, the same in JAX
0.10 and 0.12) draws, in each of R = ceil(3 ln(max(1, n)) / ln(2^32 - 1))
rounds, `key, subkey = split(key)` and 32 random bits per element
(`bits(subkey, (n,), uint32)`), then reorders the range by them with
`lax.sort_key_val`, which is stable. On XLA:CPU that sort is a comparison
sort costing about 8.7 ms per round at n = 43,854 on one thread (JAX 0.10;
2.5 ms on JAX 0.12); R = 2 from n = 1,626 to about 2.6 million, so the
epoch order of ML-100K's training interactions cost 17 ms, a fifth of a
LightGCN epoch. `permutation` here does the same rounds with the same bits
(drawn by XLA) and sorts on `csrc/sort.cc`, a stable radix sort (0.2 ms per
round there): a stable sort's result is defined by the keys alone, so the
permutation is bitwise the one JAX returns. The whole epoch order, 1
thread, n = 43,854 / 122,723: 17.7 / 60 ms before, 1.2 / 3.0 ms with the
kernel (JAX 0.10; JAX 0.12: 5.1 / 19.7 ms before, 0.9 / 2.7 ms after).

`in_use()` says whether the kernel serves here, by the propagation kernel's
settings (`mmjax.graph.kernel.configure`, MMJAX_KERNEL), read at trace time,
as `topk.in_use` does: where it does not (another backend, mode 'reference',
no compiler), `permutation` is `jax.random.permutation` itself.

Meshes: the shuffle is one small replicated computation (the epoch program
is jitted with replicated inputs), so the kernel call is left to XLA's
partitioner, which runs it whole on each device like the sort it replaces;
no `shard_map` is needed.
"""

from __future__ import annotations

import operator

import jax
import jax.numpy as jnp
import numpy as np

from mmjax.graph import kernel


def in_use() -> bool:
  """Whether `permutation` sorts on the kernel here (CPU backend, kernel
  loaded and allowed).

  Raises:
    RuntimeError: mode 'kernel' and the kernel cannot serve, with why.
  """
  return kernel.available()


def num_rounds(n: int) -> int:
  """Sorting rounds `jax.random.permutation` makes for n elements (its
  `_shuffle`: exponent 3, keys of 32 bits)."""
  uint32max = np.iinfo(np.uint32).max
  return int(np.ceil(3 * np.log(max(1, n)) / np.log(uint32max)))


def sort_key_val(keys: jax.Array, values: jax.Array) -> jax.Array:
  """`values` stably sorted by `keys`: `lax.sort_key_val(keys, values)[1]`.

  On the kernel where it serves (`in_use`), else with `lax.sort_key_val`.

  Args:
    keys: uint32 [n].
    values: int32 [n].

  Returns:
    int32 [n].
  """
  keys = jnp.asarray(keys, jnp.uint32)
  values = jnp.asarray(values, jnp.int32)
  if keys.ndim != 1 or keys.shape != values.shape:
    raise ValueError(f'sort_key_val: keys {keys.shape} and values '
                     f'{values.shape} must be one [n] each.')
  if not in_use():
    return jax.lax.sort_key_val(keys, values)[1]
  return jax.ffi.ffi_call(
      'mmjax_sort_key_val', jax.ShapeDtypeStruct(values.shape, jnp.int32),
      vmap_method='sequential',
  )(keys, values)


def _counter_based(key: jax.Array) -> bool:
  """Whether `key`'s bits are counter-based: element i of
  `bits(key, (m,))` depends on the key and i alone, so the first n of m > n
  draws are the n draws. True for threefry2x32 (JAX's default) with
  `jax_threefry_partitionable` (the default since JAX 0.5): each element is
  threefry2x32 of its index."""
  return (str(jax.random.key_impl(key)) == 'threefry2x32'
          and bool(jax.config.jax_threefry_partitionable))


def _bits(key: jax.Array, n: int) -> jax.Array:
  """`jax.random.bits(key, (n,), uint32)`, bitwise.

  Why not that call itself: XLA:CPU draws an odd count of threefry bits
  several times slower than an even one (1 thread: 4.6 ms at n = 122,723,
  0.8 ms at 122,724), so with counter-based bits an odd n draws n + 1 and
  drops the last.
  """
  if n % 2 and _counter_based(key):
    return jax.random.bits(key, (n + 1,), jnp.uint32)[:n]
  return jax.random.bits(key, (n,), jnp.uint32)


def permutation(key: jax.Array, n: int) -> jax.Array:
  """Exactly `jax.random.permutation(key, n)` (see the module docstring).

  Args:
    key: a PRNG key (typed, or a raw uint32 one), as `jax.random` takes it.
    n: the number of elements, static.

  Returns:
    [n] of JAX's default int dtype (int32 unless x64 is on), as
    `jax.random.permutation` returns.

  Raises:
    RuntimeError: kernel mode 'kernel' and the kernel cannot serve.
  """
  n = operator.index(n)
  if not in_use():  # Loads the kernel when it can.
    return jax.random.permutation(key, n)
  if not 0 <= n < 2**31:
    raise ValueError(f'permutation: n={n} outside [0, 2^31).')
  x = jnp.arange(n, dtype=jnp.int32)
  for _ in range(num_rounds(n)):
    key, subkey = jax.random.split(key)
    x = sort_key_val(_bits(subkey, n), x)
  return x.astype(jax.dtypes.canonicalize_dtype(jnp.int_))
