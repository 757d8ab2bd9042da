"""Tests for image loading: every bad-input case has its documented outcome."""

import io
import os

from absl.testing import absltest
import numpy as np
from PIL import Image

from mmjax.features import images
from tests.testing import fixtures


class LoadRgbTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.dir = fixtures.new_tempdir(self)
    self.rng = np.random.default_rng([3, 1])

  def _path(self, name):
    return os.path.join(self.dir, name)

  def _rgb(self, h=24, w=32):
    return self.rng.integers(0, 256, (h, w, 3), dtype=np.uint8)

  def test_rgb_png_round_trip_exact(self):
    a = self._rgb()
    Image.fromarray(a).save(self._path('a.png'))
    im, reason = images.load_rgb(self._path('a.png'))
    self.assertIsNone(reason)
    self.assertEqual(im.mode, 'RGB')
    np.testing.assert_array_equal(np.asarray(im), a)

  def test_missing_and_none_fail(self):
    im, reason = images.load_rgb(self._path('nope.png'))
    self.assertIsNone(im)
    self.assertIn('missing', reason)
    im, reason = images.load_rgb(None)
    self.assertEqual((im, reason), (None, 'no image'))

  def test_corrupt_fails(self):
    with open(self._path('bad.jpg'), 'wb') as f:
      f.write(b'\xff\xd8\xff\xe0 this is not really a jpeg')
    im, reason = images.load_rgb(self._path('bad.jpg'))
    self.assertIsNone(im)
    self.assertIn('unreadable image', reason)

  def test_truncated_png_and_jpeg_fail(self):
    for fmt in ('PNG', 'JPEG'):
      buf = io.BytesIO()
      Image.fromarray(self._rgb(64, 64)).save(buf, fmt)
      data = buf.getvalue()
      path = self._path(f'cut.{fmt.lower()}')
      with open(path, 'wb') as f:
        f.write(data[: len(data) // 2])
      im, reason = images.load_rgb(path)
      self.assertIsNone(im, fmt)
      self.assertIn('unreadable image', reason)

  def test_grayscale_cmyk_16bit_become_rgb(self):
    g = self.rng.integers(0, 256, (10, 12), dtype=np.uint8)
    Image.fromarray(g, 'L').save(self._path('g.png'))
    im, _ = images.load_rgb(self._path('g.png'))
    np.testing.assert_array_equal(np.asarray(im), np.repeat(g[..., None], 3, 2))
    Image.new('CMYK', (8, 6), (0, 255, 255, 0)).save(self._path('c.jpg'))
    im, reason = images.load_rgb(self._path('c.jpg'))
    self.assertIsNone(reason)
    self.assertEqual((im.mode, im.size), ('RGB', (8, 6)))
    r, g2, b = np.asarray(im, np.int32).reshape(-1, 3).mean(0)
    self.assertGreater(r, 200)  # Pure magenta+yellow ink reads as red.
    self.assertLess(max(g2, b), 60)
    a16 = np.array([[0, 1000], [30000, 65535]], np.uint16)
    Image.fromarray(a16).save(self._path('i16.png'))
    im, reason = images.load_rgb(self._path('i16.png'))
    self.assertIsNone(reason)
    self.assertEqual(np.asarray(im)[..., 0].tolist(), [[0, 4], [117, 255]])
    # A dark 16-bit image stays dark: scaled by the format's range (/257),
    # not stretched to its own min and max.
    dark = np.array([[0, 257], [514, 1028]], np.uint16)
    Image.fromarray(dark).save(self._path('dark16.png'))
    im, _ = images.load_rgb(self._path('dark16.png'))
    self.assertEqual(np.asarray(im)[..., 0].tolist(), [[0, 1], [2, 4]])
    f = np.array([[0.0, 0.5], [1.0, 0.25]], np.float32)
    Image.fromarray(f, mode='F').save(self._path('f.tiff'))
    im, _ = images.load_rgb(self._path('f.tiff'))
    self.assertEqual(np.asarray(im)[..., 0].tolist(), [[0, 128], [255, 64]])

  def test_rgba_and_palette_transparency_composited_on_white(self):
    a = np.zeros((4, 4, 4), np.uint8)
    a[..., 0] = 200
    a[:2, :, 3] = 255  # Top half opaque red, bottom half fully transparent.
    Image.fromarray(a, 'RGBA').save(self._path('t.png'))
    im, _ = images.load_rgb(self._path('t.png'))
    px = np.asarray(im)
    np.testing.assert_array_equal(px[0, 0], [200, 0, 0])
    np.testing.assert_array_equal(px[3, 3], [255, 255, 255])
    p = Image.new('P', (3, 3), 0)
    p.putpalette([10, 20, 30, 0, 0, 0] + [0] * 762)
    p.putpixel((1, 1), 1)
    p.info['transparency'] = 1
    p.save(self._path('p.png'), transparency=1)
    im, reason = images.load_rgb(self._path('p.png'))
    self.assertIsNone(reason)
    px = np.asarray(im)
    np.testing.assert_array_equal(px[0, 0], [10, 20, 30])
    np.testing.assert_array_equal(px[1, 1], [255, 255, 255])

  def test_tiny_kept_and_large_downscaled(self):
    Image.new('RGB', (1, 1), (1, 2, 3)).save(self._path('one.png'))
    im, _ = images.load_rgb(self._path('one.png'))
    self.assertEqual(im.size, (1, 1))
    Image.new('RGB', (4000, 4000), (9, 99, 199)).save(
        self._path('big.jpg'), quality=80)
    im, reason = images.load_rgb(self._path('big.jpg'))
    self.assertIsNone(reason)
    self.assertLessEqual(max(im.size), images.MAX_SIDE)
    np.testing.assert_allclose(np.asarray(im, float).mean((0, 1)),
                               [9, 99, 199], atol=3)

  def test_decompression_bomb_fails(self):
    Image.new('RGB', (300, 300)).save(self._path('bomb.png'))
    old = Image.MAX_IMAGE_PIXELS
    self.addCleanup(setattr, Image, 'MAX_IMAGE_PIXELS', old)
    Image.MAX_IMAGE_PIXELS = 10_000  # 90k pixels is then over 2x the limit.
    im, reason = images.load_rgb(self._path('bomb.png'))
    self.assertIsNone(im)
    self.assertIn('decompression-bomb', reason)
    Image.MAX_IMAGE_PIXELS = 60_000  # Between 1x and 2x: PIL only warns.
    im, reason = images.load_rgb(self._path('bomb.png'))
    self.assertIn('decompression-bomb', reason)

  def test_load_batch_reports_by_item(self):
    Image.fromarray(self._rgb()).save(self._path('ok.png'))
    ims, failed = images.load_batch(
        [self._path('ok.png'), None, self._path('gone.png')],
        np.array([7, 8, 9]))
    self.assertIsNotNone(ims[0])
    self.assertEqual(sorted(failed), [8, 9])


if __name__ == '__main__':
  absltest.main()
