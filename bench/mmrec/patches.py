"""Runtime shims that let MMRec (enoche/MMRec) run on CPU with current libs.

MMRec pins Python 3.7, numpy 1.21, scipy 1.7 and torch 1.11 and assumes a
GPU in a few places. Nothing in MMRec's files is edited: `install()`
patches the libraries in this process before MMRec's modules are imported,
and `enter(mmrec_dir, run_dir)` puts MMRec's `src/` on sys.path and makes a
run folder with its `configs/` (MMRec reads them from the working
directory). The shims, each needed by at least one model we run:

1. numpy: `np.float`, `np.int`, `np.bool` (removed in numpy 1.24) are
   restored as the builtins they aliased (utils/metrics.py uses np.float).
2. scipy: `dok_matrix._update` (gone since scipy 1.12, when dok stopped
   being a dict subclass) is restored as an update of the dok's own dict
   (LightGCN, FREEDOM, BM3 build their adjacency with it).
3. `torch.Tensor.cuda()` returns the tensor itself when CUDA is absent
   (LATTICE and MGCN move their item graphs with `.cuda()`, GRCN too).
4. `lmdb` and `torchvision` (only used by MMRec's raw-image pipeline,
   which precomputed features never reach) are stub modules, so that
   utils/dataset.py and utils/data_utils.py import.
5. `torch_scatter` (a compiled extension; MGCN's sparse kNN graph calls its
   `scatter_add` in utils/utils.py) is a stub whose `scatter_add` is
   torch's own `index_add` (the same sums).
6. `use_gpu: False` in the config dict (run_mmrec.py): MMRec's configurator
   then picks `torch.device('cpu')`.
"""

from __future__ import annotations

import builtins
import importlib.util
import os
import shutil
import sys
import types

SHIMS = (
    'numpy: np.float/np.int/np.bool restored as the builtins',
    'scipy: dok_matrix._update restored (dict update of the dok entries)',
    'torch: Tensor.cuda() is the identity without CUDA',
    'lmdb, torchvision: stub modules (raw-image pipeline only)',
    'torch_scatter: stub, scatter_add = torch index_add',
    'config: use_gpu=False so the device is CPU',
)

_installed = False


def _stub(name: str, **attrs) -> types.ModuleType:
  module = types.ModuleType(name)
  module.__dict__.update(attrs)
  module.__mmrec_stub__ = True
  return module


def _unavailable(what: str):
  def fail(*args, **kwargs):
    del args, kwargs
    raise RuntimeError(f'{what} is a stub in bench/mmrec/patches.py: '
                       'the raw-image pipeline is not supported here.')
  return fail


def _scatter_add(src, index, dim=0, dim_size=None):
  """torch_scatter.scatter_add for the case MMRec uses (1-D, dim 0)."""
  import torch  # pylint: disable=g-import-not-at-top
  if dim != 0 or src.dim() != 1:
    raise NotImplementedError('torch_scatter stub: only 1-D, dim=0.')
  size = int(index.max()) + 1 if dim_size is None else dim_size
  return torch.zeros(size, dtype=src.dtype).index_add_(0, index, src)


def install() -> None:
  """Applies the library shims (idempotent)."""
  global _installed
  if _installed:
    return
  import numpy as np  # pylint: disable=g-import-not-at-top
  import scipy.sparse as sp  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top

  for alias, builtin in (('float', builtins.float), ('int', builtins.int),
                         ('bool', builtins.bool)):
    if alias not in np.__dict__:
      setattr(np, alias, builtin)

  if not hasattr(sp.dok_matrix, '_update'):
    def _update(self, entries):
      # What scipy < 1.12 did: write the entries without checks.
      self._dict.update(entries)  # pylint: disable=protected-access
    sp.dok_matrix._update = _update  # pylint: disable=protected-access

  if not torch.cuda.is_available():
    torch.Tensor.cuda = lambda self, *args, **kwargs: self

  for name in ('lmdb', 'torchvision', 'torchvision.transforms',
               'torchvision.transforms.functional'):
    try:
      __import__(name)
    except ImportError:
      sys.modules[name] = _stub(name, pad=_unavailable(name + '.pad'),
                                resize=_unavailable(name + '.resize'),
                                open=_unavailable(name + '.open'))
  if importlib.util.find_spec('torch_scatter') is None:
    sys.modules['torch_scatter'] = _stub('torch_scatter',
                                         scatter_add=_scatter_add)
  sys.modules['torchvision'].transforms = sys.modules['torchvision.transforms']
  sys.modules['torchvision.transforms'].functional = sys.modules[
      'torchvision.transforms.functional']
  _installed = True


def check_mmrec_dir(mmrec_dir: str | None) -> str | None:
  """The reason `mmrec_dir` is unusable, or None when it is a MMRec tree."""
  if not mmrec_dir:
    return 'no --mmrec_dir given'
  if not os.path.isfile(os.path.join(mmrec_dir, 'src', 'common',
                                     'trainer.py')):
    return (f'{mmrec_dir}: not a MMRec checkout (no src/common/trainer.py); '
            'see bench/mmrec/README.md for how to fetch it')
  return None


def enter(mmrec_dir: str, run_dir: str, data_dir: str, name: str) -> str:
  """Prepares `run_dir` for MMRec and makes it the working directory.

  Copies MMRec's `src/configs` into `run_dir/configs`, adds the dataset
  yaml (`<data_dir>/<name>.yaml`, written by export.py) as
  `configs/dataset/<name>.yaml`, links `run_dir/data/<name>` to
  `data_dir`, puts MMRec's `src/` first on sys.path and applies
  `install()`.

  Returns:
    The `data_path` value for MMRec's config (`run_dir/data/`).
  """
  install()
  src = os.path.abspath(os.path.join(mmrec_dir, 'src'))
  run_dir = os.path.abspath(run_dir)
  configs = os.path.join(run_dir, 'configs')
  if os.path.exists(configs):
    shutil.rmtree(configs)
  shutil.copytree(os.path.join(src, 'configs'), configs)
  yaml_path = os.path.join(data_dir, f'{name}.yaml')
  if not os.path.isfile(yaml_path):
    raise FileNotFoundError(
        f'{yaml_path}: no MMRec dataset yaml; write the folder with '
        'bench/mmrec/export.py (or add the yaml by hand).')
  shutil.copy(yaml_path, os.path.join(configs, 'dataset', f'{name}.yaml'))
  data_root = os.path.join(run_dir, 'data')
  os.makedirs(data_root, exist_ok=True)
  link = os.path.join(data_root, name)
  if os.path.lexists(link):
    os.remove(link)
  os.symlink(os.path.abspath(data_dir), link)
  if src not in sys.path:
    sys.path.insert(0, src)
  os.chdir(run_dir)
  return data_root + os.sep


def parse_hparams(items: list[str]) -> dict[str, object]:
  """'key=value' strings -> dict, values parsed as YAML (MMRec's format).

  Raises:
    ValueError: an item has no '='.
  """
  import yaml  # pylint: disable=g-import-not-at-top
  out = {}
  for item in items:
    key, sep, value = item.partition('=')
    if not sep or not key:
      raise ValueError(f'--hparams {item!r}: expected key=value.')
    value = yaml.safe_load(value)
    if isinstance(value, str):
      # YAML 1.1 reads '1e-4' (no dot) as a string; MMRec's own loader
      # reads it as a float, so do the same.
      try:
        value = float(value)
      except ValueError:
        pass
    out[key.strip()] = value
  return out


def resolve_grid(config, overrides: dict[str, object]) -> dict[str, object]:
  """Fixes every listed hyper-parameter to one value, as quick_start does.

  MMRec's quick_start loops over the product of the yaml lists; one run here
  takes the override when given, else the list's first value.
  """
  used = {}
  for key in config['hyper_parameters']:
    value = overrides.get(key, config[key])
    if isinstance(value, list):
      value = value[0] if value else None
    config[key] = value
    used[key] = value
  return used
