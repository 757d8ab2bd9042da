#!/usr/bin/env python3
r"""Fetches an external reference at its pinned commit and verifies it.

The pins are in third_party/pins.json (what each reference is used for is in
third_party/README.md). This script clones the reference with `git` into
DEST, or reuses a clone already there, checks out the pinned commit (a
detached HEAD) and verifies the checkout: HEAD equals the pin and the working
tree is clean (no modified, deleted or untracked files). `--verify-only`
checks an existing checkout and changes nothing.

  python third_party/fetch.py mmrec /work/mmrec
  python third_party/fetch.py --verify-only mmrec /work/mmrec
  python third_party/fetch.py --list
  python third_party/fetch.py --url /path/to/a/mirror mmrec /work/mmrec

Standard library only. A failure is one line on stderr
(`fetch.py: error: ...`) and exit status 1; a usage error exits with 2.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from typing import Any

DEFAULT_PINS = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            'pins.json')
_SHA = re.compile(r'^[0-9a-f]{40}$')


class FetchError(Exception):
  """A failure reported to the user as one line."""


def load_pins(path: str) -> dict[str, dict[str, Any]]:
  """Reads and checks a pins file.

  Args:
    path: a JSON object {name: {'url': ..., 'commit': <40 hex>, ...}}.

  Returns:
    The pins by name.

  Raises:
    FetchError: the file is missing, not JSON, or a pin lacks a url or a full
      commit hash.
  """
  try:
    with open(path, encoding='utf-8') as f:
      pins = json.load(f)
  except OSError as e:
    raise FetchError(f'cannot read the pins file {path}: {e.strerror}') from e
  except json.JSONDecodeError as e:
    raise FetchError(f'{path}: not valid JSON ({e})') from e
  if not isinstance(pins, dict) or not pins:
    raise FetchError(f'{path}: expected a non-empty JSON object of pins')
  for name, pin in pins.items():
    if not isinstance(pin, dict) or not pin.get('url'):
      raise FetchError(f'{path}: pin {name!r} has no url')
    if not _SHA.match(str(pin.get('commit', ''))):
      raise FetchError(f'{path}: pin {name!r} needs a full 40-hex commit, '
                       f'got {pin.get("commit")!r}')
  return pins


def _last_line(text: str) -> str:
  lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
  return lines[-1] if lines else '(no message)'


def _git(args: list[str], cwd: str | None = None
         ) -> subprocess.CompletedProcess:
  # No credential prompt: GitHub answers a missing repository with an
  # authentication request, which would otherwise hang on the terminal.
  env = dict(os.environ, GIT_TERMINAL_PROMPT='0', LC_ALL='C')
  return subprocess.run(['git', *args], cwd=cwd, env=env, text=True,
                        capture_output=True, check=False)


def _require_git() -> None:
  if shutil.which('git') is None:
    raise FetchError('git not found on PATH; install git to fetch or verify '
                     'a reference')


def _is_checkout_root(dest: str) -> bool:
  """Whether `dest` is the top of a git work tree (not a folder inside one)."""
  if not os.path.isdir(dest):
    return False
  out = _git(['rev-parse', '--show-toplevel'], cwd=dest)
  if out.returncode != 0:
    return False
  return os.path.realpath(out.stdout.strip()) == os.path.realpath(dest)


def _has_commit(dest: str, commit: str) -> bool:
  return _git(['cat-file', '-e', f'{commit}^{{commit}}'],
              cwd=dest).returncode == 0


def _dirt(dest: str) -> str | None:
  """A description of local changes in `dest`, or None when it is clean."""
  out = _git(['status', '--porcelain', '--untracked-files=normal'], cwd=dest)
  if out.returncode != 0:
    raise FetchError(f'{dest}: git status failed: {_last_line(out.stderr)}')
  lines = [line for line in out.stdout.splitlines() if line.strip()]
  if not lines:
    return None
  untracked = sum(line.startswith('??') for line in lines)
  deleted = sum('D' in line[:2] for line in lines)
  counts = {'modified': len(lines) - untracked - deleted,
            'deleted': deleted, 'untracked': untracked}
  what = ', '.join(f'{n} {kind}' for kind, n in counts.items() if n)
  return f'{what}, e.g. {lines[0][3:]}'


def verify(name: str, pin: dict[str, Any], dest: str) -> None:
  """Checks that `dest` is a clean checkout of the pinned commit.

  Raises:
    FetchError: `dest` is not a checkout, HEAD is another commit, or the
      working tree has local changes.
  """
  _require_git()
  commit = pin['commit']
  if not _is_checkout_root(dest):
    raise FetchError(f'{dest}: not a git checkout; run fetch.py {name} '
                     f'{dest} first')
  out = _git(['rev-parse', 'HEAD'], cwd=dest)
  head = out.stdout.strip() if out.returncode == 0 else '(no commit)'
  if head != commit:
    raise FetchError(f'{dest}: HEAD is {head}, not the {name} pin {commit}; '
                     f'run fetch.py {name} {dest} to check the pin out')
  dirt = _dirt(dest)
  if dirt:
    raise FetchError(f'{dest}: working tree is not clean ({dirt}); the '
                     f'{name} pin must be used unmodified')


def fetch(name: str, pin: dict[str, Any], dest: str) -> None:
  """Clones (or reuses) `dest`, checks out the pin and verifies it.

  An existing checkout is reused only when it is clean, so local changes are
  never overwritten; when it lacks the commit, it is fetched first.

  Raises:
    FetchError: no git, the clone or fetch fails (network, URL), the commit
      is not in the repository, `dest` is something else, or the result
      fails `verify`.
  """
  _require_git()
  url, commit = pin['url'], pin['commit']
  fresh = not os.path.exists(dest) or (os.path.isdir(dest)
                                       and not os.listdir(dest))
  if fresh:
    out = _git(['clone', '--quiet', '--no-checkout', url, dest])
    if out.returncode != 0:
      raise FetchError(f'cannot clone {url}: {_last_line(out.stderr)}')
  elif not _is_checkout_root(dest):
    raise FetchError(f'{dest} exists and is not a git checkout; remove it '
                     f'or choose another DEST')
  else:
    dirt = _dirt(dest)
    if dirt:
      raise FetchError(f'{dest}: working tree is not clean ({dirt}); '
                       f'not touching it')
  if not _has_commit(dest, commit):
    remotes = _git(['remote'], cwd=dest).stdout.split()
    source = 'origin' if 'origin' in remotes else url
    if not fresh:  # A fresh clone already has every branch and tag.
      out = _git(['fetch', '--quiet', '--tags', source], cwd=dest)
      if out.returncode != 0:
        raise FetchError(f'cannot fetch from {source}: '
                         f'{_last_line(out.stderr)}')
    if not _has_commit(dest, commit):
      # Off every branch and tag: ask for the object itself (servers that
      # allow it, as GitHub does for reachable commits).
      _git(['fetch', '--quiet', source, commit], cwd=dest)
    if not _has_commit(dest, commit):
      raise FetchError(f'commit {commit} ({name}) not found in '
                       f'{url if fresh else source}')
  out = _git(['-c', 'advice.detachedHead=false', 'checkout', '--quiet',
              '--detach', commit], cwd=dest)
  # git 2.39 exits 0 when a blob is missing from the object store (a partial
  # mirror) and only prints "error: invalid object ..." for each such file.
  errors = [line for line in out.stderr.splitlines()
            if line.startswith(('error:', 'fatal:'))]
  if out.returncode != 0 or errors:
    raise FetchError(f'{dest}: cannot check out {commit}: '
                     f'{errors[0] if errors else _last_line(out.stderr)}')
  verify(name, pin, dest)


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(
      prog='fetch.py',
      description='Fetch an external reference at its pinned commit into '
      'DEST and verify it (HEAD is the pin, the tree is clean).')
  parser.add_argument('name', nargs='?', metavar='NAME',
                      help='a reference in the pins file (see --list)')
  parser.add_argument('dest', nargs='?', metavar='DEST',
                      help='where the checkout is (or goes)')
  parser.add_argument('--verify-only', action='store_true',
                      help='only check an existing checkout at DEST')
  parser.add_argument('--pins', default=DEFAULT_PINS,
                      help='pins file (default: %(default)s)')
  parser.add_argument('--url', help='clone from here instead of the pinned '
                      'url (a mirror or a local path); the commit is the same')
  parser.add_argument('--list', action='store_true',
                      help='list the known references and exit')
  return parser


def main(argv: list[str] | None = None) -> int:
  parser = _parser()
  args = parser.parse_args(argv)
  try:
    pins = load_pins(args.pins)
    if args.list:
      for name, pin in sorted(pins.items()):
        print(f'{name}\t{pin["commit"]}\t{pin.get("commit_date", "")}\t'
              f'{pin["url"]}')
      return 0
    if not args.name or not args.dest:
      parser.error('NAME and DEST are required (or --list)')
    if args.name not in pins:
      raise FetchError(f'unknown reference {args.name!r}; known: '
                       f'{", ".join(sorted(pins))}')
    pin = dict(pins[args.name])
    if args.url:
      pin['url'] = args.url
    dest = os.path.abspath(args.dest)
    if args.verify_only:
      verify(args.name, pin, dest)
    else:
      fetch(args.name, pin, dest)
  except FetchError as e:
    print(f'fetch.py: error: {e}', file=sys.stderr)
    return 1
  print(f'{args.name}: {dest} is at {pin["commit"]} '
        f'({pin.get("commit_date", "date not recorded")}), clean')
  return 0


if __name__ == '__main__':
  sys.exit(main())
