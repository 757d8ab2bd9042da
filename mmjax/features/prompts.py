"""Structured LVLM prompts: a template family per domain, three kinds each.

Kinds (the protocol of Pomo et al., CIKM 2025):
  'fitb': fill in the blanks of five named slots, answered as
    `[Slot] {value}, ...`; the answer is parsed by `slots.py` and becomes
    one-hot side content (`keywords.py`).
  'description': a description of the visual content in at most 30 words.
  'misaligned': a task-misaligned control ("... how you can use this
    instrument for building a rocket"), which still shows the image to the
    model but asks for nothing about the item. It is a weak-content control,
    not a null: models often describe the image before answering.

The movies family repeats the study's prompts word for word (see
../shared/data/README.md), so embeddings extracted here are comparable with
the shipped outputs. Every prompt has a stable sha256 of its text, recorded in
manifests; changing a prompt's wording changes its hash and therefore the
extraction spec, so stale features are never mixed with new ones.

  prompt = prompts.get_prompt('movies', 'fitb')
  prompt.text, prompt.slots, prompt.sha256
"""

from __future__ import annotations

import dataclasses
import hashlib

KINDS = ('fitb', 'description', 'misaligned')

# domain -> (subject phrase, five slots, an example value per slot).
_FITB = {
    'movies': (
        'movie posters',
        ('Genre', 'Audience', 'Visual Format', 'Mood', 'Setting'),
        ('Comedy', 'Adults', 'Live Action', 'Witty', 'Urban'),
    ),
    'baby': (
        'baby products',
        ('Category', 'Age Group', 'Purpose', 'Material', 'Usage Context'),
        ('Stroller', 'Infants', 'Transport', 'Aluminium', 'Outdoor'),
    ),
    'pets': (
        'pet supplies',
        ('Category', 'Animal', 'Purpose', 'Material', 'Usage Context'),
        ('Chew Toy', 'Dogs', 'Play', 'Rubber', 'Indoor'),
    ),
    'clothing': (
        'clothing, shoes and jewelry',
        ('Category', 'Gender', 'Style', 'Material', 'Occasion'),
        ('Dress', 'Women', 'Casual', 'Cotton', 'Summer'),
    ),
    'recipes': (
        'recipes',
        ('Dish Type', 'Cuisine', 'Main Ingredient', 'Cooking Method',
         'Occasion'),
        ('Soup', 'Italian', 'Tomato', 'Simmered', 'Weeknight Dinner'),
    ),
    'products': (
        'products',
        ('Category', 'Target User', 'Purpose', 'Material', 'Usage Context'),
        ('Kitchen Tool', 'Home Cooks', 'Food Preparation', 'Stainless Steel',
         'Kitchen'),
    ),
}
DOMAINS = tuple(_FITB)

_MISALIGNED = (
    'You are a computer scientist. Describe in fewer than 30 words how you '
    'can use this instrument for building a rocket.'
)


@dataclasses.dataclass(frozen=True)
class Prompt:
  """One prompt template.

  Attributes:
    domain: one of DOMAINS.
    kind: one of KINDS.
    text: the exact text given to the model with the image.
    slots: the slot names a 'fitb' answer fills, in order; () otherwise.
  """

  domain: str
  kind: str
  text: str
  slots: tuple[str, ...] = ()

  @property
  def sha256(self) -> str:
    return hashlib.sha256(self.text.encode('utf-8')).hexdigest()

  def manifest(self) -> dict[str, object]:
    """What a feature manifest records about the prompt."""
    return {
        'prompt_domain': self.domain,
        'prompt_kind': self.kind,
        'prompt': self.text,
        'prompt_sha256': self.sha256,
        'prompt_slots': list(self.slots),
    }


def _fitb_text(subject: str, slots, examples) -> str:
  blanks = ', '.join(f'[{s}]' for s in slots)
  example = ', '.join(f'[{s}] {{{v}}}' for s, v in zip(slots, examples))
  return (
      f"Imagine you're creating metadata for an image database of {subject}. "
      'Your task is to select five keywords that best represent the image '
      f'content. Fill in the blanks: {blanks}. For example, your answer will '
      f'be: {example}.'
  )


def _description_text(subject: str) -> str:
  return (
      f"Imagine you're creating metadata for an image database of {subject}. "
      'Your task is to produce a comprehensive yet concise description that '
      'accurately represents the visual content of the image in 30 words at '
      'most.'
  )


def get_prompt(domain: str, kind: str) -> Prompt:
  """The prompt of a domain and kind.

  Args:
    domain: 'movies' | 'baby' | 'pets' | 'clothing' | 'recipes' | 'products'.
    kind: 'fitb' | 'description' | 'misaligned'.

  Raises:
    ValueError: unknown domain or kind.
  """
  if domain not in _FITB:
    raise ValueError(f'unknown prompt domain {domain!r}; have {DOMAINS}.')
  if kind not in KINDS:
    raise ValueError(f'unknown prompt kind {kind!r}; have {KINDS}.')
  subject, slots, examples = _FITB[domain]
  if kind == 'fitb':
    return Prompt(domain, kind, _fitb_text(subject, slots, examples), slots)
  if kind == 'description':
    return Prompt(domain, kind, _description_text(subject))
  return Prompt(domain, kind, _MISALIGNED)


def slots_of(domain: str) -> tuple[str, ...]:
  """The five FITB slot names of a domain."""
  return get_prompt(domain, 'fitb').slots


def custom_prompt(text: str, slots: tuple[str, ...] = ()) -> Prompt:
  """A prompt given verbatim in a config (domain 'custom')."""
  if not text or not text.strip():
    raise ValueError('a custom prompt needs non-empty text.')
  return Prompt('custom', 'fitb' if slots else 'custom', text, tuple(slots))
