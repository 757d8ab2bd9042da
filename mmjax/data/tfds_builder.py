r"""A TFDS view of a prepared dataset: one ArrayRecord record per user.

  python -m mmjax.data.tfds_builder --dataset_dir data/synthetic-1a2b3c4d

Each record holds a user's id and their train / valid / test items with the
matching ratings (1.0 where the source has none), in the dataset's
interaction order. The records are built with TFDS's Python API
(`download_and_prepare(file_format='array_record')`) and read back with
`tfds.data_source`, both without TensorFlow: TFDS serialises examples with
its vendored tf.train.Example protos and ArrayRecord needs no TF either.

The TFDS files live in `<dataset_dir>/tfds` (the builder's `data_dir`), so
each prepared dataset carries its own TFDS copy, and
`tfds.data_source(NAME, data_dir=<dataset_dir>/tfds)` opens it.
"""

from __future__ import annotations

import os
from typing import Any, Iterator

from absl import app
from absl import flags
from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from mmjax.data import dataset as dataset_lib

NAME = 'mmjax_user_records'
SPLITS = ('train', 'valid', 'test')


def user_records(ds: dataset_lib.Dataset) -> Iterator[dict[str, Any]]:
  """One dict per user (users without interactions get empty lists)."""
  order = np.argsort(ds.user, kind='stable')
  bounds = np.searchsorted(ds.user[order], np.arange(ds.num_users + 1))
  rating = (np.ones(len(ds), np.float32) if ds.rating is None
            else ds.rating.astype(np.float32))
  for u in range(ds.num_users):
    rows = order[bounds[u]:bounds[u + 1]]
    rec = {'user': np.int32(u)}
    for label, name in enumerate(SPLITS):
      r = rows[ds.split[rows] == label]
      rec[f'{name}_items'] = ds.item[r].astype(np.int32)
      rec[f'{name}_ratings'] = rating[r]
    yield rec


# Under `python -m` this file also runs as `__main__`; only the importable
# module's class is registered with TFDS (one name, one class).
class MmjaxUserRecords(tfds.core.GeneratorBasedBuilder,
                       skip_registration=__name__ == '__main__'):
  """Per-user records of an mmjax dataset directory."""

  name = NAME
  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Per-user train/valid/test items and ratings.'}

  # TFDS's own code_path probes `importlib_resources`, which etils only
  # brings with its epath extra; this module's path is all it needs.
  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:
    return epath.Path(__file__)

  def __init__(self, *, dataset_dir: str | None = None, **kwargs):
    # dataset_dir is only needed to generate; reading uses the TFDS files.
    self._dataset_dir = dataset_dir
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    features = {'user': tfds.features.Scalar(np.int32)}
    for name in SPLITS:
      features[f'{name}_items'] = tfds.features.Sequence(
          tfds.features.Scalar(np.int32))
      features[f'{name}_ratings'] = tfds.features.Sequence(
          tfds.features.Scalar(np.float32))
    return self.dataset_info_from_configs(
        description='Per-user records of a prepared mmjax dataset.',
        features=tfds.features.FeaturesDict(features),
        # Keep records in key (= user id) order, so record i is user i.
        disable_shuffling=True,
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Everything is local.
    if not self._dataset_dir:
      raise ValueError(f'{NAME}: pass dataset_dir= to generate the records.')
    return {'users': self._generate_examples(self._dataset_dir)}

  def _generate_examples(self, dataset_dir: str):
    ds = dataset_lib.load(dataset_dir)
    for rec in user_records(ds):
      yield int(rec['user']), rec


def build(dataset_dir: str, data_dir: str | None = None) -> str:
  """Writes the ArrayRecord files; returns the TFDS data_dir."""
  data_dir = data_dir or os.path.join(dataset_dir, 'tfds')
  builder = MmjaxUserRecords(dataset_dir=dataset_dir, data_dir=data_dir)
  builder.download_and_prepare(
      file_format='array_record',
      download_config=tfds.download.DownloadConfig(
          download_mode=tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS))
  return data_dir


def data_source(data_dir: str):
  """Random-access records (`len`, `[i]`): record i is user i's."""
  return tfds.data_source(NAME, split='users', data_dir=data_dir)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError('Too many command-line arguments.')
  # TFDS locates a builder by its package; under `python -m` this file is
  # `__main__`, so use the class from the importable module.
  from mmjax.data import tfds_builder  # pylint: disable=g-import-not-at-top
  data_dir = tfds_builder.build(flags.FLAGS.dataset_dir)
  n = len(tfds_builder.data_source(data_dir))
  print(f'{n:,} user records in {data_dir}')


if __name__ == '__main__':
  # Defined here, not at import, so importing the builder defines no flags.
  flags.DEFINE_string('dataset_dir', None, 'A prepared dataset directory.')
  flags.mark_flag_as_required('dataset_dir')
  app.run(main)
