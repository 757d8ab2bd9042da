r"""Whole runs on 1 device against 8: how far apart do their metrics end?

  python bench/device_parity.py                     # every model, 10 epochs
  python bench/device_parity.py --models=lattice,freedom --epochs=20

Each model's `configs/<model>.py:runlocal` (300 users x 200 items)
is trained twice in one process of 8 virtual CPU devices, on a 1-device mesh
and on the 8-device mesh, same seed, evaluating every epoch. One step's
loss, grads and params agree within 1e-5 across device counts (the tests
check it); this script measures what that rounding does over a whole run.
Per model it prints the largest absolute difference of the epoch-1 training
loss, of every validation and test metric at epoch 1, and of every metric
over all epochs, and whether both runs picked the same best epoch.

The 8 devices are virtual (XLA_FLAGS set below before jax is imported):
this measures numerics, not speed.
"""

import os

os.environ['XLA_FLAGS'] = (
    os.environ.get('XLA_FLAGS', '') +
    ' --xla_force_host_platform_device_count=8').strip()

import datetime  # noqa: E402
import importlib.util  # noqa: E402
import tempfile  # noqa: E402

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
import jax  # noqa: E402

from mmjax.parallel import mesh as mesh_lib  # noqa: E402
from mmjax.train import defaults  # noqa: E402
from mmjax.train import loop  # noqa: E402
from mmjax.utils import cpu  # noqa: E402
from mmjax.utils import writers  # noqa: E402

MODELS = ('bprmf', 'lightgcn', 'ngcf', 'vbpr', 'ngcf_m', 'grcn', 'lattice',
          'bm3', 'freedom', 'mgcn', 'lgmrec', 'mostpop', 'itemknn',
          'attributeitemknn', 'random')
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_MODELS = flags.DEFINE_list('models', list(MODELS), 'Models to compare.')
_EPOCHS = flags.DEFINE_integer('epochs', 10, 'Epochs per run.')
_SEED = flags.DEFINE_integer('seed', 0, 'Run seed.')


def model_config(name: str, epochs: int, seed: int):
  """`configs/<name>.py:runlocal` with every epoch evaluated."""
  path = os.path.join(REPO, 'configs', f'{name}.py')
  spec = importlib.util.spec_from_file_location(f'mmjax_parity_{name}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  try:
    cfg = module.get_config('runlocal')
  except ValueError:  # Closed-form models have no variants.
    cfg = module.get_config(None)
    defaults.tiny_data(cfg)
  cfg.seed = seed
  cfg.train.num_epochs = epochs
  cfg.train.eval_every_epochs = 1
  cfg.train.patience = 0  # Both runs see every epoch.
  cfg.data.root = os.path.join(tempfile.gettempdir(), 'mmjax_parity_data')
  return cfg


def run(cfg, workdir: str, devices: int) -> list[dict]:
  """The run's metrics.jsonl lines (one per epoch and evaluation)."""
  ds, data_dir = loop.load_dataset(cfg)
  loop.train_and_evaluate_one(cfg, workdir, ds, data_dir,
                              mesh_lib.make_mesh(devices))
  return writers.read_jsonl(os.path.join(workdir, writers.METRICS))


def by_epoch(lines: list[dict]) -> dict[int, dict[str, float]]:
  out = {}
  for line in lines:
    if line.get('final'):
      continue
    values = {k: v for k, v in line.items()
              if isinstance(v, (int, float)) and
              k.split('/')[0] in ('val', 'test', 'train')}
    out.setdefault(int(line['epoch']), {}).update(values)
  return out


def compare(one: list[dict], eight: list[dict]) -> dict[str, object]:
  a, b = by_epoch(one), by_epoch(eight)
  assert a.keys() == b.keys(), (sorted(a), sorted(b))

  def gap(epochs, prefixes):
    diffs = [abs(a[e][k] - b[e][k]) for e in epochs for k in a[e]
             if k.split('/')[0] in prefixes and k in b[e]]
    return max(diffs, default=float('nan'))

  first = min(a)
  best = [next(x for x in lines if x.get('final'))['best_epoch']
          for lines in (one, eight)]
  return {'loss@1': gap([first], ('train',)) if first else float('nan'),
          'metrics@1': gap([first], ('val', 'test')),
          'metrics_any': gap(sorted(a), ('val', 'test')),
          'best_epoch': f'{best[0]}/{best[1]}'}


def main(argv):
  del argv
  assert jax.device_count() == 8, jax.devices()
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    for name in _MODELS.value:
      cfg = model_config(name, _EPOCHS.value, _SEED.value)
      lines = [run(cfg, os.path.join(tmp, f'{name}_{n}'), n) for n in (1, 8)]
      rows.append((name, compare(*lines)))
      print(f'done {name}: {rows[-1][1]}', flush=True)
  print(f'\n1 vs 8 devices, {_EPOCHS.value} epochs, seed {_SEED.value}; '
        f'{cpu.name()}; JAX {jax.__version__}; '
        f'{datetime.date.today().isoformat()}')
  print('max |difference|: loss@1 = epoch-1 training loss; metrics@1 = '
        'every val/test metric at the first evaluation; metrics_any = '
        'over all epochs')
  head = ('model', 'loss@1', 'metrics@1', 'metrics_any', 'best epoch 1/8')
  print('| ' + ' | '.join(head) + ' |')
  print('|' + '---|' * len(head))
  for name, r in rows:
    print(f'| {name} | {r["loss@1"]:.1e} | {r["metrics@1"]:.1e} | '
          f'{r["metrics_any"]:.1e} | {r["best_epoch"]} |')


if __name__ == '__main__':
  app.run(main)
