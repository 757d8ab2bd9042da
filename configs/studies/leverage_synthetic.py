r"""The leverage study on the synthetic data with a planted answer.

  python -m mmjax.study --config configs/studies/leverage_synthetic.py \
      --workdir studies/synthetic --workers 2
  python -m mmjax.study \
      --config configs/studies/leverage_synthetic.py:runlocal \
      --workdir studies/smoke --workers 2

The design under which bench/README.md ("The same test on cold items")
found the planted answer: 1000 users x 500 items x 20 draws per user, the
generator's feature noise 0.5, the cold-item split (20% of the items have no
training interaction and every held-out item is one of them, so only
content can rank them), BPR negatives from the training items. Preset
`visual` (the default variant) plants the users' preference in the images
only: real should beat `shuffle_visual` (and `noise`, `only_textual`), and
not `shuffle_textual`; `preset=text` swaps the roles; `preset=none` plants no
content signal, where no control should lose to real. VBPR (counterpart
BPR-MF), LATTICE and FREEDOM (counterpart LightGCN) at the settings
bench/README.md chose for convergence: VBPR <= 40 epochs, patience 10, lr
1e-3; the graph models <= 80 epochs, patience 20, lr 5e-3 (the tuning grid
adds 1e-3 / 5e-3 around them). On the cold-item split every run also ranks
the cold items alone at its best epoch (evaluator `cold`, the table's group
`cold_only`).

Variants: `preset=visual|text|none`; `models=vbpr+lattice` (a subset, with
their counterparts); `seeds=N` (final seeds 0..N-1); `visual_signal=X`
(the generator's image weight, 0 to 1, in place of the preset's: the knob
that bench/planted.py sweeps); `split=random` (the data config's random
split instead of the cold-item one); `sparse` (the random-split design
where content is needed: 1500 users x 1000 items x 10 draws, feature noise
0.2, batch 256, every model lr 5e-3 and <= 80 epochs, patience 20);
`runlocal`: the whole study end to end in one to two minutes here (300
users x 200 items, VBPR and BPR-MF, one tuning point, 2 final seeds, <= 10
epochs, controls real, shuffle_visual, none; cold users those with at most
9 training interactions); tests/study_test.py runs it.

Measured 2026-12-07 on this 2-core machine beside other jobs (load 4-8),
VBPR alone, 3 seeds (`:models=vbpr,seeds=3`, --workers 2; 25 launches):
preset `visual` in 216 s: real 0.133 beats shuffle_visual by +0.091 (Holm
5e-50, p seeds 7e-3), noise +0.093, only_textual +0.092 and none (BPR-MF)
+0.102, and not shuffle_textual (-0.004, Holm 1.0) nor only_visual (-0.008);
preset `none` in 119 s: no shuffle matters (+0.005, +0.006, Holm 1.0),
noise +0.013 (Holm 0.2), but none (BPR-MF) loses by +0.024 (Holm 4e-5): on
the cold-item split an ID-only model cannot score a cold item at all, so
`none` asks "any content", not "the planted content"; only_visual +0.017
(Holm 6e-3, p seeds 0.06) is a per-user false positive of the kind
bench/README.md describes (read p seeds).

The whole study (preset `visual`, --workers 2, 108 launches) took 846 s
here at load 4-5. Real against shuffle_visual over 5 seeds: VBPR +0.082
(Holm 1e-71, p seeds 4e-4), LATTICE +0.045 (Holm 6e-30, p seeds 1e-3),
FREEDOM +0.001 (n.s.; its image graph weight is 0.1, as bench/README.md
found); against shuffle_textual nothing (-0.006, +0.002, -0.000, Holm 1.0).
only_visual beats real for VBPR and LATTICE (-0.018, -0.019): the textual
features carry no signal here, only noise. LightGCN (`none` of the graph
models) and MostPop score 0 on cold items.

bench/README.md ("The planted answer") has the three presets, the
`visual_signal` knob and the random split as measured with this config, and
the commands (bench/planted.py tabulates them).

Fields (every study config; mmjax/study.py reads them):
  name, dataset: labels of the tables.
  models: label -> {config, variant, counterpart, representations (empty:
    all), grid (optional: replaces the study's), sets (optional: added to
    the study's)}.
  counterparts, references: label -> {config, variant[, grid, sets]}.
  representations: label -> {modality: representation} (features.sources).
  grid: nested {section: {key: values}}, the tuning grid (may be empty).
  tune_seeds, final_seeds; tune_counterparts: tune the `none` models too.
  controls: real, shuffle, noise, none, shuffle_<m>, noise_<m>, only_<m>.
  sets: nested overrides of every run (data split and size, epochs...).
  user_groups: eval.user_groups edges (lowest bin: cold users, highest:
    warm users); metric: the per-user metric of the statistics; num_boot.
"""

import ml_collections

from mmjax.utils import config_args

SOURCES = {'textual': 'synthetic_text', 'visual': 'synthetic_visual'}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  args = config_args.parse_arg(arg, runlocal=False, preset='visual',
                               models='', seeds=0, visual_signal='',
                               split='cold_item', sparse=False)
  if args.preset not in ('visual', 'text', 'none'):
    raise ValueError(f'preset={args.preset!r}: use visual, text or none')
  if args.split not in ('cold_item', 'random'):
    raise ValueError(f'split={args.split!r}: use cold_item or random')
  label = args.preset
  if args.visual_signal:
    try:
      signal = float(args.visual_signal)
    except ValueError:
      raise ValueError(f'visual_signal={args.visual_signal!r}: expected a '
                       'number in [0, 1]') from None
    if not 0.0 <= signal <= 1.0:
      raise ValueError(f'visual_signal={signal:g}: expected a number in '
                       '[0, 1]')
    label += f'_vs{signal:g}'
  if args.split != 'cold_item':
    label += f'_{args.split}'
  if args.sparse:
    label += '_sparse'
  c = ml_collections.ConfigDict()
  c.name = f'leverage_synthetic_{label}'
  c.dataset = f'synthetic_{label}'
  c.metric = 'recall@20'
  c.num_boot = 10000
  c.representations = {'synthetic': dict(SOURCES)}
  graph = {'optim': {'lr': 5e-3},
           'train': {'num_epochs': 80, 'patience': 20},
           'ckpt': {'every_epochs': 80}}
  c.models = {
      'vbpr': {'config': 'configs/vbpr.py', 'variant': '',
               'counterpart': 'bprmf'},
      'lattice': {'config': 'configs/lattice.py', 'variant': '',
                  'counterpart': 'lightgcn', 'sets': graph},
      'freedom': {'config': 'configs/freedom.py', 'variant': '',
                  'counterpart': 'lightgcn', 'sets': graph},
  }
  c.counterparts = {
      'bprmf': {'config': 'configs/bprmf.py', 'variant': ''},
      'lightgcn': {'config': 'configs/lightgcn.py', 'variant': '',
                   'sets': graph},
  }
  c.references = {
      'mostpop': {'config': 'configs/mostpop.py', 'variant': ''},
  }
  c.grid = {'optim': {'lr': (1e-3, 5e-3)}}
  c.tune_seeds = (0,)
  c.final_seeds = (0, 1, 2, 3, 4)
  c.tune_counterparts = False
  c.controls = ('real', 'shuffle_visual', 'shuffle_textual', 'noise', 'none',
                'only_visual', 'only_textual')
  synthetic = {'preset': args.preset, 'num_users': 1000, 'num_items': 500,
               'interactions_per_user': 20, 'max_images': 0}
  if args.visual_signal:
    synthetic['visual_signal'] = signal
  c.sets = {
      'data': {'split': args.split,
               'overrides': {'seed': 0, 'synthetic': synthetic}},
      'train': {'num_epochs': 40, 'patience': 10, 'batch_size': 512,
                'eval_every_epochs': 1},
      # Checkpoints only where the loop must write them (best, stop, end).
      'ckpt': {'every_epochs': 40, 'keep': 1},
      'mesh': {'data': 1},
  }
  if args.split == 'cold_item':
    # The cold-only ranking diagnostic at the best epoch (in study.csv as
    # cold/recall@20, cold/random_recall@20, cold/warm_above_median): does
    # the model order the cold items by content, and does it lift them
    # above the warm ones at all?
    c.sets.eval = {'evaluators': {'cold': {'kind': 'cold_items_only',
                                           'split': 'test',
                                           'every': 'best'}}}
  if args.sparse:
    # The random-split design where the content is needed (bench/README.md):
    # fewer interactions per item, so an item's own interactions say less
    # about its planted attribute, and cleaner features (noise 0.2: an
    # item's 10 nearest neighbours share its attribute about 97% of the
    # time, against 48% for the interactions). Every model at the graph
    # models' budget, batch 256.
    c.sets.data.overrides.synthetic.update(
        num_users=1500, num_items=1000, interactions_per_user=10,
        feature_noise=0.2)
    c.sets.train.update(num_epochs=80, patience=20, batch_size=256)
    c.sets.ckpt.every_epochs = 80
    c.sets.optim = {'lr': 5e-3}
  c.user_groups = (0, 6, 1e9)  # Cold users: at most 5 training interactions.
  if args.models:
    keep = args.models.split('+')
    unknown = sorted(set(keep) - set(c.models))
    if unknown:
      raise ValueError(f'models={args.models}: unknown {unknown}; known: '
                       f'{sorted(c.models)}')
    c.models = {k: v for k, v in c.models.items() if k in keep}
    used = {m.counterpart for m in c.models.values()}
    c.counterparts = {k: v for k, v in c.counterparts.items() if k in used}
  if args.seeds:
    c.final_seeds = tuple(range(args.seeds))
  if args.runlocal:
    c.name += '_runlocal'
    c.models = {k: v for k, v in c.models.items() if k == 'vbpr'}
    c.counterparts = {'bprmf': c.counterparts.bprmf.to_dict()}
    c.references = {}
    c.grid = {}
    c.final_seeds = (0, 1)
    c.controls = ('real', 'shuffle_visual', 'none')
    c.num_boot = 2000
    synthetic.update(num_users=300, num_items=200, interactions_per_user=15,
                     feature_dim=16)
    c.sets.data.overrides = {'seed': 0, 'synthetic': synthetic}
    c.sets.train = {'num_epochs': 10, 'patience': 2, 'batch_size': 256,
                    'eval_every_epochs': 2}
    c.sets.ckpt = {'every_epochs': 10, 'keep': 1}
    # Keeps the cold-only evaluator of the cold-item split.
    c.sets.eval = {**(c.sets.eval.to_dict() if 'eval' in c.sets else {}),
                   'batch_users': 128}
    # The tiny data has no user with 5 or fewer training interactions: cold
    # users here have at most 9 (about a third of them).
    c.user_groups = (0, 10, 1e9)
  return c
