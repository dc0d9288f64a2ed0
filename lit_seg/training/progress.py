"""Progress as periodic plain lines, for logs that are not a terminal (clusters, CI)."""

import sys
import time
from datetime import timedelta
from typing import Any

from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import ProgressBar


class LineProgressBar(ProgressBar):
    """Prints a line with epoch, step, loss, throughput and ETA every ``interval_seconds`` (and at
    the end of each epoch), and the validation metrics after each validation run.

    Args:
        interval_seconds: minimum time between two lines during training.
    """

    def __init__(self, interval_seconds: float = 30.0) -> None:
        super().__init__()
        self.interval_seconds = interval_seconds
        self._enabled = True
        self._start = self._last_print = 0.0
        self._start_step = 0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    @property
    def is_enabled(self) -> bool:
        return self._enabled and self.trainer.is_global_zero

    def _print(self, text: str) -> None:
        print(text, file=sys.stdout, flush=True)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start = self._last_print = time.perf_counter()
        self._start_step = trainer.global_step

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        now = time.perf_counter()
        last_batch = batch_idx + 1 == self.total_train_batches
        if not self.is_enabled or (now - self._last_print < self.interval_seconds and not last_batch):
            return
        self._last_print = now
        done = trainer.global_step - self._start_step
        rate = done / max(now - self._start, 1e-9)
        remaining = max(0, trainer.estimated_stepping_batches - trainer.global_step)
        eta = timedelta(seconds=round(remaining / rate)) if rate > 0 else "?"
        loss = trainer.callback_metrics.get("train/loss")
        loss_text = f"loss {loss.item():.4f}" if loss is not None else "loss ?"
        self._print(
            f"epoch {trainer.current_epoch} step {trainer.global_step}/{trainer.estimated_stepping_batches} "
            f"{loss_text} {rate:.2f} it/s ETA {eta}"
        )

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not self.is_enabled or trainer.sanity_checking:
            return
        shown = {k: v for k, v in trainer.callback_metrics.items() if k.startswith("val/") and "/IoU/" not in k}
        self._print(f"validation after step {trainer.global_step}: " + " ".join(f"{k} {v.item():.4f}" for k, v in sorted(shown.items())))
