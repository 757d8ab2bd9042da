"""Parses generated fill-in-the-blank text into the slots of its prompt.

LVLM answers to a FITB prompt (`prompts.py`) are meant to read
`[Genre] {Comedy}, [Audience] {Adults}, ...` but real outputs vary: the
published outputs of Pomo et al., CIKM 2025 (movies, recipes, baby
products) show every form below. The parser accepts, per slot:
  * `[Key] {value}` and `[Key]: value`, with mismatched closers (`{School]`),
    missing closers (`{Rural Farm` at the end) and missing braces
    (`[Genre] Action, [Audience] Adults`);
  * quoted keys in brackets: `['Category'] {Toys}` (or `["Category"]`);
  * bare keys followed by a braced value: `Dish Type {Soup} Cuisine {Thai}`,
    also mixed with bracketed keys in one answer
    (`Dish Type {Muffins} [Cuisine] {American} ...`);
  * a value in brackets right after its key: `Category: [Baby Care]`,
    `[Dish Type] [Steak]`;
  * `Key: value` lines or comma-separated pairs, optionally with markdown bold
    (`**Genre:** Comedy`), bullets or numbers;
  * slots in any order, separated by commas, semicolons or newlines
    (multi-line cells), a trailing period, extra prose before or after;
  * the whole answer wrapped as a Python list literal (`['[Genre] {...}']`);
  * the answer repeated in parentheses (`Category: Toys ... Usage Context:
    Home\\n\\n(Category: Toys ... Usage Context: Home)`): an unbalanced
    parenthesis at the edge of an unbraced value is not part of it, so the
    repeat gives each slot the same value again. A repeat with a different
    value for some slot stays a 'conflict'.
Keys match case-insensitively and ignore spacing, '_' and '-'
('visual_format' == 'Visual Format').

Repair by position. Models sometimes write a value where a slot's name
belongs: `[Blood Simple] {Drama}, [Audience] ...` (the title in place of
`[Genre]`), or `[Dessert] {French} [Primary Ingredient] {Apple} ...` (the
dish type in place of `[Dish Type]` and the cuisine as its braced value, so
two slots lost their names). Such unknown bracketed tokens fill the missing
slots only when the positions are otherwise intact:
  * read the answer as a sequence of units, one per keyed slot and one per
    unknown bracketed token, where `[X] {Y}` may be one unit (X a replaced
    slot name, Y the value) or two (X and Y two values in a row);
  * exactly one reading has one unit per template slot with every keyed
    unit at its slot's template position, and
  * at least `min_slots` slots are keyed, so the keyed slots anchor the
    positions (the repair completes a partial answer, never builds one).
Then each unknown unit fills the slot at its position. Otherwise the answer
keeps only its keyed slots and `Parsed.unrepaired` says why:
'not at the missing positions' (no reading fits, e.g. the unknown token
stands elsewhere or the count is off), 'ambiguous' (several readings fit),
'too few keyed slots', or 'unbraced token' (a bracketed token with no braced
value, `[Mortal Kombat], [Action], [Visual Format] ...`: a title and a genre
where the genre and audience belong; position cannot tell). An unknown
phrase without brackets (`Trifle {Dessert} [Cuisine] ...`) is never used:
whether the phrase or the braced word is the value cannot be told.

Nothing is guessed beyond that. An answer is
  'ok'       when every slot has a value,
  'partial'  when at least `min_slots` do (the others stay absent),
  'unparsed' otherwise, with a reason: 'empty', 'refusal' (an apology or
             refusal and too few slots), 'degenerate' (a phrase repeated over
             and over, or slot keys repeated), 'conflict' (one slot given
             two different values), or 'too few slots'.
Bare value lists with no keys (`[Titanic], [Adults], [Poster], ...`,
`Chocolate Cookie {Dessert} {American} ...`) are unparsed ('too few slots'):
position alone does not say which slot a value fills (here the first is the
title, not the genre).
"""

from __future__ import annotations

import ast
import collections
import dataclasses
import itertools
import re
from typing import Iterable, Sequence

OK = 'ok'
PARTIAL = 'partial'
UNPARSED = 'unparsed'

# A value longer than this is prose that swallowed a slot, not a keyword.
MAX_VALUE_WORDS = 12
# The most `[X] {Y}` tokens whose readings the position repair enumerates
# (2**n readings); more unknown tokens than this is prose, not a repair.
MAX_REPAIR_PAIRS = 6
_REFUSAL = re.compile(
    r"\b(sorry|apologi[sz]e|i cannot|i can't|i can not|i am unable|i'm unable|"
    r'unable to|not able to|as an ai|cannot assist|cannot help)\b',
    re.IGNORECASE,
)
_WORD = re.compile(r"[\w']+", re.UNICODE)
_CLOSERS_OF = {'{': '}]', '(': ')', '[': ']}'}
_EDGE_CHARS = ' \t,;.:"\'`*{}[]'


@dataclasses.dataclass
class Parsed:
  """The slots read from one answer.

  Attributes:
    slots: slot name (as in the template) -> value, for the slots found.
    status: 'ok' | 'partial' | 'unparsed'.
    reason: why the answer is unparsed (None otherwise).
    rejected: slot -> why a value given for it was not kept ('degenerate'
      or 'too long': prose that swallowed the slot); counted, not dropped
      silently.
    repaired: the slots filled by the position repair (module docstring).
    unrepaired: why unknown bracketed tokens did not fill the missing slots
      ('too few keyed slots', 'not at the missing positions', 'ambiguous',
      'unbraced token'); None when there was nothing to repair or the repair
      was made.
  """

  slots: dict[str, str]
  status: str
  reason: str | None = None
  rejected: dict[str, str] = dataclasses.field(default_factory=dict)
  repaired: tuple[str, ...] = ()
  unrepaired: str | None = None

  @property
  def parsed(self) -> bool:
    return self.status != UNPARSED


def _key_pattern(name: str) -> str:
  words = [re.escape(w) for w in re.split(r'[\s_-]+', name.strip()) if w]
  return r'[\s_-]*'.join(words)


def _canon_key(text: str) -> str:
  return re.sub(r'[\s_-]+', '', text).casefold()


def _unwrap_list_literal(text: str) -> str:
  """`['a', 'b']` -> 'a\\nb'; anything else unchanged."""
  s = text.strip()
  if len(s) >= 4 and s[0] == '[' and s[1] in '\'"' and s[-1] == ']' and (
      s[-2] in '\'"'):
    try:
      value = ast.literal_eval(s)
    except (ValueError, SyntaxError):
      # A truncated or oddly escaped literal: drop the wrapper by hand.
      return s[2:-2]
    if isinstance(value, (list, tuple)) and all(
        isinstance(v, str) for v in value):
      return '\n'.join(value)
  return text


def is_degenerate(text: str, min_repeats: int = 4, max_n: int = 4) -> bool:
  """True when some 1..max_n word phrase repeats min_repeats times in a row.

  ('the image the image the image the image', or 'Dark Dark Dark Dark').
  """
  words = [w.casefold() for w in _WORD.findall(text)]
  for n in range(1, max_n + 1):
    need = n * min_repeats
    if len(words) < need:
      break
    for start in range(len(words) - need + 1):
      gram = words[start:start + n]
      if all(words[start + k * n:start + (k + 1) * n] == gram
             for k in range(1, min_repeats)):
        return True
  return False


def _drop_unbalanced_parens(s: str) -> str:
  """'Home)' -> 'Home', 'Home (' -> 'Home'; 'Indoor (Studio)' unchanged.

  A parenthesis without its partner at the edge of an unbraced value belongs
  to a parenthesised repeat of the answer (module docstring), not the value.
  """
  s = s.rstrip(' \t(')
  if s.endswith(')') and s.count(')') > s.count('('):
    s = s[:-1]
  if s.startswith('(') and s.count('(') > s.count(')'):
    s = s[1:]
  return s.strip()


def _clean_value(region: str) -> str:
  """The value at the start of a region (text after a key, before the next)."""
  s = region.strip()
  s = re.sub(r'^[:=\-–]\s*', '', s)
  s = s.replace('**', '').replace('__', '').strip()
  braced = s[:1] in _CLOSERS_OF
  if braced:
    body = s[1:]
    # '{' closes with '}' or, as models sometimes write, ']' ({School]); a
    # ')' inside braces belongs to the value ({Indoor (Studio)}).
    cut = min((body.find(c) for c in _CLOSERS_OF[s[0]] if c in body),
              default=-1)
    s = body if cut < 0 else body[:cut]
  else:
    # No braces: the value runs to the end of its line.
    s = s.split('\n', 1)[0]
  s = re.sub(r'\s+', ' ', s).strip()
  s = s.strip(_EDGE_CHARS)
  if not braced:
    s = _drop_unbalanced_parens(s).strip(_EDGE_CHARS)
  return s.strip()


@dataclasses.dataclass(frozen=True)
class _Unit:
  """One slot-sized piece of an answer, in answer order (see `_repair`).

  slot: the slot a key names, or None for an unknown bracketed token.
  name: an unknown token's text ([X]); braced: its braced value ({Y}), if
  any.
  """

  slot: str | None
  name: str = ''
  braced: str | None = None


class SlotParser:
  """Parses answers to one FITB template.

  Args:
    slots: the template's slot names, in template order.
    min_slots: fewest slots for a 'partial' parse.
  """

  def __init__(self, slots: Sequence[str], min_slots: int = 3):
    if not slots:
      raise ValueError('a slot parser needs at least one slot name.')
    self.slots = tuple(slots)
    self.min_slots = min(int(min_slots), len(self.slots))
    self._by_key = {_canon_key(s): s for s in self.slots}
    alternatives = '|'.join(
        _key_pattern(s) for s in sorted(self.slots, key=len, reverse=True))
    # `[Key]` or `['Key']` anywhere, optionally followed by ':'.
    bracket = (r'\[\s*(?P<q>[\'"]?)(?P<b>' + alternatives +
               r')(?P=q)\s*\]\s*:?')
    # A key starts a line, follows a separator (',', ';', the '(' of a
    # repeated answer) or a closing brace or bracket (`{Soup} Cuisine {`).
    start = r'(?:(?<=^)|(?<=[\n,;(]))[ \t]*'
    # `Key:` with optional bullets, numbering and markdown bold around it.
    line = (start + r'(?:[-*•]+\s*|\d+[.)]\s*)?(?:\*\*)?(?P<l>' +
            alternatives + r')(?:\*\*)?\s*(?:\*\*)?:(?:\*\*)?')
    # `Key {value}`: a bare key directly before a braced value.
    bare = (r'(?:(?<=^)|(?<=[\n,;(}\]]))[ \t]*(?:\*\*)?(?P<k>' +
            alternatives + r')(?:\*\*)?[ \t]*(?=\{)')
    self._key_re = re.compile(f'{bracket}|{line}|{bare}',
                              re.IGNORECASE | re.M)
    # Other bracketed tokens: end the previous value, and may stand for a
    # slot whose name the model replaced (see the module docstring).
    self._other_re = re.compile(r'\[(?P<o>[^\[\]{}\n]{1,80})\]')

  def _markers(self, s: str) -> list[tuple[int, int, str | None, str]]:
    """(start, end, slot or None, unknown token text), in text order."""
    markers = []
    for m in self._key_re.finditer(s):
      key = m.group('b') or m.group('l') or m.group('k')
      markers.append((m.start(), m.end(), self._by_key[_canon_key(key)], ''))
    taken = [(a, b) for a, b, _, _ in markers]
    for m in self._other_re.finditer(s):
      if any(a <= m.start() < b or m.start() <= a < m.end() for a, b in taken):
        continue
      markers.append((m.start(), m.end(), None, m.group('o')))
    markers.sort()
    return markers

  def parse(self, text: str | None) -> Parsed:
    """Parses one answer (see the module docstring for the rules)."""
    if text is None or not str(text).strip():
      return Parsed({}, UNPARSED, 'empty')
    s = _unwrap_list_literal(str(text)).replace('\r\n', '\n').replace(
        '\r', '\n')
    markers = self._markers(s)
    found: dict[str, str] = {}
    key_counts = collections.Counter()
    conflict = degenerate = False
    rejected: dict[str, str] = {}
    units: list[_Unit] = []
    value_of_key = set()  # unknown tokens read as the value of the key before
    for k, (_, end, slot, other) in enumerate(markers):
      if k in value_of_key:
        continue
      stop = markers[k + 1][0] if k + 1 < len(markers) else len(s)
      region = s[end:stop]
      if slot is None:
        braced = (_clean_value(region) if region.lstrip()[:1] == '{'
                  else None)
        units.append(_Unit(None, other.strip(), braced or None))
        continue
      units.append(_Unit(slot))
      key_counts[slot] += 1
      if (k + 1 < len(markers) and markers[k + 1][2] is None and
          not region.strip().strip(':=-–').strip()):
        # `Category: [Baby Care]`: a bracketed token right after a key is
        # the key's value, not a replaced slot name.
        value_of_key.add(k + 1)
        nxt = markers[k + 1]
        value = _clean_value(s[nxt[0]:nxt[1]])
      else:
        value = _clean_value(region)
      if not value:
        continue
      if is_degenerate(value):
        degenerate = True
        rejected[slot] = 'degenerate'
        continue
      if len(_WORD.findall(value)) > MAX_VALUE_WORDS:
        rejected[slot] = 'too long'
        continue
      if slot in found and found[slot].casefold() != value.casefold():
        conflict = True
        continue
      found[slot] = value
    if key_counts and max(key_counts.values()) > 2:
      # Keys listed again and again: a loop, not an answer.
      return Parsed({}, UNPARSED, 'degenerate')
    if conflict:
      return Parsed({}, UNPARSED, 'conflict')
    repaired, unrepaired = (), None
    if len(found) < len(self.slots) and any(u.slot is None for u in units):
      fill, unrepaired = self._repair(units)
      fill = {x: v for x, v in fill.items()
              if x not in found and x not in rejected and not is_degenerate(v)
              and len(_WORD.findall(v)) <= MAX_VALUE_WORDS}
      found.update(fill)
      repaired = tuple(x for x in self.slots if x in fill)
    found = {x: found[x] for x in self.slots if x in found}
    rejected = {x: r for x, r in rejected.items() if x not in found}
    if len(found) == len(self.slots):
      return Parsed(found, OK, repaired=repaired)
    if len(found) >= self.min_slots:
      return Parsed(found, PARTIAL, rejected=rejected, repaired=repaired,
                    unrepaired=unrepaired)
    if _REFUSAL.search(s):
      reason = 'refusal'
    elif degenerate or is_degenerate(s):
      reason = 'degenerate'
    else:
      reason = 'too few slots'
    return Parsed({}, UNPARSED, reason, rejected, unrepaired=unrepaired)

  def _repair(self, units: list[_Unit]) -> tuple[dict[str, str], str | None]:
    """Missing slots filled by template position (module docstring).

    Returns:
      (slot -> value, None) when exactly one reading fits; ({}, why) else.
    """
    if sum(u.slot is not None for u in units) < self.min_slots:
      return {}, 'too few keyed slots'
    pairs = [j for j, u in enumerate(units) if u.slot is None and u.braced]
    if len(pairs) > MAX_REPAIR_PAIRS:
      return {}, 'ambiguous'
    fits = []
    for split in itertools.product((False, True), repeat=len(pairs)):
      split_of = dict(zip(pairs, split))
      seq: list[tuple[str | None, str]] = []  # (slot of a key, or None; value)
      for j, u in enumerate(units):
        if u.slot is not None:
          seq.append((u.slot, ''))
        elif j not in split_of:
          seq.append((None, u.name))
        elif split_of[j]:
          seq += [(None, u.name), (None, u.braced)]
        else:
          # `[X] {Y}` as one unit: X stands where a slot name belongs.
          seq.append((None, u.braced))
      if len(seq) != len(self.slots) or any(
          key is not None and key != self.slots[p]
          for p, (key, _) in enumerate(seq)):
        continue
      fill = {self.slots[p]: _clean_value(v) for p, (key, v) in enumerate(seq)
              if key is None}
      if fill not in fits:
        fits.append(fill)
    if not fits:
      return {}, 'not at the missing positions'
    if len(fits) > 1:
      return {}, 'ambiguous'
    if any(u.slot is None and not u.braced for u in units):
      # `[Mortal Kombat], [Action], [Visual Format] ...`: a bracketed token
      # with no braced value may be a value or a title; filling by position
      # would make the title the genre.
      return {}, 'unbraced token'
    return fits[0], None

  def parse_many(
      self, texts: Iterable[str | None]
  ) -> tuple[list[Parsed], dict[str, int]]:
    """Parses many answers; returns them and counts by status and reason.

    Besides the statuses, counts 'unparsed:<reason>', 'repaired' (answers
    completed by the position repair) and 'unrepaired:<why>'.
    """
    out = [self.parse(t) for t in texts]
    counts = collections.Counter(p.status for p in out)
    for p in out:
      if p.reason:
        counts[f'unparsed:{p.reason}'] += 1
      if p.repaired:
        counts['repaired'] += 1
      if p.unrepaired:
        counts[f'unrepaired:{p.unrepaired}'] += 1
    return out, dict(counts)


def parse(text: str | None, slots: Sequence[str], min_slots: int = 3) -> Parsed:
  """Parses one answer into `slots` (see `SlotParser`)."""
  return SlotParser(slots, min_slots).parse(text)
