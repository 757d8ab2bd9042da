r"""Items/s of the LVLM extractor.

  python bench/lvlm_speed.py [--items 16] [--batch_size 8] [--new_tokens 8]
  python bench/lvlm_speed.py --arch qwen2vl_2b --device cuda --dtype bfloat16 \
      --items 64 --batch_size 16 --new_tokens 32       # on a GPU

Architectures: 'qwen2vl' and 'idefics3' are the tiny random models of the
tests (hidden size 32, 2 layers; they measure the pipeline's overhead:
image decode, processor, chat template, generation loop, the forward pass
after generation); 'qwen2vl_2b' is the full-size Qwen2-VL-2B architecture
(1536 hidden, 28 layers, 675M-parameter vision tower, 151,936-token
vocabulary) built from its config with random weights: speed depends on
shapes, not weights. Greedy decoding generates exactly --new_tokens tokens
per item (min_new_tokens = max_new_tokens). Images are random 256x256 PNGs,
resized by the processor to at most --max_pixels. Timings exclude model
building and one warm-up batch. Prints a Markdown table with the machine and date.

Measured 2026-11-23 on the 2-core x86_64 CPU dev machine (torch 2.13.0+cpu,
2 threads, quiet machine), 16 items, batch 8, 8 new tokens, images
resized to 56x56:

| model | items/s |
|---|---|
| tiny Qwen2-VL (random) | 72.9 |
| tiny Idefics3 (random) | 83.6 |

No GPU was lent to this session, so the full-size Qwen2-VL-2B figure is not
measured here; run the second command above where a GPU exists.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmjax.features import base  # noqa: E402
from mmjax.features import lvlm  # noqa: E402
from tests.features import lvlm_test  # noqa: E402


def qwen2vl_2b(max_pixels: int):
  """Full-size Qwen2-VL-2B architecture, random weights, test tokenizer."""
  import torch  # pylint: disable=g-import-not-at-top
  import transformers  # pylint: disable=g-import-not-at-top

  model, processor = lvlm_test.tiny_qwen2vl()
  del model
  processor.image_processor.max_pixels = max_pixels
  tok = processor.tokenizer
  ids = tok.convert_tokens_to_ids
  config = transformers.Qwen2VLConfig(
      text_config=dict(
          vocab_size=151936, hidden_size=1536, intermediate_size=8960,
          num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
          max_position_embeddings=32768,
          rope_parameters={'rope_type': 'default',
                           'mrope_section': [16, 24, 24],
                           'rope_theta': 1000000.0},
          bos_token_id=ids('<|endoftext|>'), eos_token_id=ids('<|im_end|>'),
          pad_token_id=ids('<|endoftext|>'), tie_word_embeddings=True),
      vision_config=dict(depth=32, embed_dim=1280, hidden_size=1536,
                         num_heads=16, mlp_ratio=4, patch_size=14,
                         spatial_merge_size=2, temporal_patch_size=2),
      image_token_id=ids('<|image_pad|>'), video_token_id=ids('<|video_pad|>'),
      vision_start_token_id=ids('<|vision_start|>'),
      vision_end_token_id=ids('<|vision_end|>'))
  torch.manual_seed(0)
  return transformers.Qwen2VLForConditionalGeneration(config).eval(), processor


def measure(arch: str, args) -> float:
  import torch  # pylint: disable=g-import-not-at-top

  if arch == 'qwen2vl_2b':
    model, processor = qwen2vl_2b(args.max_pixels)
  else:
    model, processor = lvlm_test.BUILDERS[arch]()
    if arch == 'qwen2vl':
      processor.image_processor.max_pixels = args.max_pixels
  # Exactly --new_tokens per item: speed must not depend on when a random
  # model happens to emit end-of-sequence.
  spec = lvlm_test.lvlm_spec(max_new_tokens=args.new_tokens,
                             min_new_tokens=args.new_tokens,
                             device=args.device, dtype=args.dtype)
  if args.dtype != 'float32':
    model.to(base.torch_dtype(args.dtype, base.torch_device(args.device)))
  ex = lvlm.LVLMExtractor(spec, model=model, processor=processor)
  with tempfile.TemporaryDirectory() as tmp:
    rng = np.random.default_rng([0, 5])
    paths = []
    for i in range(args.items + args.batch_size):
      p = os.path.join(tmp, f'{i}.png')
      Image.fromarray(rng.integers(0, 256, (256, 256, 3), np.uint8)).save(p)
      paths.append(p)
    warm = lvlm_test.make_batch(paths[:args.batch_size])
    ex.extract(warm)
    batch = lvlm_test.make_batch(paths[args.batch_size:])
    if args.device.startswith('cuda'):
      torch.cuda.synchronize()
    start = time.perf_counter()
    for s in range(0, args.items, args.batch_size):
      sub = base.ItemBatch(batch.items[s:s + args.batch_size],
                           batch.raw_ids[s:s + args.batch_size],
                           batch.rows[s:s + args.batch_size],
                           batch.image_paths[s:s + args.batch_size])
      r = ex.extract(sub)
      assert not r.failed, r.failed
    if args.device.startswith('cuda'):
      torch.cuda.synchronize()
    return args.items / (time.perf_counter() - start)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--arch', default='qwen2vl,idefics3')
  parser.add_argument('--items', type=int, default=16)
  parser.add_argument('--batch_size', type=int, default=8)
  parser.add_argument('--new_tokens', type=int, default=8)
  parser.add_argument('--max_pixels', type=int, default=56 * 56)
  parser.add_argument('--device', default='cpu')
  parser.add_argument('--dtype', default='float32')
  parser.add_argument('--threads', type=int, default=2)
  args = parser.parse_args()
  import torch  # pylint: disable=g-import-not-at-top

  torch.set_num_threads(args.threads)
  names = {'qwen2vl': 'tiny Qwen2-VL (random)',
           'idefics3': 'tiny Idefics3 (random)',
           'qwen2vl_2b': 'Qwen2-VL-2B architecture (random)'}
  device = (torch.cuda.get_device_name(0) if args.device.startswith('cuda')
            else f'{platform.machine()} CPU, {args.threads} threads')
  print(f'{datetime.date.today()} on {device}, torch {torch.__version__}, '
        f'{args.items} items, batch {args.batch_size}, {args.new_tokens} new '
        f'tokens, max_pixels {args.max_pixels}, {args.dtype}\n')
  print('| model | items/s |\n|---|---|')
  for arch in args.arch.split(','):
    print(f'| {names[arch]} | {measure(arch, args):.1f} |', flush=True)


if __name__ == '__main__':
  main()
