"""`mesh.coordinator`: what reaches `jax.distributed.initialize`.

A real multi-process start is tests/train/multihost_test.py; here the call
itself is recorded, since 'auto' means JAX's own cluster detection, which
has no cluster to find on a test machine.
"""

from unittest import mock

from absl.testing import absltest
import jax
import ml_collections

from mmjax.parallel import mesh as mesh_lib


def mesh_config(coordinator):
  return ml_collections.ConfigDict({
      'data': -1, 'coordinator': coordinator, 'num_processes': 2,
      'process_id': 1})


class DistributedInitTest(absltest.TestCase):

  def _calls(self, coordinator):
    with mock.patch.object(jax.distributed, 'initialize') as init, \
        mock.patch.object(jax.config, 'update'):
      started = mesh_lib.maybe_initialize_distributed(
          mesh_config(coordinator))
    return started, init.call_args_list

  def test_unset_starts_nothing(self):
    self.assertEqual(self._calls(None), (False, []))
    self.assertEqual(self._calls(''), (False, []))

  def test_address_passes_count_and_rank(self):
    started, calls = self._calls('head-node:8476')
    self.assertTrue(started)
    self.assertEqual(calls, [mock.call(coordinator_address='head-node:8476',
                                       num_processes=2, process_id=1)])

  def test_auto_lets_jax_detect_the_cluster(self):
    started, calls = self._calls('auto')
    self.assertTrue(started)
    self.assertEqual(calls, [mock.call()])


if __name__ == '__main__':
  absltest.main()
