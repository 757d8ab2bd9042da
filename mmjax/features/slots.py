"""Parses generated fill-in-the-blank text into the slots of its prompt.

LVLM answers to a FITB prompt (`prompts.py`) are meant to read
`[Genre] {Comedy}, [Audience] {Adults}, ...` but real outputs vary (see
../shared/data/README.md). The parser accepts, per slot:
  * `[Key] {value}` and `[Key]: value`, with mismatched closers (`{School]`),
    missing closers (`{Rural Farm` at the end) and missing braces
    (`[Genre] Action, [Audience] Adults`);
  * `Key: value` lines or comma-separated pairs, optionally with markdown bold
    (`**Genre:** Comedy`), bullets or numbers;
  * slots in any order, separated by commas, semicolons or newlines
    (multi-line cells), a trailing period, extra prose before or after;
  * the whole answer wrapped as a Python list literal (`['[Genre] {...}']`).
Keys match case-insensitively and ignore spacing, '_' and '-'
('visual_format' == 'Visual Format').

One repair is made, and only when it is unambiguous: a single unknown
bracketed key with a braced value (`[Blood Simple] {Drama}`: the model wrote
the title where the slot name belongs) fills the one missing slot if it stands
at that slot's position in the template order.

Nothing is guessed beyond that. An answer is
  'ok'       when every slot has a value,
  'partial'  when at least `min_slots` do (the others stay absent),
  'unparsed' otherwise, with a reason: 'empty', 'refusal' (an apology or
             refusal and too few slots), 'degenerate' (a phrase repeated over
             and over, or slot keys repeated), 'conflict' (one slot given
             two different values), or 'too few slots'.
Bare bracket lists with no keys (`[Titanic], [Adults], [Poster], ...`) are
unparsed: position alone does not say which slot a value fills (here the
first is the title, not the genre).
"""

from __future__ import annotations

import ast
import collections
import dataclasses
import re
from typing import Iterable, Sequence

OK = 'ok'
PARTIAL = 'partial'
UNPARSED = 'unparsed'

# A value longer than this is prose that swallowed a slot, not a keyword.
MAX_VALUE_WORDS = 12
_REFUSAL = re.compile(
    r"\b(sorry|apologi[sz]e|i cannot|i can't|i can not|i am unable|i'm unable|"
    r'unable to|not able to|as an ai|cannot assist|cannot help)\b',
    re.IGNORECASE,
)
_WORD = re.compile(r"[\w']+", re.UNICODE)
_CLOSERS_OF = {'{': '}]', '(': ')', '[': ']}'}


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
  """

  slots: dict[str, str]
  status: str
  reason: str | None = None
  rejected: dict[str, str] = dataclasses.field(default_factory=dict)

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


def _clean_value(region: str) -> str:
  """The value at the start of a region (text after a key, before the next)."""
  s = region.strip()
  s = re.sub(r'^[:=\-–]\s*', '', s)
  s = s.replace('**', '').replace('__', '').strip()
  if s[:1] in _CLOSERS_OF:
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
  s = s.strip(' \t,;.:"\'`*{}[]')
  return s.strip()


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
    # `[Key]` anywhere, optionally followed by ':'.
    bracket = rf'\[\s*(?P<b>{alternatives})\s*\]\s*:?'
    # `Key:` at the start of a line or after a separator, with optional
    # bullets, numbering and markdown bold around the key.
    line = (
        rf'(?:(?<=^)|(?<=[\n,;]))[ \t]*(?:[-*•]+\s*|\d+[.)]\s*)?(?:\*\*)?'
        rf'(?P<l>{alternatives})(?:\*\*)?\s*(?:\*\*)?:(?:\*\*)?'
    )
    self._key_re = re.compile(f'{bracket}|{line}', re.IGNORECASE | re.M)
    # Other bracketed tokens: end the previous value, and may stand for a
    # slot whose name the model replaced (see the module docstring).
    self._other_re = re.compile(r'\[(?P<o>[^\[\]{}\n]{1,80})\]')

  def parse(self, text: str | None) -> Parsed:
    """Parses one answer (see the module docstring for the rules)."""
    if text is None or not str(text).strip():
      return Parsed({}, UNPARSED, 'empty')
    s = _unwrap_list_literal(str(text)).replace('\r\n', '\n').replace(
        '\r', '\n')
    markers = []  # (start, end, slot or None, unknown key text)
    for m in self._key_re.finditer(s):
      key = m.group('b') or m.group('l')
      markers.append((m.start(), m.end(), self._by_key[_canon_key(key)], None))
    taken = [(a, b) for a, b, _, _ in markers]
    for m in self._other_re.finditer(s):
      if any(a <= m.start() < b or m.start() <= a < m.end() for a, b in taken):
        continue
      markers.append((m.start(), m.end(), None, m.group('o')))
    markers.sort()
    found: dict[str, str] = {}
    key_counts = collections.Counter()
    conflict = degenerate = False
    rejected: dict[str, str] = {}
    unknown = []  # (marker index, value) of unknown keys with braced values
    for k, (_, end, slot, _) in enumerate(markers):
      stop = markers[k + 1][0] if k + 1 < len(markers) else len(s)
      region = s[end:stop]
      if slot is None:
        if region.lstrip()[:1] == '{':
          value = _clean_value(region)
          if value:
            unknown.append((k, value))
        continue
      key_counts[slot] += 1
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
    missing = [x for x in self.slots if x not in found]
    if len(missing) == 1 and len(unknown) == 1:
      k, value = unknown[0]
      order = [m[2] for m in markers[:k] if m[2] is not None]
      # The unknown key stands where the missing slot belongs: all slots
      # before it in the template are exactly the keyed slots before it.
      want = self.slots.index(missing[0])
      if order == list(self.slots[:want]) and not is_degenerate(value):
        found[missing[0]] = value
    found = {x: found[x] for x in self.slots if x in found}
    rejected = {x: r for x, r in rejected.items() if x not in found}
    if len(found) == len(self.slots):
      return Parsed(found, OK)
    if len(found) >= self.min_slots:
      return Parsed(found, PARTIAL, rejected=rejected)
    if _REFUSAL.search(s):
      reason = 'refusal'
    elif degenerate or is_degenerate(s):
      reason = 'degenerate'
    else:
      reason = 'too few slots'
    return Parsed({}, UNPARSED, reason, rejected)

  def parse_many(
      self, texts: Iterable[str | None]
  ) -> tuple[list[Parsed], dict[str, int]]:
    """Parses many answers; returns them and counts by status and reason."""
    out = [self.parse(t) for t in texts]
    counts = collections.Counter(p.status for p in out)
    for p in out:
      if p.reason:
        counts[f'unparsed:{p.reason}'] += 1
    return out, dict(counts)


def parse(text: str | None, slots: Sequence[str], min_slots: int = 3) -> Parsed:
  """Parses one answer into `slots` (see `SlotParser`)."""
  return SlotParser(slots, min_slots).parse(text)
