"""`python -m mmjax.launch` that pauses after one epoch, for the kill tests.

    python -m tests.train.pausing_launch EPOCH --config ... --workdir ...

Runs the launch with `on_epoch_end` (mmjax/train/loop.py) set to a callback
that, after epoch EPOCH's log lines are flushed and before its checkpoint,
prints 'paused after epoch EPOCH' and sleeps. A test SIGKILLs the process
there: between two checkpoints, which no timing-based kill can hit reliably
on a loaded machine. Not a test module: it runs as its own process.
"""

import functools
import sys
import time

from absl import app

from mmjax import launch
from mmjax.train import loop


def main() -> None:
  epoch = int(sys.argv.pop(1))

  def pause(done: int) -> None:
    if done == epoch:
      print(f'paused after epoch {epoch}', flush=True)
      time.sleep(3600)

  # The launch (mmjax/run.py) calls this module attribute.
  loop.train_and_evaluate = functools.partial(loop.train_and_evaluate,
                                              on_epoch_end=pause)
  app.run(launch.main, flags_parser=launch.parse_flags)


if __name__ == '__main__':
  main()
