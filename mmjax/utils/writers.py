"""Metric writers with clu's `MetricWriter` interface, without TensorFlow.

`JsonlWriter` appends one JSON line per `write_scalars` call to
`<workdir>/metrics.jsonl` ({'step': s, 'epoch': e, name: value, ...});
`LoggingWriter` logs the same through absl; `MultiWriter` fans out. Like
big_vision's `BigVisionMetricWriter`; clu.metric_writers imports TensorFlow
at module load, so it is not used.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Mapping, Sequence

from absl import logging
import numpy as np

METRICS = 'metrics.jsonl'


def _plain(value: Any) -> Any:
  if isinstance(value, (np.generic, np.ndarray)):
    value = value.item() if np.ndim(value) == 0 else np.asarray(value).tolist()
  if isinstance(value, float) and not math.isfinite(value):
    return str(value)  # JSON has no NaN/inf; keep them readable.
  return value


class MetricWriter:
  """The clu interface: write_scalars, write_hparams, flush, close."""

  def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    raise NotImplementedError

  def write_hparams(self, hparams: Mapping[str, Any]) -> None:
    raise NotImplementedError

  def flush(self) -> None:
    pass

  def close(self) -> None:
    self.flush()


class JsonlWriter(MetricWriter):
  """Appends JSON lines to a file; `truncate_after` drops lines of a rollback.

  Each line is {'step': step, **scalars}; a scalar named 'epoch' is kept as
  a top-level field like any other.
  """

  def __init__(self, path: str):
    self.path = path
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    self._file = open(path, 'a', encoding='utf-8')

  def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    line = {'step': int(step)}
    line.update({k: _plain(v) for k, v in scalars.items()})
    self._file.write(json.dumps(line) + '\n')
    self._file.flush()

  def write_hparams(self, hparams: Mapping[str, Any]) -> None:
    self._file.write(json.dumps(
        {'hparams': {k: _plain(v) for k, v in hparams.items()}}) + '\n')
    self._file.flush()

  def flush(self) -> None:
    self._file.flush()
    os.fsync(self._file.fileno())

  def close(self) -> None:
    if not self._file.closed:
      self.flush()
      self._file.close()


class LoggingWriter(MetricWriter):
  """Logs scalars through absl (one line per write).

  At verbosity 1 (`--verbosity=1`): every metric of an evaluation is a line of
  hundreds of fields, which buries the per-epoch progress line at the default
  level; metrics.jsonl holds them all anyway.
  """

  def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    if not logging.vlog_is_on(1):
      return
    text = ', '.join(f'{k}={_fmt(v)}' for k, v in scalars.items())
    logging.vlog(1, '[%d] %s', step, text)

  def write_hparams(self, hparams: Mapping[str, Any]) -> None:
    logging.info('hparams: %s', dict(hparams))


def _fmt(v: Any) -> str:
  v = _plain(v)
  return f'{v:.5g}' if isinstance(v, float) else str(v)


class MultiWriter(MetricWriter):

  def __init__(self, writers: Sequence[MetricWriter]):
    self.writers = list(writers)

  def write_scalars(self, step, scalars):
    for w in self.writers:
      w.write_scalars(step, scalars)

  def write_hparams(self, hparams):
    for w in self.writers:
      w.write_hparams(hparams)

  def flush(self):
    for w in self.writers:
      w.flush()

  def close(self):
    for w in self.writers:
      w.close()


def read_jsonl(path: str) -> list[dict[str, Any]]:
  """All lines of a metrics file (missing file: [])."""
  if not os.path.exists(path):
    return []
  with open(path, encoding='utf-8') as f:
    return [json.loads(line) for line in f if line.strip()]


def truncate_after(path: str, epoch: int) -> int:
  """Keeps only lines with 'epoch' <= `epoch` (and lines without one).

  Called on resume from a checkpoint taken after epoch `epoch`: what a killed
  run logged after its last checkpoint is redone by the resumed run, so it is
  dropped first. A torn last line (killed mid-write) is dropped too.

  Returns:
    The number of lines dropped.
  """
  if not os.path.exists(path):
    return 0
  with open(path, encoding='utf-8') as f:
    lines = f.readlines()
  kept = []
  for line in lines:
    try:
      record = json.loads(line)
    except json.JSONDecodeError:
      continue
    if record.get('epoch', -1) <= epoch and not record.get('final'):
      kept.append(line if line.endswith('\n') else line + '\n')
  with open(path + '.tmp', 'w', encoding='utf-8') as f:
    f.writelines(kept)
  os.replace(path + '.tmp', path)
  return len(lines) - len(kept)


def create_writer(workdir: str) -> MultiWriter:
  return MultiWriter([JsonlWriter(os.path.join(workdir, METRICS)),
                      LoggingWriter()])
