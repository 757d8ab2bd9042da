"""Structured LVLM prompts: a template family per domain, three kinds each.

Kinds (the protocol of Pomo et al., CIKM 2025, whose prompts and outputs are
public in the repository
matteoattimonelli/On-the-Importance-of-Item-Representations-in-MMRS):
  'fitb': fill in the blanks of five named slots, answered as
    `[Slot] {value}, ...`; the answer is parsed by `slots.py` and becomes
    one-hot side content (`keywords.py`).
  'description': a description of the visual content in at most 30 words.
  'misaligned': a task-misaligned control ("... how you can use this
    instrument for building a rocket"), which still shows the image to the
    model but asks for nothing about the item. It is a weak-content control,
    not a null: models often describe the image before answering.

Where each domain's slots and wording come from (`source_of(domain)`):
  movies    the study's MovieLens prompts (FITB and description):
            [Genre], [Audience], [Visual Format], [Mood], [Setting]. The
            MovieLens outputs the study published use exactly these names.
  baby      the study's Amazon Baby prompts (FITB and description):
            [Category], [Age Group], [Purpose], [Material], [Usage Context];
            its published Baby outputs use these names.
  pets      the study's Amazon Pets FITB prompt: [Category], [Pet Type],
            [Purpose], [Material], [Usage Context]. The study published no
            Pets description prompt; mmjax's follows the Baby one.
  clothing  the study's Amazon Clothing FITB prompt: [Type], [Color],
            [Wear Location], [Material], [Style]. The description prompt is
            mmjax's, in the Baby one's pattern.
  recipes   the study's Allrecipes prompts (FITB and description):
            [Dish Type], [Cuisine], [Primary Ingredient], [Flavor Profile],
            [Meal Type]; its example answer separates the slots by spaces,
            not commas, and so do its published outputs. The description
            prompt is reproduced as published, "arecipe" included.
  products  mmjax's own choice, not from a published study: a generic
            product family ([Category], [Target User], [Purpose],
            [Material], [Usage Context]) for catalogues the study did not
            cover.
The study's texts are reproduced character for character, typographic
apostrophes (’) included, so embeddings extracted here are comparable with
its published outputs. Every prompt has a stable sha256 of its text,
recorded in manifests; changing a prompt's wording changes its hash and
therefore the extraction spec, so stale features are never mixed with new
ones.

  prompt = prompts.get_prompt('movies', 'fitb')
  prompt.text, prompt.slots, prompt.sha256
"""

from __future__ import annotations

import dataclasses
import hashlib

KINDS = ('fitb', 'description', 'misaligned')

_STUDY = ('the {} of Pomo et al., CIKM 2025 (published in '
          'matteoattimonelli/On-the-Importance-of-Item-Representations-in-'
          'MMRS, README.md)')


@dataclasses.dataclass(frozen=True)
class _Family:
  """A domain's prompts. `fitb` names `slots` in its 'Fill in the blanks'."""

  slots: tuple[str, ...]
  fitb: str
  description: str
  source: str


def _fitb_text(subject: str, slots, examples) -> str:
  """A FITB prompt in the pattern of the study's Baby and MovieLens ones."""
  blanks = ', '.join(f'[{s}]' for s in slots)
  example = ', '.join(f'[{s}] {{{v}}}' for s, v in zip(slots, examples))
  return (
      f'Imagine you’re creating metadata for an image database of {subject}. '
      'Your task is to select five keywords that best represent the image '
      f'content. Fill in the blanks: {blanks}. For example, your answer will '
      f'be: {example}.'
  )


def _description_text(subject: str) -> str:
  """A description prompt in the pattern of the study's Baby one."""
  return (
      f'Imagine you’re creating metadata for an image database of {subject}. '
      'Your task is to produce a comprehensive yet concise description that '
      'accurately represents the visual content of the image in 30 words at '
      'most.'
  )


_MOVIES = ('Genre', 'Audience', 'Visual Format', 'Mood', 'Setting')
_BABY = ('Category', 'Age Group', 'Purpose', 'Material', 'Usage Context')
_PETS = ('Category', 'Pet Type', 'Purpose', 'Material', 'Usage Context')
_CLOTHING = ('Type', 'Color', 'Wear Location', 'Material', 'Style')
_RECIPES = ('Dish Type', 'Cuisine', 'Primary Ingredient', 'Flavor Profile',
            'Meal Type')
_PRODUCTS = ('Category', 'Target User', 'Purpose', 'Material',
             'Usage Context')

_FAMILIES = {
    'movies': _Family(
        _MOVIES,
        _fitb_text('movie posters', _MOVIES,
                   ('Comedy', 'Adults', 'Live Action', 'Witty', 'Urban')),
        _description_text('movie posters'),
        _STUDY.format('MovieLens FITB and description prompts')),
    'baby': _Family(
        _BABY,
        _fitb_text('baby products', _BABY,
                   ('Feeding', 'Infant', 'Hygiene', 'Silicone', 'Home')),
        _description_text('baby products'),
        _STUDY.format('Baby FITB and description prompts')),
    'pets': _Family(
        _PETS,
        _fitb_text('pet-related items', _PETS,
                   ('Toys', 'Dog', 'Entertainment', 'Rubber', 'Outdoor')),
        _description_text('pet-related items'),
        _STUDY.format('Pets FITB prompt') + '; the description prompt is '
        'mmjax\'s, in the pattern of the study\'s Baby one'),
    'clothing': _Family(
        _CLOTHING,
        # Published with an ASCII apostrophe and lower-case examples.
        "Imagine you're creating metadata for an image database of clothing "
        'items. Your task is to select five keywords that best represent the '
        'image content. Fill in the blanks: [Type], [Color], [Wear Location], '
        '[Material], [Style]. For example, your answer will be: [Type] '
        '{dress}, [Color] {red}, [Wear Location] {torso}, [Material] '
        '{cotton}, [Style] {casual}.',
        _description_text('clothing items'),
        _STUDY.format('Clothing FITB prompt') + '; the description prompt is '
        'mmjax\'s, in the pattern of the study\'s Baby one'),
    'recipes': _Family(
        _RECIPES,
        'Imagine you’re creating metadata for a recipe recommendation '
        'system. Select five keywords that best represent the dish shown in '
        'the image. Fill in the blanks: [Dish Type], [Cuisine], [Primary '
        'Ingredient], [Flavor Profile], [Meal Type]. For example, your '
        'answer will be: [Dish Type] {Pasta} [Cuisine] {Italian} [Primary '
        'Ingredient] {Cheese} [Flavor Profile] {Savory} [Meal Type] '
        '{Dinner}.',
        # Sic: "arecipe", as published (and as the study's models read it).
        'Imagine you’re creating metadata for arecipe recommendation system. '
        'Your task is to produce a comprehensive yet concise description '
        'that accurately represents the visual content of the image in 30 '
        'words at most.',
        _STUDY.format('Allrecipes FITB and description prompts')),
    'products': _Family(
        _PRODUCTS,
        _fitb_text('products', _PRODUCTS,
                   ('Kitchen Tool', 'Home Cooks', 'Food Preparation',
                    'Stainless Steel', 'Kitchen')),
        _description_text('products'),
        "mmjax's own choice, not from a published study (the pattern of the "
        "study's Baby prompts with generic slots)"),
}
DOMAINS = tuple(_FAMILIES)

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


def _family(domain: str) -> _Family:
  if domain not in _FAMILIES:
    raise ValueError(f'unknown prompt domain {domain!r}; have {DOMAINS}.')
  return _FAMILIES[domain]


def get_prompt(domain: str, kind: str) -> Prompt:
  """The prompt of a domain and kind.

  Args:
    domain: 'movies' | 'baby' | 'pets' | 'clothing' | 'recipes' | 'products'.
    kind: 'fitb' | 'description' | 'misaligned'.

  Raises:
    ValueError: unknown domain or kind.
  """
  family = _family(domain)
  if kind not in KINDS:
    raise ValueError(f'unknown prompt kind {kind!r}; have {KINDS}.')
  if kind == 'fitb':
    return Prompt(domain, kind, family.fitb, family.slots)
  if kind == 'description':
    return Prompt(domain, kind, family.description)
  return Prompt(domain, kind, _MISALIGNED)


def slots_of(domain: str) -> tuple[str, ...]:
  """The five FITB slot names of a domain."""
  return _family(domain).slots


def source_of(domain: str) -> str:
  """Where a domain's slots and wording come from (module docstring)."""
  return _family(domain).source


def custom_prompt(text: str, slots: tuple[str, ...] = ()) -> Prompt:
  """A prompt given verbatim in a config (domain 'custom')."""
  if not text or not text.strip():
    raise ValueError('a custom prompt needs non-empty text.')
  return Prompt('custom', 'fitb' if slots else 'custom', text, tuple(slots))
