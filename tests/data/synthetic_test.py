"""Tests for the synthetic generator: determinism and planted signals."""

import hashlib
import os
import tempfile

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np

from mmjax.data import synthetic


def _cfg(preset, **kw):
  cfg = synthetic.default_config()
  cfg.num_users, cfg.num_items, cfg.interactions_per_user = 600, 200, 20
  cfg.preset = preset
  for k, v in kw.items():
    cfg[k] = v
  return cfg


def _lift(g, attr):
  """Mean share of a user's items with their preferred `attr`, over chance.

  Chance is the catalogue share of that attribute value, so 1 means no
  signal and larger values mean a planted preference.
  """
  pref = g['users'][attr][g['user']]
  hit = g['items'][attr][g['item']] == pref
  base = np.bincount(g['items'][attr]) / len(g['items'][attr])
  return hit.mean() / base[pref].mean()


class SyntheticTest(parameterized.TestCase):

  def test_same_seed_same_arrays_and_image_bytes(self):
    cfg = _cfg('both', num_users=50, num_items=60, max_images=12)
    digests = []
    raws = []
    for _ in range(2):
      with tempfile.TemporaryDirectory() as d:
        raws.append(synthetic.to_raw(cfg, 3, d))
        names = sorted(os.listdir(d))
        self.assertLen(names, 12)
        digests.append([(n, hashlib.sha256(
            open(os.path.join(d, n), 'rb').read()).hexdigest())
                        for n in names])
    self.assertEqual(digests[0], digests[1])
    a, b = raws
    for name in ('users', 'items', 'timestamp'):
      np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    self.assertEqual(a.item_table, b.item_table)
    for name in a.features:
      np.testing.assert_array_equal(a.features[name][0], b.features[name][0])
    other, feats = synthetic.generate(cfg, 4)
    self.assertEqual(sorted(feats), ['synthetic_text', 'synthetic_visual'])
    self.assertFalse(np.array_equal(a.items, other.items))

  def test_images_show_the_item_colour(self):
    from PIL import Image  # pylint: disable=g-import-not-at-top
    cfg = _cfg('both', num_users=20, num_items=40, max_images=40)
    with tempfile.TemporaryDirectory() as d:
      raw = synthetic.to_raw(cfg, 0, d)
      for raw_id, rec in list(raw.item_table.items())[:8]:
        img = Image.open(os.path.join(d, f'{raw_id}.png'))
        self.assertEqual(img.size, (32, 32))
        self.assertEqual(img.getpixel((0, 0)),
                         synthetic.RGB[rec['colour']])
        self.assertIn(rec['material'], rec['description'])
        self.assertEqual(rec['image'], f'images/{raw_id}.png')

  @parameterized.parameters(
      # preset, visual lift expected, text lift expected.
      ('visual', True, False),
      ('text', False, True),
      ('both', True, True),
      ('none', False, False),
  )
  def test_planted_signal_is_recoverable(self, preset, visual, text):
    g = synthetic.sample(_cfg(preset), seed=0)
    for attr, expected in (('colour', visual), ('material', text)):
      lift = _lift(g, attr)
      if expected:
        self.assertGreater(lift, 2.0, (preset, attr))
      else:
        self.assertBetween(lift, 0.85, 1.15)

  def test_features_carry_the_attributes(self):
    cfg = _cfg('none', feature_noise=0.3)
    raw = synthetic.to_raw(cfg, 0, None)
    colour = np.array([rec['colour'] for rec in raw.item_table.values()])
    material = np.array([rec['material'] for rec in raw.item_table.values()])

    def probe(x, labels):
      # Nearest-centroid accuracy with centroids from the other half.
      half = len(x) // 2
      names = sorted(set(labels))
      cent = np.stack([x[:half][labels[:half] == n].mean(0) for n in names])
      d = ((x[half:, None] - cent[None]) ** 2).sum(-1)
      return (np.asarray(names)[d.argmin(1)] == labels[half:]).mean()

    vis, rows = raw.features['synthetic_visual']
    txt, _ = raw.features['synthetic_text']
    np.testing.assert_array_equal(rows, list(raw.item_table))
    self.assertEqual(vis.shape, (200, 64))
    self.assertGreater(probe(vis, colour), 0.6)  # Chance: 1/8.
    self.assertGreater(probe(txt, material), 0.6)
    # The visual features know nothing about the material.
    self.assertLess(probe(vis, material), 0.35)

  def test_mixture_overrides_and_checks(self):
    self.assertEqual(synthetic.mixture(_cfg('visual'))['text_signal'], 0.0)
    w = synthetic.mixture(_cfg('none', visual_signal=0.2))
    self.assertEqual(w['visual_signal'], 0.2)
    self.assertAlmostEqual(w['popularity'], 0.3)
    with self.assertRaisesRegex(ValueError, 'sum to at most 1'):
      synthetic.mixture(_cfg('both', collaborative=0.9))
    with self.assertRaisesRegex(ValueError, 'unknown synthetic preset'):
      synthetic.mixture(_cfg('sound'))


if __name__ == '__main__':
  absltest.main()
