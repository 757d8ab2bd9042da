"""Item representations: extractors and the extraction CLI.

`python -m mmjax.features.extract --config configs/features/<x>.py` writes
representations into `<dataset_dir>/features/` (see `mmjax/data/store.py`).
Importing this package imports no torch: the neural extractors import it
lazily, and the weight-free ones never do.
"""
