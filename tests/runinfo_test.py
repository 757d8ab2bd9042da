"""`mmjax.utils.runinfo` is a leaf and merges what its callers record."""

import os
import subprocess
import sys
import tempfile

from absl.testing import absltest

from mmjax.utils import runinfo

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class RunInfoTest(absltest.TestCase):

  def test_imports_nothing_of_mmjax(self):
    # A fresh process: which mmjax modules does importing runinfo load?
    script = ('import sys; import mmjax.utils.runinfo; print(sorted('
              'm for m in sys.modules if m.startswith("mmjax")))')
    out = subprocess.run([sys.executable, '-c', script], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    self.assertEqual(out.strip(),
                     "['mmjax', 'mmjax.utils', 'mmjax.utils.runinfo']")

  def test_add_and_record_data_keep_the_other_entries(self):
    with tempfile.TemporaryDirectory() as workdir:
      self.assertEqual(runinfo.read(workdir), {})
      runinfo.add(workdir, git_commit='abc', propagation={'paths': []})
      record = {'dir': '/d', 'name': 'synthetic', 'split_hash': 'h'}
      runinfo.record_data(workdir, record, {'visual': {'rep': 'clip'}})
      runinfo.add(workdir, propagation={'paths': ['kernel']})
      self.assertEqual(runinfo.read(workdir), {
          'git_commit': 'abc', 'propagation': {'paths': ['kernel']},
          'dataset': record, 'features': {'visual': {'rep': 'clip'}}})


if __name__ == '__main__':
  absltest.main()
