r"""Synthetic multimodal data with a planted answer: the quick start's default.

  python -m mmjax.data.prepare --config configs/data/synthetic.py
  python -m mmjax.data.prepare --config configs/data/synthetic.py:visual

Variants pick the signal preset: `both` (default), `visual`, `text`, `none`;
`large` gives 1M users x 100k items x 10M interactions (features emitted
directly, images for a 5k-item sample). See mmjax/data/synthetic.py.
"""

from mmjax.data import prepare


def get_config(arg: str | None = None):
  config = prepare.base_config()
  config.name = 'synthetic'
  config.format = 'synthetic'
  config.seed = 0
  config.min_user = 5
  config.min_item = 5
  config.split.kind = 'random'
  config.synthetic.preset = 'both'
  for variant in (arg or '').split(','):
    if variant in ('visual', 'text', 'none', 'both'):
      config.synthetic.preset = variant
      config.name = f'synthetic_{variant}'
    elif variant == 'large':
      config.name = 'synthetic_large'
      config.synthetic.num_users = 1_000_000
      config.synthetic.num_items = 100_000
      config.synthetic.interactions_per_user = 10
      config.min_user = config.min_item = 0
    elif variant:
      raise ValueError(f'unknown variant {variant!r}')
  return config
