"""Inputs of the feature-extraction tests: items on disk, a weight-free
config and a tiny word-level tokenizer."""

import os

import ml_collections
import numpy as np
from PIL import Image

try:
  # The `extract` extra (transformers, tokenizers); without it
  # `build_tokenizer` is unavailable and the tests that need it skip.
  import tokenizers
  from tokenizers import models as tok_models
  from tokenizers import normalizers
  from tokenizers import pre_tokenizers
  from tokenizers import processors
  import transformers
except ImportError:
  tokenizers = None

from mmjax.data import dataset as dataset_lib
from mmjax.features import base

TITLES = [
    'Toy Story', 'Jumanji', 'Grumpier Old Men', 'Waiting to Exhale',
    'Father of the Bride', 'Heat', 'Sabrina', 'Tom and Huck', 'Sudden Death',
    'GoldenEye', 'The American President', 'Dracula: Dead and Loving It',
    'Balto', 'Nixon', 'Cutthroat Island', 'Casino', 'Sense and Sensibility',
    'Four Rooms', 'Ace Ventura', 'Money Train', 'Get Shorty', 'Copycat',
    'Assassins', 'Powder', 'Leaving Las Vegas', 'Othello', 'Now and Then',
]
GENRES = ['Comedy|Animation', 'Adventure|Fantasy', 'Comedy|Romance', 'Drama',
          'Action|Crime', 'Horror|Comedy']


def make_dataset(root: str, num_items: int = 13, *, with_images: bool = True,
                 seed: int = 0) -> dataset_lib.Dataset:
  """Writes a tiny dataset with titles, genres and small random PNG images."""
  rng = np.random.default_rng([seed, 7])
  item_ids = np.array([f'm{i}' for i in range(num_items)])
  n = 3 * num_items
  table = {
      'title': [TITLES[i % len(TITLES)] + (f' {i}' if i >= len(TITLES) else '')
                for i in range(num_items)],
      'genres': [GENRES[i % len(GENRES)] for i in range(num_items)],
  }
  if with_images:
    os.makedirs(os.path.join(root, 'images'), exist_ok=True)
    paths = []
    for i in range(num_items):
      size = (int(rng.integers(20, 48)), int(rng.integers(20, 48)))
      a = rng.integers(0, 256, size + (3,), dtype=np.uint8)
      rel = f'images/{item_ids[i]}.png'
      Image.fromarray(a).save(os.path.join(root, rel))
      paths.append(rel)
    table['image'] = paths
  ds = dataset_lib.Dataset(
      user=rng.integers(0, 5, n).astype(np.int32),
      item=(np.arange(n) % num_items).astype(np.int32),
      split=np.zeros(n, np.int8),
      user_ids=np.array([f'u{i}' for i in range(5)]),
      item_ids=item_ids,
      item_table=table,
  )
  dataset_lib.save(ds, root)
  return ds


def weightfree_config(dataset_dir: str, shard_size: int = 4,
                      batch_size: int = 3) -> ml_collections.ConfigDict:
  """An extraction config of two weight-free representations (no model)."""
  cfg = base.run_config(batch_size=batch_size, shard_size=shard_size,
                        device='cpu')
  cfg.dataset_dir = dataset_dir
  cfg.quiet = True
  cfg.representations = ml_collections.ConfigDict({
      'hist': {'extractor': 'weightfree', 'method': 'color_histogram',
               'bins': 4},
      'tfidf': {'extractor': 'weightfree', 'method': 'tfidf',
                'fields': ['title', 'genres']},
  })
  return cfg


# --- A word-level tokenizer for the tiny random text towers (CLIP, CLAP).

WORDS = ('toy story animation comedy heat action crime horror dark night '
         'the a of and city').split()
PAD, UNK, BOS, EOS = 0, 1, 3, 4  # Id 2 is avoided: CLIP treats eos=2 as legacy.


def build_tokenizer(max_length: int):
  """A fast tokenizer over `WORDS` that wraps each text in <bos> ... <eos>."""
  vocab = {'<pad>': PAD, '<unk>': UNK, '<reserved>': 2, '<bos>': BOS,
           '<eos>': EOS}
  for w in WORDS:
    vocab.setdefault(w, len(vocab))
  tok = tokenizers.Tokenizer(tok_models.WordLevel(vocab, unk_token='<unk>'))
  tok.normalizer = normalizers.Lowercase()
  tok.pre_tokenizer = pre_tokenizers.Whitespace()
  tok.post_processor = processors.TemplateProcessing(
      single='<bos> $A <eos>', special_tokens=[('<bos>', BOS), ('<eos>', EOS)])
  return transformers.PreTrainedTokenizerFast(
      tokenizer_object=tok, bos_token='<bos>', eos_token='<eos>',
      pad_token='<pad>', unk_token='<unk>', model_max_length=max_length)
