"""Robust image loading for the extractors (PIL only, no torch).

Policy (see also `base.py`):
  * missing file, unreadable or corrupt data, truncated file, an image over
    PIL's decompression-bomb limit, zero-sized image -> the item fails with the
    reason (no partial image is ever encoded: truncated files are not padded
    with grey, as `ImageFile.LOAD_TRUNCATED_IMAGES` would do);
  * grayscale (L, I, I;16, F), CMYK, YCbCr, palette (P, with or without
    transparency), RGBA and LA -> RGB; transparent pixels are composited on
    white, so a transparent background reads as white, not black;
  * larger than `max_side` on a side -> downscaled on load (JPEG draft mode
    first, so a 4000x4000 poster never decodes at full size needlessly);
  * tiny images (1x1) are returned as they are: the model's processor resizes
    them to its input size.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
from PIL import Image

# Larger images are downscaled on load; processors resize to <= 518 anyway.
MAX_SIDE = 1024


def load_rgb(
    path: str | None, max_side: int = MAX_SIDE
) -> tuple[Image.Image | None, str | None]:
  """Loads an image as RGB.

  Args:
    path: an absolute path, or None for an item without an image.
    max_side: downscale so that neither side exceeds this (aspect kept).

  Returns:
    (image, None) on success, (None, reason) when the item must fail.
  """
  if path is None:
    return None, 'no image'
  if not os.path.exists(path):
    return None, f'image file missing: {path}'
  try:
    with warnings.catch_warnings():
      # PIL warns between 1x and 2x its pixel limit and raises beyond; treat
      # both as the same failure so the outcome does not depend on size.
      warnings.simplefilter('error', Image.DecompressionBombWarning)
      with Image.open(path) as im:
        if im.width < 1 or im.height < 1:
          return None, f'empty image ({im.width}x{im.height}): {path}'
        if max(im.size) > max_side and im.format == 'JPEG':
          im.draft('RGB', (max_side, max_side))
        im.load()
        rgb = to_rgb(im)
  except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
    return None, f'image too large (decompression-bomb limit): {path}: {e}'
  except (OSError, ValueError, SyntaxError, Image.UnidentifiedImageError) as e:
    # OSError covers 'image file is truncated' and unknown formats.
    return None, f'unreadable image: {path}: {type(e).__name__}: {e}'
  if max(rgb.size) > max_side:
    rgb.thumbnail((max_side, max_side), Image.Resampling.BICUBIC)
  return rgb, None


def to_rgb(im: Image.Image) -> Image.Image:
  """Converts any PIL mode to RGB, compositing transparency on white."""
  if im.mode == 'RGB':
    return im.copy()
  if im.mode == 'P':
    im = im.convert('RGBA' if 'transparency' in im.info else 'RGB')
  if im.mode in ('I;16', 'I;16B', 'I;16L', 'I', 'F'):
    # High bit-depth grayscale: scale by the format's range, not by the
    # image's own min and max (a stretch would make a dark image look like
    # a bright one). 16-bit: /257; 32-bit int or float: 0..255 data is kept,
    # 0..65535 data is scaled as 16-bit, 0..1 floats are scaled by 255.
    a = np.asarray(im, dtype=np.float64)
    hi = float(a.max()) if a.size else 0.0
    if im.mode.startswith('I;16') or hi > 255.0:
      a = a / 257.0
    elif im.mode == 'F' and hi <= 1.0:
      a = a * 255.0
    im = Image.fromarray(np.clip(a, 0.0, 255.0).round().astype(np.uint8),
                         mode='L')
  if im.mode in ('RGBA', 'LA', 'PA', 'RGBa', 'La'):
    rgba = im.convert('RGBA')
    background = Image.new('RGBA', rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert('RGB')
  return im.convert('RGB')


def load_batch(
    paths: list[str | None], items: np.ndarray, max_side: int = MAX_SIDE
) -> tuple[list[Image.Image | None], dict[int, str]]:
  """Loads a batch; returns images (None where failed) and item -> reason."""
  images, failed = [], {}
  for path, item in zip(paths, items):
    im, reason = load_rgb(path, max_side)
    images.append(im)
    if reason is not None:
      failed[int(item)] = reason
  return images, failed
