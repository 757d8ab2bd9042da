"""Building blocks shared by the models: layers, initialisers, dropout.

Each mirrors the PyTorch call the references use (named in its docstring), so
a model written against them initialises and normalises as MMRec does.

Layers are Flax Linen modules (`Linear`, `BiInteraction`, `AttentionScore`),
applied inside the models' functional `loss`/`embed` as
`Module(...).apply({'params': p}, x)` (`apply` below).
Their parameters live in the model's params dict under the names the module
declares ('w', 'b', ...), next to the embedding tables, which stay plain
arrays. A model's `init` draws those parameters itself, with the key of each
tensor that MMRec-matching initialisation has always used (a module's own
`init` derives its keys by hashing names, which would change every model's
initial numbers); `tests/models/layers_test.py` checks that every model's
layer parameters have the layout and shapes of the module's `init`. A new
model may simply call `module.init`.
"""

from __future__ import annotations

from typing import Any, Callable

from flax import linen as nn
import jax
import jax.numpy as jnp

from mmjax import types

# A Flax initialiser: (key, shape, dtype) -> array.
Initializer = Callable[..., types.Array]


def modalities(ctx: Any) -> list[tuple[types.Array, types.Array]]:
  """(features [I, F_m], mask [I]) per modality, in the context's order."""
  names = list(ctx.features)
  if not names:
    raise ValueError('this model needs at least one item feature modality.')
  return [(ctx.features[n], ctx.masks[n]) for n in names]


def xavier_uniform(key: types.PRNGKey, shape: tuple[int, int],
                   dtype: Any = jnp.float32) -> types.Array:
  """torch.nn.init.xavier_uniform_ for a [fan_a, fan_b] matrix."""
  bound = (6.0 / (shape[0] + shape[1])) ** 0.5
  return jax.random.uniform(key, shape, dtype, -bound, bound)


def id_tables(key: types.PRNGKey, num_users: int, num_items: int, dim: int
              ) -> tuple[types.Array, types.Array]:
  """Xavier-uniform user [U, D] and item [I, D] tables (MMRec's ID tables).

  The user table draws from fold_in(key, 0), the item table from
  fold_in(key, 1).
  """
  return (xavier_uniform(jax.random.fold_in(key, 0), (num_users, dim)),
          xavier_uniform(jax.random.fold_in(key, 1), (num_items, dim)))


def mf_tables(key: types.PRNGKey, num_users: int, num_items: int, dim: int
              ) -> dict[str, types.Array]:
  """BPR-MF's and LightGCN's params: `id_tables` as user_emb and item_emb."""
  user, item = id_tables(key, num_users, num_items, dim)
  return {'user_emb': user, 'item_emb': item}


def masked_features(ctx: Any) -> list[types.Array]:
  """Each modality's [I, F_m] with zero rows for the items that lack it.

  The starting value of the trainable feature tables (MMRec's
  `nn.Embedding.from_pretrained(freeze=False)`).
  """
  return [jnp.where(mask[:, None], x, 0.0) for x, mask in modalities(ctx)]


def xavier_normal(key: types.PRNGKey, shape: tuple[int, int],
                  dtype: Any = jnp.float32) -> types.Array:
  """torch.nn.init.xavier_normal_ for a [fan_a, fan_b] matrix."""
  std = (2.0 / (shape[0] + shape[1])) ** 0.5
  return std * jax.random.normal(key, shape, dtype)


def xavier_uniform_row(key: types.PRNGKey, shape: tuple[int],
                       dtype: Any = jnp.float32) -> types.Array:
  """torch's xavier_uniform_ of a [1, out] bias tensor, as [out]: fans 1, out.
  """
  return xavier_uniform(key, (1,) + tuple(shape), dtype)[0]


def torch_uniform(fan_in: int) -> Initializer:
  """torch.nn.Linear's default init of W and b: U(-1/sqrt(in), 1/sqrt(in))."""
  bound = 1.0 / max(fan_in, 1) ** 0.5

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)
  return init


def linear_init(key: types.PRNGKey, in_dim: int, out_dim: int) -> dict:
  """torch.nn.Linear's default init: U(-1/sqrt(in), 1/sqrt(in)), W and b."""
  init = torch_uniform(in_dim)
  k_w, k_b = jax.random.split(key)
  return {'w': init(k_w, (in_dim, out_dim)), 'b': init(k_b, (out_dim,))}


def l2_normalize(x: types.Array, eps: float = 1e-12) -> types.Array:
  """torch.nn.functional.normalize(x, p=2, dim=-1)."""
  sq = jnp.sum(x * x, axis=-1, keepdims=True)
  # sqrt at 0 has an infinite derivative; a zero row (an item without
  # content, zero bias at init) must not turn the gradient into NaN.
  norm = jnp.sqrt(jnp.maximum(sq, eps * eps))
  return x / norm


def dropout(key: types.PRNGKey, x: types.Array, rate: float) -> types.Array:
  """Inverted dropout (torch.nn.functional.dropout): drop with prob `rate`.

  Kept entries are scaled by 1 / (1 - rate); rate 0 returns x unchanged.

  Args:
    key: the draw's key.
    x: any shape.
    rate: the probability of dropping an entry, in [0, 1).

  Returns:
    x's shape and dtype.
  """
  if rate <= 0.0:
    return x
  keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
  return jnp.where(keep, x / (1.0 - rate), 0.0)


# jax 0.10's XLA:CPU runs a weight's gradient x^T g off its fast dot (below);
# jax 0.12's runs it fast, and there the rewrite costs up to 1.25x
# (bench/matmul_grad.py on both). 0.11 is not measured: treated as 0.10.
_SLOW_TRANSPOSED_DOT = jax.__version_info__ < (0, 12)


def _matmul_fwd(x, w):
  return x @ w, (x, w)


def _matmul_bwd(res, g):
  x, w = res  # x [N, F], w [F, D], g [N, D]
  # XLA:CPU's fast (YNNPACK) dot takes the contracted dimension last on the
  # left and first or last on the right; the gradient autodiff writes for w,
  # x^T g, contracts both operands' first dimension and falls back to a
  # generic dot, 1.25-2.5x slower where x is the wider operand (as in a
  # projection of item features): 1.83 vs 0.72 ms at [1006, 512]^T
  # [1006, 64], 1.75 vs 1.40 ms at [7000, 128]^T [7000, 64], one core,
  # jax 0.10.2. (g^T x)^T is the same sum in the fast layout, paying for a
  # transpose of g (XLA:CPU's transposes are slow), so where g is the wider
  # one (an InfoNCE over [B, C] logits) x^T g stays: 5.2 vs 8.9 ms at
  # [2048, 64]^T [2048, 2048]. The barriers keep XLA from folding the
  # transposes back into the dot.
  if x.shape[1] >= g.shape[1]:
    barrier = jax.lax.optimization_barrier
    dw = barrier(barrier(g.T) @ x).T
  else:
    dw = x.T @ g
  # In the operands' dtypes, as autodiff returns them (x @ w promotes).
  return (g @ w.T).astype(x.dtype), dw.astype(w.dtype)


@jax.custom_vjp
def _cpu_matmul(x, w):
  return x @ w


_cpu_matmul.defvjp(_matmul_fwd, _matmul_bwd)


def matmul(x: types.Array, w: types.Array) -> types.Array:
  """x @ w for x [..., F] and w [F, D], with a gradient XLA:CPU runs fast.

  The value and the gradients are x @ w's (up to float32 summation order);
  on CPU with jax before 0.12 the weight's gradient is computed in the
  layout XLA:CPU's fast dot accepts (`_matmul_bwd`), a `jax.custom_vjp`:
  reverse mode only there (`jax.jvp` through it raises). Elsewhere it is the
  plain product.
  """
  if (not _SLOW_TRANSPOSED_DOT or jax.default_backend() != 'cpu'
      or w.ndim != 2):
    return x @ w
  lead = x.shape[:-1]
  y = _cpu_matmul(x.reshape(-1, x.shape[-1]), w)
  return y.reshape(*lead, w.shape[1])


def _pairwise_fwd(a, b):
  return a @ b.T, (a, b)


def _pairwise_bwd(res, g):
  a, b = res  # a [N, D], b [M, D], g [N, M]
  # Autodiff writes b's gradient as g^T a, a dot contracting both operands'
  # first dimension with the large g on the left: XLA:CPU's generic dot, 18 ms
  # against 6 ms for the other two products at N = M = 2048, D = 64 (MGCN's
  # InfoNCE, jax 0.10.2, one core). (a^T g)^T is the same sum with the small
  # operand transposed, which the fast dot takes; the barrier keeps XLA from
  # folding the final transpose back into the slow form. The whole
  # value-and-gradient of an InfoNCE-like loss: 30.6 -> 21.8 ms.
  da = g @ b
  db = jax.lax.optimization_barrier(
      jax.lax.dot_general(a, g, (((0,), (0,)), ((), ())))).T
  return da.astype(a.dtype), db.astype(b.dtype)


@jax.custom_vjp
def _cpu_pairwise_dots(a, b):
  return a @ b.T


_cpu_pairwise_dots.defvjp(_pairwise_fwd, _pairwise_bwd)


def pairwise_dots(a: types.Array, b: types.Array) -> types.Array:
  """a @ b.T for a [N, D] and b [M, D] (every row of a with every row of b).

  As `matmul`: the value and gradients are a @ b.T's (up to float32
  summation order); on CPU with jax before 0.12 b's gradient is computed in
  a layout XLA:CPU's fast dot accepts (`_pairwise_bwd`), reverse mode only.
  """
  if (not _SLOW_TRANSPOSED_DOT or jax.default_backend() != 'cpu'
      or a.ndim != 2 or b.ndim != 2):
    return a @ b.T
  return _cpu_pairwise_dots(a, b)


class Linear(nn.Module):
  """y = x w + b: torch.nn.Linear, with its weight stored as w [F_in, F_out].

  Attributes:
    features: F_out.
    use_bias: whether there is a bias b [F_out].
    kernel_init: w's initialiser; None: torch's default (`torch_uniform`).
    bias_init: b's initialiser; None: torch's default.
  """
  features: int
  use_bias: bool = True
  kernel_init: Initializer | None = None
  bias_init: Initializer | None = None

  @nn.compact
  def __call__(self, x: types.Array) -> types.Array:
    """[..., F_in] -> [..., F_out]."""
    fan_in = x.shape[-1]
    default = torch_uniform(fan_in)
    w = self.param('w', self.kernel_init or default,
                   (fan_in, self.features), jnp.float32)
    y = matmul(x, w)
    if self.use_bias:
      y = y + self.param('b', self.bias_init or default, (self.features,),
                         jnp.float32)
    return y


class BiInteraction(nn.Module):
  """NGCF's layer: LeakyReLU_0.2(first W1 + b1 + inter W2 + b2).

  `first` is the propagated sum with the node itself ((L + I) H) and
  `inter` the element-wise product of the messages with the node (L H * H);
  W1, W2 [F_in, F_out] and b1, b2 [F_out] are xavier-uniform (the biases as
  torch draws a [1, F_out] tensor), as in Elliot's NGCF.

  Attributes:
    features: F_out.
  """
  features: int

  @nn.compact
  def __call__(self, first: types.Array, inter: types.Array) -> types.Array:
    """[N, F_in] twice -> [N, F_out]."""
    shape = (first.shape[-1], self.features)
    w1 = self.param('w1', xavier_uniform, shape, jnp.float32)
    b1 = self.param('b1', xavier_uniform_row, (self.features,), jnp.float32)
    w2 = self.param('w2', xavier_uniform, shape, jnp.float32)
    b2 = self.param('b2', xavier_uniform_row, (self.features,), jnp.float32)
    out = matmul(first, w1) + b1 + matmul(inter, w2) + b2
    return jax.nn.leaky_relu(out, negative_slope=0.2)


class AttentionScore(nn.Module):
  """tanh(x w + b) v: one score per row (MGCN's `query_common`: Linear,
  Tanh, Linear without bias).

  Attributes:
    hidden: the width of w [F, hidden] and b [hidden]; v is [hidden, 1].
  """
  hidden: int

  @nn.compact
  def __call__(self, x: types.Array) -> types.Array:
    """[N, F] -> [N, 1]."""
    fan_in = x.shape[-1]
    w = self.param('w', torch_uniform(fan_in), (fan_in, self.hidden),
                   jnp.float32)
    b = self.param('b', torch_uniform(fan_in), (self.hidden,), jnp.float32)
    v = self.param('v', torch_uniform(self.hidden), (self.hidden, 1),
                   jnp.float32)
    return matmul(jnp.tanh(matmul(x, w) + b), v)


def apply(module: nn.Module, params: types.Params, *args: Any) -> Any:
  """`module.apply` with `params` as its 'params' collection."""
  return module.apply({'params': params}, *args)


def linear(params: dict[str, types.Array], x: types.Array) -> types.Array:
  """`Linear` applied with `params` ({'w' [F, D]} and maybe {'b' [D]})."""
  module = Linear(params['w'].shape[1], use_bias='b' in params)
  return apply(module, params, x)  # [..., F] -> [..., D]
