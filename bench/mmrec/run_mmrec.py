"""Trains a MMRec model (the PyTorch reference) on CPU and times it.

    .venv/bin/python bench/mmrec/run_mmrec.py --mmrec_dir /work/mmrec \
        --data_dir /tmp/mmrec_data/synth30k --dataset synth30k \
        --model LightGCN --epochs 5 --seed 0 \
        --hparams n_layers=2 --hparams reg_weight=1e-4 --out lightgcn.json

MMRec (github enoche/MMRec) is run from a checkout outside this repository
(see README.md) with the runtime shims of patches.py; its files are not
edited. The data folder is one written by export.py (our MMRec writer plus
the dataset yaml). The loop is MMRec's own `Trainer` pieces, called in the
order of `Trainer.fit`: `pre_epoch_processing`, `_train_epoch` (MMRec's
dataloader with its Python negative sampling, forward, backward, Adam),
`lr_scheduler.step`, `post_epoch_processing`, then `evaluate` on the
validation and test users (full ranking, training items masked, MMRec's
metrics). Early stopping is off unless --stopping_step is given, so every
run trains exactly --epochs epochs.

MMRec's model yamls list several values for the grid's hyper-parameters
(e.g. LightGCN's n_layers [1, 2, 3, 4]); a hyper-parameter not set with
--hparams takes the first value of its list, and the JSON records every
value used. `--model MostPop` ranks items by training popularity through
the same evaluator (no training), the baseline of the outcome-parity test.

Output (stdout and --out): JSON with the machine, date, versions, the
config, model set-up time, per-epoch train time, loss, evaluation time and
valid/test Recall@20 and NDCG@20, and the final and best-validation
results. Without a MMRec checkout the script prints why and exits 0.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import resource
import sys
import tempfile
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import patches  # pylint: disable=g-import-not-at-top,wrong-import-position

from mmjax.utils import cpu  # pylint: disable=wrong-import-position


def _metrics(result: dict[str, float]) -> dict[str, float]:
  return {k: float(result[k]) for k in ('recall@20', 'ndcg@20', 'recall@10',
                                         'ndcg@10') if k in result}


def _most_pop(torch, train_data, n_items: int):
  """A MostPop scorer with the interface MMRec's evaluate uses."""
  counts = torch.zeros(n_items)
  items = torch.as_tensor(
      train_data.dataset.df[train_data.dataset.iid_field].values)
  counts.index_add_(0, items, torch.ones(len(items)))

  class MostPop(torch.nn.Module):

    def __init__(self):
      super().__init__()
      # MMRec's Trainer builds an optimizer, which needs one parameter.
      self.unused = torch.nn.Parameter(torch.zeros(1))

    def full_sort_predict(self, interaction):
      return counts.expand(len(interaction[0]), n_items).clone()

  return MostPop()


def run(mmrec_dir: str, data_dir: str, dataset: str, model_name: str,
        epochs: int, seed: int, hparams: dict[str, object],
        eval_every: int = 1, stopping_step: int | None = None,
        run_dir: str | None = None) -> dict[str, object]:
  """Trains and evaluates one MMRec model; returns the JSON record."""
  run_dir = run_dir or tempfile.mkdtemp(prefix='mmrec_run_')
  cwd = os.getcwd()
  data_path = patches.enter(mmrec_dir, run_dir, os.path.abspath(data_dir),
                            dataset)
  try:
    # MMRec's modules, importable once patches.enter put src/ on sys.path.
    # pylint: disable=g-import-not-at-top,import-error
    import numpy as np
    import torch
    from utils import configurator
    from utils import dataloader
    from utils import dataset as mmrec_dataset
    from utils import utils as mmrec_utils
    # pylint: enable=g-import-not-at-top,import-error

    config_dict = {
        'gpu_id': 0, 'use_gpu': False, 'data_path': data_path,
        'epochs': epochs, 'seed': seed, 'save_recommended_topk': False,
        'stopping_step': stopping_step if stopping_step is not None
                         else epochs + 1,
        **hparams}
    mmrec_model = 'LightGCN' if model_name == 'MostPop' else model_name
    config = configurator.Config(mmrec_model, dataset, config_dict)
    grid = patches.resolve_grid(config, hparams)

    t0 = time.perf_counter()
    ds = mmrec_dataset.RecDataset(config)
    train_ds, valid_ds, test_ds = ds.split()
    # quick_start logs str() of each split, and RecDataset.__str__ is what
    # sets the inter_num the dataloaders read.
    for part in (ds, train_ds, valid_ds, test_ds):
      str(part)
    train_data = dataloader.TrainDataLoader(
        config, train_ds, batch_size=config['train_batch_size'], shuffle=True)
    valid_data = dataloader.EvalDataLoader(
        config, valid_ds, additional_dataset=train_ds,
        batch_size=config['eval_batch_size'])
    test_data = dataloader.EvalDataLoader(
        config, test_ds, additional_dataset=train_ds,
        batch_size=config['eval_batch_size'])
    load_s = time.perf_counter() - t0

    mmrec_utils.init_seed(config['seed'])
    train_data.pretrain_setup()
    t0 = time.perf_counter()
    if model_name == 'MostPop':
      model = _most_pop(torch, train_data, ds.get_item_num())
      epochs = 0
    else:
      model = mmrec_utils.get_model(model_name)(config, train_data).to(
          config['device'])
    setup_s = time.perf_counter() - t0
    trainer = mmrec_utils.get_trainer()(config, model, False)

    record_epochs = []
    best = None
    for epoch in range(epochs):
      t0, c0 = time.perf_counter(), time.process_time()
      model.pre_epoch_processing()
      # pylint: disable-next=protected-access
      loss, _ = trainer._train_epoch(train_data, epoch)
      if torch.is_tensor(loss):
        raise FloatingPointError(f'{model_name}: NaN loss in epoch {epoch}.')
      trainer.lr_scheduler.step()
      model.post_epoch_processing()
      train_s = time.perf_counter() - t0
      row = {'epoch': epoch, 'train_s': train_s,
             'train_cpu_s': time.process_time() - c0,
             'loss': float(sum(loss) if isinstance(loss, tuple) else loss)}
      if (epoch + 1) % eval_every == 0 or epoch + 1 == epochs:
        t0, c0 = time.perf_counter(), time.process_time()
        valid = trainer.evaluate(valid_data)
        row['eval_s'] = time.perf_counter() - t0
        row['eval_cpu_s'] = time.process_time() - c0
        test = trainer.evaluate(test_data)
        row['valid'], row['test'] = _metrics(valid), _metrics(test)
        if best is None or row['valid']['recall@20'] > best['valid'][
            'recall@20']:
          best = {'epoch': epoch, 'valid': row['valid'], 'test': row['test']}
        if stopping_step is not None:
          trainer.best_valid_score, trainer.cur_step, stop, _ = (
              mmrec_utils.early_stopping(
                  row['valid']['recall@20'], trainer.best_valid_score,
                  trainer.cur_step, max_step=stopping_step, bigger=True))
          if stop:
            record_epochs.append(row)
            break
      record_epochs.append(row)
      print(json.dumps(row), flush=True)

    if model_name == 'MostPop':
      t0 = time.perf_counter()
      valid = trainer.evaluate(valid_data)
      eval_s = time.perf_counter() - t0
      final = {'valid': _metrics(valid),
               'test': _metrics(trainer.evaluate(test_data)),
               'eval_s': eval_s}
      best = final
    else:
      last = [r for r in record_epochs if 'valid' in r]
      final = {k: last[-1][k] for k in ('valid', 'test', 'eval_s')
               } if last else None

    train_times = [r['train_s'] for r in record_epochs]
    eval_times = [r['eval_s'] for r in record_epochs if 'eval_s' in r]
    train_cpu = [r['train_cpu_s'] for r in record_epochs]
    eval_cpu = [r['eval_cpu_s'] for r in record_epochs if 'eval_cpu_s' in r]
    median = lambda xs: float(np.median(xs)) if xs else None  # noqa: E731
    return {
        'tool': 'MMRec',
        'model': model_name,
        'dataset': dataset,
        'data_dir': os.path.abspath(os.path.join(data_path, dataset)),
        'users': ds.get_user_num(), 'items': ds.get_item_num(),
        'train_interactions': len(train_ds),
        'valid_users': int(len(valid_data.eval_u)),
        'test_users': int(len(test_data.eval_u)),
        'epochs': len(record_epochs), 'seed': seed,
        'hyper_parameters': grid,
        'config': {k: config[k] for k in (
            'embedding_size', 'train_batch_size', 'learning_rate',
            'learner', 'weight_decay', 'eval_batch_size', 'n_layers',
            'reg_weight', 'feat_embed_dim', 'knn_k', 'mm_image_weight',
            'dropout', 'cl_weight', 'lambda_coeff', 'use_neg_sampling')
                   if config[k] is not None},
        'load_s': load_s, 'setup_s': setup_s,
        'train_s_median': median(train_times),
        'eval_s_median': median(eval_times),
        # Process CPU seconds (all threads): robust to a shared, loaded
        # machine where wall time is not.
        'train_cpu_s_median': median(train_cpu),
        'eval_cpu_s_median': median(eval_cpu),
        'load_avg': os.getloadavg()[0],
        # This process's peak resident memory (Linux reports KiB).
        'peak_rss_mb': resource.getrusage(
            resource.RUSAGE_SELF).ru_maxrss / 1024,
        'per_epoch': record_epochs,
        'final': final, 'best': best,
        'machine': f'{cpu.name()}, {os.cpu_count()} cores',
        'torch_threads': torch.get_num_threads(),
        'versions': {'python': platform.python_version(),
                     'torch': torch.__version__, 'numpy': np.__version__},
        'mmrec_dir': os.path.abspath(mmrec_dir),
        'shims': list(patches.SHIMS),
        'date': datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec='seconds'),
    }
  finally:
    os.chdir(cwd)


def main(argv):
  del argv
  reason = patches.check_mmrec_dir(_MMREC_DIR.value)
  if reason:
    print(f'run_mmrec: skipped: {reason}.')
    return
  if not _DATA_DIR.value or not os.path.isdir(_DATA_DIR.value):
    raise app.UsageError(f'--data_dir {_DATA_DIR.value!r}: not a folder.')
  if _THREADS.value:
    import torch  # pylint: disable=g-import-not-at-top
    torch.set_num_threads(_THREADS.value)
  dataset = _DATASET.value or os.path.basename(
      os.path.abspath(_DATA_DIR.value).rstrip('/'))
  record = run(_MMREC_DIR.value, _DATA_DIR.value, dataset, _MODEL.value,
               _EPOCHS.value, _SEED.value,
               patches.parse_hparams(_HPARAMS.value),
               _EVAL_EVERY.value, _STOPPING_STEP.value, _RUN_DIR.value)
  text = json.dumps(record, indent=1)
  if _OUT.value:
    with open(_OUT.value, 'w', encoding='utf-8') as f:
      f.write(text + '\n')
  print(json.dumps({k: record[k] for k in (
      'model', 'dataset', 'epochs', 'hyper_parameters', 'setup_s',
      'train_s_median', 'eval_s_median', 'train_cpu_s_median',
      'eval_cpu_s_median', 'final', 'best')}))


if __name__ == '__main__':
  # Flags are defined only when run as a script, so that importing this
  # module (tests, other scripts) defines none.
  _MMREC_DIR = flags.DEFINE_string(
      'mmrec_dir', os.environ.get('MMREC_DIR'),
      'MMRec checkout (the folder holding src/); default $MMREC_DIR.')
  _DATA_DIR = flags.DEFINE_string('data_dir', None,
                                  'MMRec dataset folder (export.py).')
  _DATASET = flags.DEFINE_string('dataset', None, 'Dataset name (default: '
                                 'the basename of --data_dir).')
  _MODEL = flags.DEFINE_string('model', 'LightGCN',
                               'MMRec model class name, or MostPop.')
  _EPOCHS = flags.DEFINE_integer('epochs', 5, 'Training epochs.')
  _SEED = flags.DEFINE_integer('seed', 999, 'Seed (MMRec default 999).')
  _HPARAMS = flags.DEFINE_multi_string(
      'hparams', [], 'key=value config overrides (value parsed as YAML).')
  _EVAL_EVERY = flags.DEFINE_integer('eval_every', 1,
                                     'Evaluate every this many epochs.')
  _STOPPING_STEP = flags.DEFINE_integer(
      'stopping_step', None, 'MMRec early stopping patience (default: off).')
  _THREADS = flags.DEFINE_integer('threads', None,
                                  'torch.set_num_threads (default: torch).')
  _RUN_DIR = flags.DEFINE_string('run_dir', None, 'Working folder for MMRec '
                                 '(configs copy, data link); default: temp.')
  _OUT = flags.DEFINE_string('out', None, 'Write the JSON record here.')
  app.run(main)
