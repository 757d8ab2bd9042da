"""Keyword side content: normalise, merge near-duplicates, one-hot encode.

From parsed FITB answers (`slots.py`) to a one-hot item attribute matrix, as
in the CIKM 2025 protocol:
  1. normalise each slot value: Unicode NFKC, lowercase, possessive 's
     dropped, separators ('/', ',', '&', '+', '|', ';') unified to ' / ',
     other punctuation (hyphens included: 'Sci-Fi' == 'sci fi') turned into
     spaces, then each word lemmatised with simplemma (English; works
     offline): 'Comedies' -> 'comedy';
  2. per slot, merge near-duplicate values by clustering their sentence
     embeddings (all-MiniLM-L6-v2 by default, L2-normalised): cosine
     distance, average linkage, cut at distance 0.45 (scipy). A cluster is
     named by its most frequent member (ties: alphabetical);
  3. per slot, keep the 50 most frequent clusters (ties: alphabetical) plus
     'Other', which collects the rest;
  4. one-hot encode: item row = concatenation of one block per slot, in
     template order; a slot a partial answer lacks leaves its block zero.
     Items whose answer is unparsed are failed (masked), never guessed.

Multi-valued slots ('Romance, Comedy', 'Horror/Comedy') are kept as ONE
value, normalised to 'romance / comedy', not split into two columns. The
prompt asks for five keywords, one per blank, and each slot's block is a
one-hot: an item has one value per slot. Splitting would turn a block into a
multi-hot whose row sums depend on how talkative a model is, and would count
'romance' from 'Romance, Comedy' as if the model had answered 'Romance'. A
joined value still merges with its nearest single value when their MiniLM
embeddings are within the clustering threshold, or falls into 'Other' when
rare. In the real MovieLens outputs 0.01% (Phi-3.5) to 3.7% (Qwen2.5-VL-7B)
of slot values are multi-valued; the manifest counts them per slot
(`multi_valued`). 'N/A' is one value ('n/a'), not 'n' and 'a'.

The vocabulary (per slot: column labels, and which normalised values each
column holds) goes into the feature manifest so every column is explained.
"""

from __future__ import annotations

import collections
import dataclasses
import re
from typing import Callable, Sequence
import unicodedata

import numpy as np

OTHER = 'Other'
DEFAULT_THRESHOLD = 0.45
DEFAULT_TOP_K = 50

_SEPARATORS = re.compile(r'\s*[/,&+|;]\s*')
_POSSESSIVE = re.compile(r"['’]s\b")
_PUNCT = re.compile(r"[^\w\s/]", re.UNICODE)
# 'N/A' is a non-answer, not the two values 'n' and 'a'.
_NOT_APPLICABLE = re.compile(r'n\s*/\s*a\.?')

# texts -> float32 [n, D] L2-normalised embeddings.
Embedder = Callable[[Sequence[str]], np.ndarray]


def _lemmatize(word: str) -> str:
  import simplemma  # pylint: disable=g-import-not-at-top

  return simplemma.lemmatize(word, lang='en')


def normalize(value: str) -> str:
  """The normalised, lemmatised form of one slot value ('' if nothing left)."""
  s = unicodedata.normalize('NFKC', str(value)).lower().strip()
  if _NOT_APPLICABLE.fullmatch(s):
    return 'n/a'
  s = _POSSESSIVE.sub('', s)
  s = s.replace('_', ' ')
  s = _SEPARATORS.sub(' / ', s)
  s = _PUNCT.sub(' ', s)
  parts = []
  for part in s.split('/'):
    # simplemma capitalises some lemmas (proper nouns: 'Christmas').
    words = [_lemmatize(w).lower() for w in part.split()]
    if words:
      parts.append(' '.join(words))
  return ' / '.join(parts)


def is_multi_valued(normalized: str) -> bool:
  """Whether a normalised value joins several values ('romance / comedy')."""
  return ' / ' in normalized


def cluster_values(
    values: Sequence[str],
    counts: Sequence[int],
    embed: Embedder,
    threshold: float = DEFAULT_THRESHOLD,
) -> dict[str, str]:
  """Merges near-duplicate values; returns value -> cluster name.

  Args:
    values: distinct normalised values.
    counts: how many items hold each value (names the clusters).
    embed: the sentence embedder.
    threshold: cosine distance at which average-linkage merging stops.
  """
  values = list(values)
  if len(values) <= 1:
    return {v: v for v in values}
  from scipy.cluster import hierarchy  # pylint: disable=g-import-not-at-top

  emb = np.asarray(embed(values), np.float64)  # [n, D]
  assert emb.shape[0] == len(values), emb.shape
  emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
  z = hierarchy.linkage(emb, method='average', metric='cosine')
  labels = hierarchy.fcluster(z, t=threshold, criterion='distance')
  members = collections.defaultdict(list)
  for v, c, lab in zip(values, counts, labels):
    members[lab].append((-int(c), v))
  out = {}
  for group in members.values():
    name = min(group)[1]  # Most frequent, then alphabetical.
    for _, v in group:
      out[v] = name
  return out


def top_k_vocabulary(counts: dict[str, int], k: int = DEFAULT_TOP_K
                     ) -> list[str]:
  """The k most frequent values (ties alphabetical) followed by OTHER."""
  ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
  return [v for v, _ in ranked[:k] if v != OTHER] + [OTHER]


@dataclasses.dataclass
class Vocabulary:
  """Column layout of a one-hot keyword matrix.

  Attributes:
    slots: slot names, in block order.
    columns: slot -> column labels (top values, then OTHER).
    assign: slot -> {normalised value: column label}.
    members: slot -> {column label: sorted normalised values it holds}.
  """

  slots: list[str]
  columns: dict[str, list[str]]
  assign: dict[str, dict[str, str]]
  members: dict[str, dict[str, list[str]]]

  @property
  def dim(self) -> int:
    return sum(len(self.columns[s]) for s in self.slots)

  def offsets(self) -> dict[str, int]:
    out, start = {}, 0
    for s in self.slots:
      out[s] = start
      start += len(self.columns[s])
    return out

  def manifest(self) -> dict[str, object]:
    return {
        'slots': self.slots,
        'columns': self.columns,
        'column_members': self.members,
        'block_offsets': self.offsets(),
    }


def build_vocabulary(
    answers: Sequence[dict[str, str] | None],
    slots: Sequence[str],
    embed: Embedder | None,
    *,
    top_k: int = DEFAULT_TOP_K,
    threshold: float = DEFAULT_THRESHOLD,
) -> Vocabulary:
  """Fits the vocabulary on parsed answers (None = unparsed, skipped).

  Args:
    answers: per item, slot -> raw value, or None.
    slots: slot names in template order.
    embed: sentence embedder for merging; None skips merging (exact
      normalised values only).
    top_k: values kept per slot besides OTHER.
    threshold: clustering distance cut.
  """
  columns, assign, members = {}, {}, {}
  for slot in slots:
    counts = collections.Counter()
    for a in answers:
      if a and a.get(slot):
        v = normalize(a[slot])
        if v:
          counts[v] += 1
    values = sorted(counts)
    if embed is None:
      merged = {v: v for v in values}
    else:
      merged = cluster_values(values, [counts[v] for v in values], embed,
                              threshold)
    cluster_counts = collections.Counter()
    for v, n in counts.items():
      cluster_counts[merged[v]] += n
    cols = top_k_vocabulary(dict(cluster_counts), top_k)
    kept = set(cols)
    assign[slot] = {v: (merged[v] if merged[v] in kept else OTHER)
                    for v in values}
    groups = collections.defaultdict(list)
    for v, col in assign[slot].items():
      groups[col].append(v)
    columns[slot] = cols
    members[slot] = {c: sorted(groups.get(c, [])) for c in cols}
  return Vocabulary(list(slots), columns, assign, members)


def one_hot(
    answers: Sequence[dict[str, str] | None], vocab: Vocabulary
) -> np.ndarray:
  """float32 [len(answers), vocab.dim]; rows of None answers are zero.

  A value unseen when the vocabulary was fitted goes to OTHER.
  """
  out = np.zeros((len(answers), vocab.dim), np.float32)
  offsets = vocab.offsets()
  index = {s: {c: k for k, c in enumerate(vocab.columns[s])}
           for s in vocab.slots}
  for i, a in enumerate(answers):
    if not a:
      continue
    for slot in vocab.slots:
      if not a.get(slot):
        continue
      v = normalize(a[slot])
      if not v:
        continue
      col = vocab.assign[slot].get(v, OTHER)
      out[i, offsets[slot] + index[slot][col]] = 1.0
  return out


def sentence_embedder(
    model: str = 'sentence-transformers/all-MiniLM-L6-v2',
    device: str = 'cpu',
    batch_size: int = 256,
) -> tuple[Embedder, dict[str, object]]:
  """A Sentence-Transformers embedder resolved offline, and its manifest."""
  import sentence_transformers  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top

  from mmjax.features import resolve  # pylint: disable=g-import-not-at-top

  resolved = resolve.resolve(model)
  torch.use_deterministic_algorithms(True, warn_only=True)
  st = sentence_transformers.SentenceTransformer(
      resolved.path, device=device, local_files_only=True)

  def embed(texts: Sequence[str]) -> np.ndarray:
    return np.asarray(st.encode(
        list(texts), batch_size=batch_size, convert_to_numpy=True,
        normalize_embeddings=True, show_progress_bar=False), np.float32)

  return embed, resolved.manifest()
