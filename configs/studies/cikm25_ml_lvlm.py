r"""The CIKM 2025 protocol (Pomo et al.) on ml-lvlm, as a leverage study.

  python -m mmjax.features.extract --config configs/features/ml_lvlm.py
  python -m mmjax.study --config configs/studies/cikm25_ml_lvlm.py:fast \
      --workdir studies/cikm25_fast --workers 2

The protocol: each model tuned over lr {1e-4, 5e-4, 1e-3, 5e-3, 1e-2} x
factors (embed_dim) {64, 128, 256} x regularisation (reg_weight)
{0.01, 0.1} (30 points); up to 200 epochs with validation Recall@20 every
10 epochs (patience 20 evaluations: the budget, not patience, ends a run);
test at the best validation point; Recall, NDCG and HR @20 with relevance
threshold 4 (a held-out rating below 4 is not relevant) and graded NDCG
(gain = rating, Elliot's convention, which graded gains need); only the
training items masked at test (`eval.mask_valid_at_test=False`). Models
VBPR, FREEDOM, LATTICE, BM3 with the MiniLM representations of
configs/studies/leverage_ml_lvlm.py (title+genres, and title+genres with each
LVLM output file), one tuning seed, three final seeds, every control. The
full study (1,560 tuning runs, 768 final ones) is meant for a cluster; the
study command runs on one machine (--workers N), and a SLURM array for a
study is not written yet (mmjax.sweep --slurm does it for one sweep).

`fast`: meant to finish within 30 minutes on an idle 2-core machine:
VBPR (counterpart BPR-MF) and FREEDOM (counterpart LightGCN) with title+genres
as text and Qwen2-VL-7B's poster description as the visual modality (the two
representations the ml-lvlm configs use, extracted by default), a grid of
lr {1e-3, 5e-3} at 64 factors and regularisation 0.01, up to 200 epochs
(validation every 10, patience 5 evaluations), seeds 0 and 1, controls real,
shuffle, noise, none, only_textual, only_visual, and MostPop as a reference:
4 tuning runs and 26 final ones (2 copied from tuning). Run whole on
2026-12-07 with --workers 2: 8 min 19 s on this 2-core machine (the table
and its reading are in README.md). 200 epochs because VBPR at lr 1e-3 was
still improving at 100.
"""

import importlib.util
import os

import ml_collections

from mmjax.utils import config_args


def _leverage():
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      'leverage_ml_lvlm.py')
  spec = importlib.util.spec_from_file_location('leverage_ml_lvlm', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


PROTOCOL = {
    'train': {'num_epochs': 200, 'eval_every_epochs': 10, 'patience': 20},
    'eval': {'relevance_threshold': 4.0, 'gain': 'graded',
             'convention': 'elliot', 'mask_valid_at_test': False},
    'mesh': {'data': 1},
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = config_args.parse_arg(arg, fast=False)
  leverage = _leverage()
  dense = leverage.dense_representations()
  c = ml_collections.ConfigDict()
  c.name = 'cikm25_ml_lvlm'
  c.dataset = 'ml_lvlm'
  c.metric = 'recall@20'
  c.num_boot = 10000
  c.representations = dense
  c.models = {
      name: {'config': f'configs/{name}.py', 'variant': 'data=ml_lvlm',
             'counterpart': 'bprmf' if name == 'vbpr' else 'lightgcn'}
      for name in ('vbpr', 'freedom', 'lattice', 'bm3')}
  c.counterparts = {n: {'config': f'configs/{n}.py', 'variant': 'data=ml_lvlm'}
                    for n in ('bprmf', 'lightgcn')}
  c.references = {n: {'config': f'configs/{n}.py', 'variant': 'data=ml_lvlm'}
                  for n in ('mostpop', 'itemknn', 'bprmf', 'lightgcn')}
  c.grid = leverage.CIKM_GRID
  c.tune_seeds = (0,)
  c.final_seeds = (0, 1, 2)
  c.tune_counterparts = False
  c.controls = ('real', 'shuffle', 'noise', 'none', 'only_textual',
                'only_visual')
  c.sets = PROTOCOL
  c.user_groups = (0, 6, 1e9)  # Cold users: at most 5 training interactions.
  if args.fast:
    c.name += '_fast'
    pair = 'title_genres+qwen_2vl_7b_descriptive'
    c.representations = {pair: dense[pair]}
    c.models = {k: v for k, v in c.models.items()
                if k in ('vbpr', 'freedom')}
    c.references = {'mostpop': c.references.mostpop.to_dict()}
    c.grid = {'optim': {'lr': (1e-3, 5e-3)},
              'model': {'embed_dim': (64,), 'reg_weight': (0.01,)}}
    c.final_seeds = (0, 1)
    c.sets.train = {'num_epochs': 200, 'eval_every_epochs': 10,
                    'patience': 5}
    c.sets.ckpt = {'every_epochs': 200, 'keep': 1}
  return c
