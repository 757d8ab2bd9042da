"""Helpers the tests share: the one place a test module imports them from.

No test module imports another; what two tests need lives here.

- `fixtures`: the shared-data folder, temporary folders, configs/*.py
  loading, small interaction datasets, model contexts and batches, a
  trained toy run, a finished workdir.
- `extraction`: a dataset of titled items with images on disk, a
  weight-free extraction config, a tiny word-level tokenizer.
- `references`: loop-based re-implementations that results are compared
  against (ranking metrics, ItemKNN).
- `ngcf_reference`: Elliot's NGCF in numpy and torch, and the inputs the NGCF
  tests build.
- `numerics`: ranking comparisons that hold on any CPU and device count.

tests/conftest.py only sets pytest up (devices, compilation cache).
"""
