r"""Entry point: `python -m mmjax.launch --config configs/x.py[:variant]
--workdir DIR [--config.a.b=v]`, or `python -m mmjax.launch --rerun DIR
[--workdir NEW]` to redo a run from what DIR recorded (config.json; the code
version is checked against runinfo.json and git.diff).
"""

import os
import sys

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from mmjax.parallel import mesh as mesh_lib
from mmjax.train import loop
from mmjax.utils import runinfo

_WORKDIR = flags.DEFINE_string('workdir', None,
                               'Where metrics, config and checkpoints go.')
_RERUN = flags.DEFINE_string('rerun', None,
                             'Redo the run recorded in this workdir.')
config_flags.DEFINE_config_file('config', None, 'Experiment config file.',
                                lock_config=True)


class _QuietLibraries:
  """Keeps orbax's per-save INFO chatter out of the run's log (warnings pass)."""

  def filter(self, record) -> bool:
    return record.levelno >= 30 or '/orbax/' not in record.pathname


def main(argv):
  logging.get_absl_handler().addFilter(_QuietLibraries())
  if len(argv) > 1:
    raise app.UsageError('Too many command-line arguments.')
  if _RERUN.value:
    config = runinfo.load_config(_RERUN.value)
    workdir = _WORKDIR.value or _RERUN.value.rstrip('/') + '-rerun'
    warning = runinfo.check_commit(_RERUN.value)
    if warning:
      logging.warning('%s', warning)
  elif flags.FLAGS.config is None or not _WORKDIR.value:
    raise app.UsageError('--config and --workdir are required (or --rerun).')
  else:
    config, workdir = flags.FLAGS.config, _WORKDIR.value
  mesh_lib.maybe_initialize_distributed(config.get('mesh'))
  logging.info('JAX %s, devices: %r', jax.__version__, jax.devices())
  overrides = [a for a in sys.argv[1:] if a.startswith('--config.')]
  runinfo.write(workdir, config, overrides, sys.argv)
  loop.train_and_evaluate(config, os.path.abspath(workdir))


if __name__ == '__main__':
  app.run(main)
