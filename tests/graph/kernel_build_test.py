"""The kernel library is kept per jaxlib version (mmjax/graph/kernel/build.py).

Two environments of one checkout (`make test` on the oldest JAX,
`make test-newest-jax` on the newest) must each find their own library, and a
library built against another jaxlib's FFI headers must never be loaded.
"""

import os
import tempfile
from unittest import mock

from absl.testing import absltest
import jaxlib

from mmjax.graph.kernel import build


class LibraryPerJaxlibTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.enter_context(mock.patch.dict(
        os.environ, {'MMJAX_KERNEL_DIR': tempfile.mkdtemp()}))

  def _fake_library(self):
    """Writes a library file and the stamp `build` would write for it."""
    with open(build.lib_path(), 'wb') as f:
      f.write(b'not a real library')
    with open(build.lib_path() + '.stamp', 'w') as f:
      f.write(build.stamp() + '\n')

  def test_each_jaxlib_has_its_own_file(self):
    here = build.lib_path()
    self.assertIn(jaxlib.__version__, os.path.basename(here))
    with mock.patch.object(jaxlib, '__version__', '99.0.0'):
      other = build.lib_path()
    self.assertNotEqual(here, other)
    self.assertEqual(os.path.dirname(here), os.path.dirname(other))

  def test_another_jaxlibs_library_is_not_current(self):
    with mock.patch.object(jaxlib, '__version__', '99.0.0'):
      self._fake_library()
      self.assertTrue(build.is_current())
    self.assertFalse(build.is_current())
    self._fake_library()
    self.assertTrue(build.is_current())
    # The other version's file is left as it was: switching back and forth
    # between two environments rebuilds neither.
    with mock.patch.object(jaxlib, '__version__', '99.0.0'):
      self.assertTrue(build.is_current())


if __name__ == '__main__':
  absltest.main()
