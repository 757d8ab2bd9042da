"""Tests for base.check_spec: spec mistakes found before any extraction."""

from absl.testing import absltest
import ml_collections

from mmjax.features import base
from tests.testing import extraction
from tests.testing import fixtures

_CHECKED = []


def make_extractor(spec, ds):
  del spec, ds
  raise AssertionError('check_spec must not build the extractor.')


def check_spec(spec, ds):
  """The optional hook an extractor module may define (this module's)."""
  _CHECKED.append((spec.name, ds.num_items))
  if spec.get('size', 1) < 1:
    raise base.SpecError(f'{spec.name}: size must be >= 1.')


class CheckSpecTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    d = fixtures.new_tempdir(self)
    self.ds = extraction.make_dataset(d, num_items=3, with_images=False)
    _CHECKED.clear()

  def _spec(self, **kw):
    return ml_collections.ConfigDict(dict({'name': 'x'}, **kw))

  def test_module_hook_is_called_without_building(self):
    spec = self._spec(extractor='tests.features.base_test', size=2)
    base.check_spec(spec, self.ds)
    self.assertEqual(_CHECKED, [('x', 3)])
    spec.size = 0
    with self.assertRaisesRegex(base.SpecError, 'size must be >= 1'):
      base.check_spec(spec, self.ds)

  def test_unknown_extractor_and_modules_without_hook(self):
    with self.assertRaisesRegex(ValueError, "unknown extractor 'nope'"):
      base.check_spec(self._spec(extractor='nope'), self.ds)
    with self.assertRaisesRegex(ValueError, 'no `extractor`'):
      base.check_spec(self._spec(), self.ds)
    # weightfree defines no check_spec: nothing to find, nothing raised.
    base.check_spec(self._spec(extractor='weightfree', method='tfidf'),
                    self.ds)


if __name__ == '__main__':
  absltest.main()
