"""bench/gpu_check.py runs end to end on CPU and every path agrees.

The CPU dry run (`--cpu --small`) is what shows the GPU check works before a
GPU is at hand: here on a small graph, propagation section only (the model
section compiles two training programs, too slow for a test; bench/README.md
records a full dry run). Speed is not asserted, only that each row exists
and each path's output and gradient match segment_sum's.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

from absl.testing import absltest

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SCRIPT = os.path.join(_REPO, 'bench', 'gpu_check.py')
_PATHS = ('segment_sum', 'segment_sum sorted',
          'BCSR (jax.experimental.sparse)', 'mmjax propagate (default)',
          'torch.sparse.mm CSR')
# float32 sums of at most a few hundred terms of size ~1: different
# summation orders differ by ~1e-6; a wrong path differs by ~1.
_TOL = 1e-4


def _run(*args: str, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, _SCRIPT, *args], cwd=_REPO,
                        capture_output=True, text=True, timeout=180,
                        env=env, check=False)


class GpuCheckTest(absltest.TestCase):

  def _tmpdir(self) -> str:
    # tempfile, not create_tempdir: absl's test flags are unparsed under
    # pytest.
    path = tempfile.mkdtemp(prefix='gpu_check_test_')
    self.addCleanup(shutil.rmtree, path, ignore_errors=True)
    return path

  def test_cpu_dry_run_rows_agree_with_segment_sum(self):
    out = self._tmpdir()
    proc = _run('--cpu', '--small', '--models=', '--mmrec_dir=',
                '--nodes=2000', '--nnz=20000', '--dims=16', '--repeats=1',
                f'--out_dir={out}')
    self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
    self.assertIn('CPU DRY RUN', proc.stdout)
    with open(os.path.join(out, 'gpu_check.json'), encoding='utf-8') as f:
      record = json.load(f)
    header = record['header']
    self.assertTrue(header['dry_run'])
    self.assertEqual(header['backend'], 'cpu')
    # On CPU the default is the compiled kernel, or segment_sum without it.
    self.assertIn(header['mmjax_path'], ('kernel', 'segment_sum'))
    rows = {r['path']: r for r in record['propagation']}
    self.assertEqual(set(rows), set(_PATHS))
    for path, row in rows.items():
      self.assertIn(f'| 16 | {path} |', proc.stdout)
      if 'skipped' in row:
        # Only torch may be absent; any other skip is a failed path.
        self.assertEqual((path, row['skipped']),
                         ('torch.sparse.mm CSR', 'torch not installed'))
        continue
      self.assertEqual(row['D'], 16)
      self.assertGreater(row['fwd_ms'], 0.0)
      self.assertGreater(row['both_ms'], 0.0)
      self.assertLess(row['fwd_max_diff'], _TOL, path)
      self.assertLess(row['grad_max_diff'], _TOL, path)
    self.assertIn('[', rows['mmjax propagate (default)']['lowers_to'])

  def test_without_cpu_flag_refuses_a_machine_without_gpu(self):
    # JAX_PLATFORMS=cpu hides any GPU, so this holds on every machine.
    env = dict(os.environ, JAX_PLATFORMS='cpu')
    proc = _run('--models=', '--out_dir=' + self._tmpdir(),
                env=env)
    self.assertNotEqual(proc.returncode, 0)
    self.assertIn('JAX sees no GPU', proc.stdout + proc.stderr)


if __name__ == '__main__':
  absltest.main()
