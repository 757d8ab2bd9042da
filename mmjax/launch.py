r"""Entry point: `python -m mmjax.launch --config configs/x.py[:variant]
--workdir DIR [--config.a.b=v]`, or `python -m mmjax.launch --rerun DIR
[--workdir NEW]` to redo a run from what DIR recorded (config.json; the code
version is checked against runinfo.json and git.diff).

A workdir that holds a run resumes it only when its recorded config equals
the new one (`runinfo.check_resumable`: a longer `train.num_epochs` and a few
keys that change nothing computed may differ); otherwise the start is refused
before anything is written, unless `--overwrite` moves the old run aside.

The run itself (checks, workdir guard, runinfo, training) is
`mmjax.run.run`, which the sweep, the study and the bench scripts call too;
this module is the command line around it.

User errors (a misspelt or mistyped `--config.` key, a missing config file, a
config value that cannot run, another run's workdir, a missing representation,
a package of the optional extras) print one line to stderr and exit 2 (usage)
or 1 (data, packages), before any dataset or device work: the training stack
(JAX) is imported only after these checks. `--debug` shows their tracebacks;
real bugs always show theirs.
"""

import difflib
import logging as py_logging
import os
import re
import sys
from typing import NoReturn, Sequence

from absl import app
from absl import flags
from absl import logging
import ml_collections
from ml_collections import config_flags

from mmjax import run as run_lib
from mmjax.data import dataset as dataset_lib
from mmjax.data import datasets
from mmjax.data import prepare as prepare_lib
from mmjax.train import validate
from mmjax.utils import cli as cli_lib
from mmjax.utils import runinfo

_WORKDIR = flags.DEFINE_string('workdir', None,
                               'Where metrics, config and checkpoints go.')
_RERUN = flags.DEFINE_string('rerun', None,
                             'Redo the run recorded in this workdir.')
_OVERWRITE = flags.DEFINE_bool(
    'overwrite', False,
    'Start afresh in a --workdir that already holds a run: the old run is '
    'moved to <workdir>.old-<UTC time> (nothing is deleted). Without it, a '
    'workdir resumes only a run of the same config.')
_DEBUG = flags.DEFINE_bool(
    'debug', False,
    'Show the full traceback of user errors (flags, config values, workdir, '
    'data, missing packages) instead of one line.')
config_flags.DEFINE_config_file('config', None, 'Experiment config file.',
                                lock_config=True)

USAGE = 2  # Exit status of a usage error (a flag, the config, the workdir).
FAILURE = 1  # Exit status of a data error or a missing package.

# Packages of the optional extras (pyproject.toml) -> what installs them.
_NO_MODULE = re.compile(r"No module named '([\w.]+)'")
_BAD_VALUE = re.compile(r'^flag --config\.([\w.]+)=(.*?): (.*)$', re.S)


class _QuietLibraries:
  """Keeps orbax's per-save INFO chatter out of the log (warnings pass)."""

  def filter(self, record) -> bool:
    return record.levelno >= 30 or '/orbax/' not in record.pathname


class _NoBackendProbeNoise:
  """Drops JAX's INFO "Unable to initialize backend 'tpu'" on CPU machines.

  jax._src.xla_bridge logs it at INFO for every platform it probes and does
  not find; a failure on the platform actually asked for is raised instead.
  """

  def filter(self, record) -> bool:
    return not (record.levelno < py_logging.WARNING and
                str(record.msg).startswith('Unable to initialize backend'))


def _fail(message: str, status: int) -> NoReturn:
  sys.stderr.write(f'error: {message}\n')
  sys.stderr.flush()
  sys.exit(status)


def _debug_requested(argv: Sequence[str]) -> bool:
  return any(a in ('--debug', '--debug=true', '--debug=True', '--debug=1')
             for a in argv)


def _override_paths(argv: Sequence[str]) -> list[str]:
  """The dotted path of each --config.<path>=<value> in argv."""
  return [a[len('--config.'):].partition('=')[0] for a in argv
          if a.startswith('--config.')]


def _key_problem(cfg: ml_collections.ConfigDict, path: str) -> str | None:
  """Why `path` names no field of `cfg` (with the closest key), or None."""
  node, done = cfg, []
  for part in path.split('.'):
    if not isinstance(node, ml_collections.ConfigDict):
      return (f'{".".join(done)} is a value ({type(node).__name__}), not a '
              f'section: there is no key {path}')
    if part not in node:
      where = '.'.join(done + [part])
      if where != path:
        where += f' (in --config.{path})'
      keys = sorted(node.keys())
      close = difflib.get_close_matches(part, keys, n=1)
      if close:
        return f'unknown key {where}; did you mean {".".join(done + close)}?'
      section = '.'.join(done) or 'the config'
      has = f'has: {", ".join(keys)}' if keys else 'is empty'
      return f'unknown key {where} ({section} {has})'
    node = node[part]
    done.append(part)
  return None


def _type_name(cfg: ml_collections.ConfigDict | None, path: str) -> str:
  try:
    *parents, last = path.split('.')
    node = cfg
    for part in parents:
      node = node[part]
    return node.get_type(last).__name__
  except Exception:  # pylint: disable=broad-except
    return 'another type'


def describe_flag_error(error: Exception, argv: Sequence[str]) -> str | None:
  """One line for an error raised while parsing the flags, or None (a bug).

  absl's config_flags loads the config file and applies the `--config.`
  overrides during flag parsing, inside `app.run`, and reports a misspelt
  key as an AttributeError after dozens of lines of traceback; this names
  the key, the closest existing one, the expected type or the missing file.
  """
  spec = cli_lib.config_arg(argv)
  if spec is not None and not os.path.exists(spec.partition(':')[0]):
    return f'no such file {spec.partition(":")[0]} (the --config file)'
  message = str(error)
  if isinstance(error, flags.UnrecognizedFlagError) and not message.count(
      "'config."):
    return f'{message.splitlines()[0]}; see --helpshort.'
  if isinstance(error, ModuleNotFoundError):
    described = cli_lib.describe_missing_module(error.name)
    if described:
      return described
  cfg = cli_lib.load_config_file(spec) if spec else None
  match = _BAD_VALUE.match(message)
  if isinstance(error, flags.IllegalFlagValueError) and match:
    path, value, _ = match.groups()
    return (f'--config.{path}={value}: expected a value of type '
            f'{_type_name(cfg, path)} for {path}.')
  if cfg is not None:
    for path in _override_paths(argv):
      problem = _key_problem(cfg, path)
      if problem:
        return problem
  if 'Error whilst parsing config file' in message:
    # The config file itself raised: its last traceback line says why.
    lines = [line for line in message.splitlines() if line.strip()]
    missing = _NO_MODULE.search(lines[-1])
    described = missing and cli_lib.describe_missing_module(missing.group(1))
    if described:
      return described
    return f'{spec}: {lines[-1].strip()} (--debug shows the traceback)'
  if isinstance(error, (flags.Error, OSError)):
    return message.splitlines()[0] if message else type(error).__name__
  if spec and cfg is None:
    # Loading the config file fails on its own: the file is at fault.
    first = message.splitlines()[0] if message else ''
    return (f'{spec}: {type(error).__name__}: {first} (--debug shows the '
            'traceback)')
  return None


def parse_flags(argv: list[str]) -> list[str]:
  """`app.run`'s flag parser: user errors in one line and exit status 2."""
  spec = cli_lib.config_arg(argv)
  if spec is not None and not os.path.exists(spec.partition(':')[0]):
    # config_flags would defer this error to the first read of the config.
    _fail(f'no such file {spec.partition(":")[0]} (the --config file)', USAGE)
  # `--config.<optional field>=None` sets it to None (placeholders).
  nones = []
  if spec and any(a.startswith('--config.') and a.endswith('=None')
                  for a in argv):
    argv, nones = prepare_lib.split_none_overrides(
        argv, cli_lib.load_config_file(spec))
  try:
    args = flags.FLAGS(argv)
  except Exception as e:  # pylint: disable=broad-except
    if _debug_requested(argv):
      raise
    message = describe_flag_error(e, argv)
    if message is None:
      raise
    _fail(message, USAGE)
  prepare_lib.set_none(flags.FLAGS.config, nones)
  _absolute_data_file(flags.FLAGS.config)
  return args


def _absolute_data_file(config: ml_collections.ConfigDict | None) -> None:
  """Records a `data.name` that is a data config file by its absolute path.

  The file is named relative to the working directory; recorded absolute in
  config.json, it is the same file for a `--rerun` or a resume started from
  anywhere else.
  """
  data = config.get('data') if config is not None else None
  if data is not None and isinstance(data.get('name'), str):
    data.name = datasets.absolute_spec(data.name)


def describe_error(error: Exception) -> tuple[str, int] | None:
  """(one line, exit status) for a user error raised in main, or None."""
  if isinstance(error, (validate.ConfigError, runinfo.WorkdirError)):
    return str(error), USAGE
  if isinstance(error, dataset_lib.DataError):
    return str(error), FAILURE
  if isinstance(error, ModuleNotFoundError):
    described = cli_lib.describe_missing_module(error.name)
    if described:
      return described, FAILURE
  return None


def _resolve() -> tuple[ml_collections.ConfigDict, str, list[str]]:
  """(config, workdir, override flags) from --config/--workdir or --rerun."""
  if _RERUN.value:
    try:
      config = runinfo.load_config(_RERUN.value)
    except FileNotFoundError as e:
      _fail(str(e), USAGE)
    workdir = _WORKDIR.value or _RERUN.value.rstrip('/') + '-rerun'
    warning = runinfo.check_commit(_RERUN.value)
    if warning:
      logging.warning('%s', warning)
  elif flags.FLAGS.config is None or not _WORKDIR.value:
    _fail('--config and --workdir are required (or --rerun DIR).', USAGE)
  else:
    config, workdir = flags.FLAGS.config, _WORKDIR.value
  overrides = [a for a in sys.argv[1:] if a.startswith('--config.')]
  return config, workdir, overrides


def _run() -> None:
  config, workdir, overrides = _resolve()
  run_lib.run(config, workdir, overwrite=_OVERWRITE.value,
              overrides=overrides, argv=sys.argv)


def main(argv: Sequence[str]) -> None:
  logging.get_absl_handler().addFilter(_QuietLibraries())
  py_logging.getLogger('jax._src.xla_bridge').addFilter(
      _NoBackendProbeNoise())
  if len(argv) > 1:
    _fail(f'unexpected arguments {" ".join(argv[1:])} (flags are '
          '--name=value).', USAGE)
  try:
    _run()
  except Exception as e:  # pylint: disable=broad-except
    described = None if _DEBUG.value else describe_error(e)
    if described is None:
      raise
    _fail(*described)


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
