r"""A weight's gradient: autodiff's x^T g against `layers.matmul`'s.

    taskset -c 0 .venv/bin/python bench/matmul_grad.py --repeats 40

For each shape, the gradient of `vdot(x @ w, g)` with respect to w (x [N, F],
g [N, D]), as autodiff writes it for `x @ w` and as `mmjax.models.layers.matmul`
computes it (`(g^T x)^T` behind optimisation barriers where x is the wider
operand, XLA:CPU's fast dot layout; autodiff's own product otherwise). Each
program is jitted with x, w and g as arguments and timed by
`propagate.measure` (the median of `--repeats` calls after two warm-up calls;
`--repeats` and `--clock` are bench/propagate.py's flags). Both results are compared (max abs
difference, float32 summation order only). Prints one Markdown table headed by
the machine, the date, the JAX version and the load average.
"""

from __future__ import annotations

import datetime
import os

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np
import propagate  # bench/propagate.py, beside this script: its `measure`

from mmjax.models import layers
from mmjax.utils import cpu

_SHAPES = flags.DEFINE_list(
    'shapes',
    ['1006x512x64', '1006x384x64', '7000x128x64', '1944x64x64',
     '2048x64x2048'],
    'N x F x D per case: x [N, F], w [F, D].')


def _weight_grad(product):
  def grad(x, w, g):
    return jax.vjp(lambda w: product(x, w), w)[1](g)[0]
  return jax.jit(grad)


def main(argv):
  del argv
  rng = np.random.default_rng(0)
  plain = _weight_grad(lambda x, w: x @ w)
  ours = _weight_grad(layers.matmul)
  print(f'# weight gradient  {datetime.datetime.now():%Y-%m-%d %H:%M}  '
        f'{cpu.name()}, {os.cpu_count()} cores, XLA cores '
        f'{len(os.sched_getaffinity(0))}, JAX {jax.__version__} '
        f'{jax.devices()[0].platform}  load {os.getloadavg()[0]:.1f}')
  print('| x [N, F], g [N, D] | autodiff x^T g ms | layers.matmul ms | '
        'ratio | max abs diff |')
  print('|---|---|---|---|---|')
  for shape in _SHAPES.value:
    n, f, d = (int(v) for v in shape.split('x'))
    x, w, g = (jnp.asarray(rng.standard_normal(s), jnp.float32)
               for s in ((n, f), (f, d), (n, d)))
    diff = float(jnp.max(jnp.abs(plain(x, w, g) - ours(x, w, g))))
    t_plain, t_ours = (
        propagate.measure(lambda fn=fn: jax.block_until_ready(fn(x, w, g)),
                          flags.FLAGS.repeats) for fn in (plain, ours))
    print(f'| [{n}, {f}], [{n}, {d}] | {t_plain:.3f} | {t_ours:.3f} | '
          f'{t_plain / t_ours:.2f}x | {diff:.1e} |')


if __name__ == '__main__':
  app.run(main)
