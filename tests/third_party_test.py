"""Tests of third_party/fetch.py on a tiny local repository (no network).

A two-commit repository in a temporary folder stands in for a reference; a
pins file points at its first commit, so a plain clone (whose default branch
is at the second commit) must really check the pin out.
"""

import contextlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from unittest import mock

from absl.testing import absltest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FETCH = os.path.join(ROOT, 'third_party', 'fetch.py')
_GIT = shutil.which('git')


def _git(cwd, *args):
  out = subprocess.run(
      ['git', '-c', 'user.name=t', '-c', 'user.email=t@example.com',
       '-c', 'commit.gpgsign=false', *args],
      cwd=cwd, check=True, capture_output=True, text=True)
  return out.stdout.strip()


def _tmpdir(test):
  # absltest's create_tempdir needs parsed absl flags, which pytest lacks.
  tmp = tempfile.TemporaryDirectory()
  test.addCleanup(tmp.cleanup)
  return tmp.name


def _load_fetch_module():
  spec = importlib.util.spec_from_file_location('third_party_fetch', FETCH)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@absltest.skipIf(_GIT is None, 'git is not installed')
class FetchTest(absltest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.base = tempfile.mkdtemp()
    cls.src = os.path.join(cls.base, 'src')
    os.makedirs(cls.src)
    _git(cls.src, 'init', '--quiet')
    with open(os.path.join(cls.src, 'model.py'), 'w') as f:
      f.write('version = 1\n')
    _git(cls.src, 'add', 'model.py')
    _git(cls.src, 'commit', '--quiet', '-m', 'one')
    cls.first = _git(cls.src, 'rev-parse', 'HEAD')
    with open(os.path.join(cls.src, 'model.py'), 'w') as f:
      f.write('version = 2\n')
    _git(cls.src, 'commit', '--quiet', '-am', 'two')
    cls.second = _git(cls.src, 'rev-parse', 'HEAD')
    cls.pins = os.path.join(cls.base, 'pins.json')
    cls._write_pins(cls.pins, cls.src, cls.first)
    cls.fetch = _load_fetch_module()

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.base, ignore_errors=True)
    super().tearDownClass()

  @staticmethod
  def _write_pins(path, url, commit):
    with open(path, 'w') as f:
      json.dump({'toy': {'url': url, 'commit': commit,
                         'commit_date': '2026-01-01T00:00:00+00:00'},
                 'other': {'url': url, 'commit': commit}}, f)

  def _run(self, *args, pins=None):
    """fetch.py's main in this process (a subprocess per call is slow)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
      rc = self.fetch.main(['--pins', pins or self.pins, *args])
    return subprocess.CompletedProcess(args, rc, stdout.getvalue(),
                                       stderr.getvalue())

  def _assert_fails(self, out, *needles):
    self.assertEqual(out.returncode, 1, out)
    err = out.stderr.strip()
    self.assertTrue(err.startswith('fetch.py: error: '), err)
    self.assertNotIn('\n', err)  # One line.
    for needle in needles:
      self.assertIn(needle, err)

  def _dest(self):
    return os.path.join(_tmpdir(self), 'checkout')

  def _checked_out(self, dest):
    dest = self._dest() if dest is None else dest
    out = self._run('toy', dest)
    self.assertEqual(out.returncode, 0, out)
    return dest

  def test_fetch_checks_out_the_pin_and_reuses_a_clone(self):
    dest = self._checked_out(None)
    self.assertEqual(_git(dest, 'rev-parse', 'HEAD'), self.first)
    with open(os.path.join(dest, 'model.py')) as f:
      self.assertEqual(f.read(), 'version = 1\n')
    # Again on the same folder: the clone is reused, still the pin.
    out = self._run('toy', dest)
    self.assertEqual(out.returncode, 0, out)
    self.assertIn(self.first, out.stdout)

  def test_fetch_into_an_existing_clone_at_another_commit(self):
    dest = self._dest()
    subprocess.run(['git', 'clone', '--quiet', self.src, dest], check=True)
    self.assertEqual(_git(dest, 'rev-parse', 'HEAD'), self.second)
    self._checked_out(dest)
    self.assertEqual(_git(dest, 'rev-parse', 'HEAD'), self.first)

  def test_url_override(self):
    pins = os.path.join(_tmpdir(self), 'pins.json')
    self._write_pins(pins, '/nonexistent/repository', self.first)
    out = self._run('--url', self.src, 'toy', self._dest(), pins=pins)
    self.assertEqual(out.returncode, 0, out)

  def test_verify_only_passes_on_the_pin(self):
    dest = self._checked_out(None)
    out = self._run('--verify-only', 'toy', dest)
    self.assertEqual(out.returncode, 0, out)
    self.assertIn('clean', out.stdout)

  def test_verify_only_fails_on_a_dirty_tree(self):
    dest = self._checked_out(None)
    with open(os.path.join(dest, 'model.py'), 'a') as f:
      f.write('patched = True\n')
    self._assert_fails(self._run('--verify-only', 'toy', dest),
                       'not clean', '1 modified', 'model.py')
    # fetch refuses to overwrite the local change.
    self._assert_fails(self._run('toy', dest), 'not clean', 'not touching')
    _git(dest, 'checkout', '--quiet', '--', 'model.py')
    with open(os.path.join(dest, 'notes.txt'), 'w') as f:
      f.write('x')
    self._assert_fails(self._run('--verify-only', 'toy', dest),
                       'not clean', '1 untracked', 'notes.txt')

  def test_verify_only_fails_on_another_commit(self):
    dest = self._checked_out(None)
    _git(dest, 'checkout', '--quiet', self.second)
    self._assert_fails(self._run('--verify-only', 'toy', dest),
                       f'HEAD is {self.second}', f'pin {self.first}')
    # fetch brings it back to the pin.
    self._checked_out(dest)
    self.assertEqual(_git(dest, 'rev-parse', 'HEAD'), self.first)

  def test_verify_only_fails_outside_a_checkout(self):
    # A plain folder, even inside a checkout, is not a checkout.
    plain = os.path.join(self._checked_out(None), 'plain')
    os.makedirs(plain)
    self._assert_fails(self._run('--verify-only', 'toy', plain),
                       'not a git checkout')

  def test_unknown_name_lists_the_known_ones(self):
    self._assert_fails(self._run('nope', self._dest()),
                       "unknown reference 'nope'", 'known: other, toy')

  def test_missing_commit(self):
    pins = os.path.join(_tmpdir(self), 'pins.json')
    self._write_pins(pins, self.src, 'f' * 40)
    self._assert_fails(self._run('toy', self._dest(), pins=pins),
                       f'commit {"f" * 40}', 'not found in')

  def test_unreachable_repository(self):
    self._assert_fails(
        self._run('--url', os.path.join(self.base, 'gone'), 'toy',
                  self._dest()), 'cannot clone')

  def test_dest_that_is_not_a_checkout(self):
    dest = _tmpdir(self)
    with open(os.path.join(dest, 'x'), 'w') as f:
      f.write('x')
    self._assert_fails(self._run('toy', dest), 'is not a git checkout')

  def test_no_git_on_path(self):
    with mock.patch.dict(os.environ, PATH=_tmpdir(self)):
      self._assert_fails(self._run('toy', self._dest()),
                         'git not found on PATH')

  def test_command_line(self):
    dest = self._dest()
    out = subprocess.run([sys.executable, FETCH, '--pins', self.pins, 'toy',
                          dest], capture_output=True, text=True, check=False)
    self.assertEqual(out.returncode, 0, out)
    out = subprocess.run([sys.executable, FETCH, '--pins', self.pins,
                          '--verify-only', 'nope', dest],
                         capture_output=True, text=True, check=False)
    self._assert_fails(out, 'known: other, toy')


class PinsTest(absltest.TestCase):
  """The project's own pins file and README agree (no network)."""

  def test_pins_are_complete_and_documented(self):
    fetch = _load_fetch_module()
    pins = fetch.load_pins(fetch.DEFAULT_PINS)
    self.assertContainsSubset({'mmrec', 'elliot', 'ducho'}, set(pins))
    with open(os.path.join(ROOT, 'third_party', 'README.md')) as f:
      readme = f.read()
    for name, pin in pins.items():
      for key in ('repo', 'url', 'commit', 'commit_date', 'licence',
                  'used_for'):
        self.assertTrue(pin.get(key), (name, key))
      self.assertIn(pin['commit'], readme, name)
      self.assertIn(pin['repo'], readme, name)
    # bench/mmrec/README.md records the MMRec commit its results came from.
    self.assertEqual(pins['mmrec']['commit'],
                     'e775373b3ab1354a92165b0885ce4ab3dc4d7497')

  def test_bad_pins_file(self):
    fetch = _load_fetch_module()
    path = os.path.join(_tmpdir(self), 'pins.json')
    with open(path, 'w') as f:
      json.dump({'x': {'url': 'u', 'commit': 'abc'}}, f)
    with self.assertRaisesRegex(fetch.FetchError, 'full 40-hex commit'):
      fetch.load_pins(path)


if __name__ == '__main__':
  absltest.main()
