r"""The leverage study on ml-lvlm: which LVLM output helps which model?

  python -m mmjax.features.extract --config configs/features/ml_lvlm.py
  python -m mmjax.study --config configs/studies/leverage_ml_lvlm.py \
      --workdir studies/ml_lvlm --workers 2

Representations (configs/features/ml_lvlm.py extracts them all, offline):
`title_genres` (MiniLM of "title. genres" as the text modality, alone);
for each of the 12 LVLM output files, `title_genres+<file>` (MiniLM of
title+genres as text and MiniLM of what the LVLM wrote about the poster as
the visual modality, as the ml-lvlm training configs pair them); among them
the misaligned prompts (`qwen_2vl_7b_mis`, `phi_35vl_mis`) are weak-content
controls: a representation that beats them carries more than generic
movie text. AttributeItemKNN reads the one-hot keywords of each FITB file
(`keywords_<file>`). Models: VBPR (counterpart BPR-MF), FREEDOM, LATTICE,
BM3 (counterpart LightGCN), AttributeItemKNN (counterpart ItemKNN); MostPop,
ItemKNN, BPR-MF and LightGCN as references. Each is tuned on validation over
the CIKM 2025 grid (AttributeItemKNN over its neighbours x shrink grid) with
one seed, then run over three seeds with every control. The split is the
dataset's (per-user chronological 8:1:1); cold users are those with at most
5 training interactions.

This is a large study (1,680 tuning runs, 840 final ones), meant for a
cluster; start with `fast` or configs/studies/cikm25_ml_lvlm.py:fast.
Variants: `fast` (VBPR alone, three representations, two grid points, two
seeds).
"""

import ml_collections

from mmjax.utils import config_args

LVLM_FILES = (
    'qwen2_keywords', 'qwen_25vl_3b_keywords', 'qwen_25vl_7b_keywords',
    'qwen_3vl_2b_keywords', 'qwen_3vl_4b_keywords', 'qwen_3vl_8b_keywords',
    'phi35_keywords', 'phi_4_multimodal_keywords', 'qwen_2vl_7b_descriptive',
    'phi_35vl_descriptive', 'qwen_2vl_7b_mis', 'phi_35vl_mis',
)
FITB_FILES = LVLM_FILES[:8]
MISALIGNED = ('qwen_2vl_7b_mis', 'phi_35vl_mis')
TITLE = 'minilm_title_genres'
CIKM_GRID = {'optim': {'lr': (1e-4, 5e-4, 1e-3, 5e-3, 1e-2)},
             'model': {'embed_dim': (64, 128, 256),
                       'reg_weight': (0.01, 0.1)}}


def dense_representations() -> dict[str, dict[str, str]]:
  reps = {'title_genres': {'textual': TITLE}}
  for stem in LVLM_FILES:
    reps[f'title_genres+{stem}'] = {'textual': TITLE,
                                    'visual': f'minilm_{stem}'}
  return reps


def keyword_representations() -> dict[str, dict[str, str]]:
  return {f'keywords_{stem}': {'keywords': f'keywords_{stem}'}
          for stem in FITB_FILES}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = config_args.parse_arg(arg, fast=False)
  dense = dense_representations()
  keywords = keyword_representations()
  c = ml_collections.ConfigDict()
  c.name = 'leverage_ml_lvlm'
  c.dataset = 'ml_lvlm'
  c.metric = 'recall@20'
  c.num_boot = 10000
  c.representations = {**dense, **keywords}
  c.models = {
      name: {'config': f'configs/{name}.py', 'variant': 'data=ml_lvlm',
             'counterpart': 'bprmf' if name == 'vbpr' else 'lightgcn',
             'representations': tuple(dense)}
      for name in ('vbpr', 'freedom', 'lattice', 'bm3')}
  c.models.attributeitemknn = {
      'config': 'configs/attributeitemknn.py', 'variant': 'data=ml_lvlm',
      'counterpart': 'itemknn', 'representations': tuple(keywords),
      'grid': {'model': {'neighbors': (10, 20, 40, 80, 100),
                         'shrink': (0.0, 10.0, 100.0)}}}
  refs = ('mostpop', 'itemknn', 'bprmf', 'lightgcn')
  c.counterparts = {n: {'config': f'configs/{n}.py', 'variant': 'data=ml_lvlm'}
                    for n in ('bprmf', 'lightgcn', 'itemknn')}
  c.references = {n: {'config': f'configs/{n}.py', 'variant': 'data=ml_lvlm'}
                  for n in refs}
  c.grid = CIKM_GRID
  c.tune_seeds = (0,)
  c.final_seeds = (0, 1, 2)
  c.tune_counterparts = False
  c.controls = ('real', 'shuffle', 'noise', 'none', 'only_textual',
                'only_visual')
  c.sets = {'train': {'num_epochs': 200, 'patience': 20},
            'mesh': {'data': 1}}
  c.user_groups = (0, 6, 1e9)  # Cold users: at most 5 training interactions.
  if args.fast:
    c.name += '_fast'
    keep = ('title_genres', 'title_genres+qwen_2vl_7b_descriptive',
            'title_genres+qwen_2vl_7b_mis')
    c.representations = {k: dense[k] for k in keep}
    c.models = {'vbpr': {'config': 'configs/vbpr.py', 'variant': 'data=ml_lvlm',
                         'counterpart': 'bprmf'}}
    c.counterparts = {'bprmf': c.counterparts.bprmf.to_dict()}
    c.references = {'mostpop': c.references.mostpop.to_dict()}
    c.grid = {'optim': {'lr': (1e-3, 5e-3)}}
    c.final_seeds = (0, 1)
    c.controls = ('real', 'shuffle', 'none', 'only_visual')
    c.sets = {'train': {'num_epochs': 200, 'patience': 5,
                        'eval_every_epochs': 10},
              'ckpt': {'every_epochs': 200, 'keep': 1},
              'mesh': {'data': 1}}
  return c
