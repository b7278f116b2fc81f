"""Child process of the killed-run test: trains with checkpoints and, in the middle of
its second epoch, announces itself and waits to be killed. Not a test module.

Usage: python killable_run.py <work dir>
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import lightning as L

from tests.training.common import run_training


class Announce(L.Callback):
    """Writes ``<dir>/mid_epoch`` at the 2nd batch of epoch 2, then sleeps."""

    def __init__(self, marker: Path):
        self.marker = marker

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.current_epoch == 1 and batch_idx == 1:
            self.marker.write_text("mid epoch 2")
            time.sleep(120)


if __name__ == "__main__":
    work = Path(sys.argv[1])
    run_training(work, max_epochs=3, callbacks=[Announce(work / "mid_epoch")])
