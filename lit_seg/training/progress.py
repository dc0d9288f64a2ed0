"""Progress of a run: a rich bar in a terminal, periodic plain lines in logs (clusters, CI). Both show the
training step out of the run's total, the training loss and the latest val/mIoU, a one-line summary after
each validation, and at the end of a fit where its checkpoints, config and W&B run are."""

import sys
import time
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar
from lightning.pytorch.trainer.states import TrainerFn
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import Tensor

from lit_seg.training.checkpoints import LAST, LatestCheckpoint
from lit_seg.training.loggers import WandbLogger

MIOU = "val/mIoU"


def step_loss(outputs: Any) -> Tensor | None:
    """The loss of a training step from its outputs (a tensor, or a mapping with ``"loss"``): the
    bars show it on every step, whether or not the step logs ``train/loss``."""
    loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
    return loss.detach() if isinstance(loss, Tensor) else None


def step_text(trainer: Trainer) -> str:
    """``step N/total`` (optimizer steps, over the whole run), with the epoch."""
    total = trainer.estimated_stepping_batches
    total_text = "?" if total == float("inf") else f"{int(total)}"
    return f"step {trainer.global_step}/{total_text} (epoch {trainer.current_epoch})"


def metrics_text(trainer: Trainer, loss: Tensor | None) -> str:
    """The training loss (``?`` before the first step) and the latest val/mIoU (once validated)."""
    parts = [f"loss {loss.item():.4f}" if loss is not None else "loss ?"]
    miou = trainer.callback_metrics.get(MIOU)
    if miou is not None:
        parts.append(f"{MIOU} {miou.item():.4f}")
    return "  ".join(parts)


def validation_summary(trainer: Trainer) -> str:
    """One line with the validation metrics just computed (per-class IoU left out)."""
    shown = {
        key: value for key, value in trainer.callback_metrics.items()
        if key.startswith("val/") and "/IoU/" not in key
    }
    ordered = sorted(shown.items(), key=lambda item: (item[0] != MIOU, item[0]))  # mIoU first
    values = " ".join(f"{key} {value.item():.4f}" for key, value in ordered)
    return f"validation after step {trainer.global_step}: {values}"


def run_summary(trainer: Trainer, log_dir: str | None) -> list[str]:
    """Lines saying where a fit's checkpoints, config (in ``log_dir``, the trainer's) and W&B run are."""
    lines = []
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.best_model_path:
            score = callback.best_model_score
            scored = f", {callback.monitor} {score.item():.4f}" if score is not None and callback.monitor else ""
            lines.append(f"best checkpoint: {callback.best_model_path}{scored}")
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, LatestCheckpoint) and (callback.folder / LAST).exists():
            lines.append(f"last checkpoint: {callback.folder / LAST} (resume with --ckpt_path last)")
    config = Path(log_dir or trainer.default_root_dir, "config.yaml")
    if config.is_file():
        lines.append(f"config: {config}")
    for logger in trainer.loggers:
        where = logger.run_location() if isinstance(logger, WandbLogger) else None
        if where:
            lines.append(f"W&B run: {where}")
    return lines


class LineProgressBar(ProgressBar):
    """Prints a line with step, epoch, loss, latest val/mIoU, throughput and ETA after the first step of
    a session, every ``interval_seconds`` and at the last step; the validation metrics after each
    validation; and where the checkpoints, config and W&B run are when a fit ends.

    Args:
        interval_seconds: minimum time between two lines during training.
    """

    def __init__(self, interval_seconds: float = 30.0) -> None:
        super().__init__()
        self.interval_seconds = interval_seconds
        self._enabled = True
        self._start = self._last_print = 0.0
        self._start_step = 0
        self._loss: Tensor | None = None

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
        self._start = time.perf_counter()
        self._last_print = -float("inf")  # the first step prints
        self._start_step = trainer.global_step

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._loss = step_loss(outputs)
        now = time.perf_counter()
        last_step = trainer.global_step >= trainer.estimated_stepping_batches or trainer.should_stop
        if not self.is_enabled or (now - self._last_print < self.interval_seconds and not last_step):
            return
        self._last_print = now
        rate = (trainer.global_step - self._start_step) / max(now - self._start, 1e-9)
        remaining = max(0, trainer.estimated_stepping_batches - trainer.global_step)
        eta = timedelta(seconds=round(remaining / rate)) if rate > 0 and remaining != float("inf") else "?"
        self._print(f"{step_text(trainer)}  {metrics_text(trainer, self._loss)}  {rate:.2f} it/s  ETA {eta}")

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.is_enabled and trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking:
            self._print(validation_summary(trainer))

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        log_dir = trainer.log_dir  # a broadcast under DDP: every process must ask
        if self.is_enabled:
            for line in run_summary(trainer, log_dir):
                self._print(line)


class RichStepProgressBar(ProgressBar):
    """A rich progress bar for terminals: ``step N/total`` over the whole run (not per epoch), the
    training loss and latest val/mIoU beside it, a bar for each validation, test or prediction run,
    a one-line summary after each validation, and where the checkpoints, config and W&B run are
    when a fit ends.

    Args:
        refresh_seconds: minimum time between two updates of the loss shown (each reads the loss
            from the device).
    """

    def __init__(self, refresh_seconds: float = 0.5) -> None:
        super().__init__()
        self.refresh_seconds = refresh_seconds
        self._enabled = True
        self._progress: Progress | None = None
        self._train_task: TaskID | None = None
        self._eval_task: TaskID | None = None
        self._last_update = 0.0
        self._loss: Tensor | None = None
        self._eval_done = 0
        self._eval_total: int | None = None

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    @property
    def is_enabled(self) -> bool:
        return self._enabled and self.trainer.is_global_zero

    def print(self, *args: Any, **kwargs: Any) -> None:
        """Prints above the bars; a long line is left to the terminal to wrap."""
        self._console().print(*args, **({"soft_wrap": True, "highlight": False} | kwargs))

    def _console(self) -> Console:
        return self._progress.console if self._progress is not None else Console()

    def _start(self) -> Progress | None:
        if not self.is_enabled:
            return None
        if self._progress is None:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(bar_width=30),
                TextColumn("{task.fields[position]}"),
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
                TextColumn("<"),
                TimeRemainingColumn(),
                refresh_per_second=4,
            )
            self._progress.start()
        return self._progress

    def _stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
        self._progress = self._train_task = self._eval_task = None

    def _start_eval(self, description: str, batches: int | float | list[int | float]) -> None:
        progress = self._start()
        if progress is None:
            return
        total = sum(batches) if isinstance(batches, list) else batches
        self._eval_total = None if total == float("inf") else int(total)
        self._eval_done = 0
        self._eval_task = progress.add_task(description, total=self._eval_total, position=self._eval_position(), info="")

    def _eval_position(self) -> str:
        return f"{self._eval_done}/{self._eval_total or '?'} batches"

    def _advance_eval(self) -> None:
        if self._progress is not None and self._eval_task is not None:
            self._eval_done += 1
            self._progress.update(self._eval_task, completed=self._eval_done, position=self._eval_position())

    def _end_eval(self) -> None:
        if self._progress is not None and self._eval_task is not None:
            self._progress.remove_task(self._eval_task)
        self._eval_task = None

    def _update_train(self, trainer: Trainer) -> None:
        if self._progress is None or self._train_task is None:
            return
        total = trainer.estimated_stepping_batches
        self._progress.update(
            self._train_task,
            completed=trainer.global_step,
            total=None if total == float("inf") else total,
            position=step_text(trainer),
            info=metrics_text(trainer, self._loss),
        )

    def on_sanity_check_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._end_eval()

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        progress = self._start()
        if progress is not None:
            self._train_task = progress.add_task("train", total=None, position="", info="")
            self._update_train(trainer)

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._loss = step_loss(outputs)
        now = time.perf_counter()
        last_step = trainer.global_step >= trainer.estimated_stepping_batches
        if now - self._last_update >= self.refresh_seconds or last_step:
            self._last_update = now
            self._update_train(trainer)

    # The bars of validation, test and prediction start with their first batch, when the number of
    # batches is known.
    def on_validation_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if self._eval_task is None:
            if trainer.sanity_checking:
                self._start_eval("sanity check", trainer.num_sanity_val_batches)
            else:
                self._start_eval("validate", trainer.num_val_batches)

    def on_validation_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._advance_eval()

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self._end_eval()
        if self.is_enabled and trainer.state.fn == TrainerFn.FITTING:
            self.print(validation_summary(trainer))
            self._update_train(trainer)
            if trainer.global_step >= trainer.estimated_stepping_batches:
                self._stop()  # the final state stays; Lightning's "fit stopped" line then prints below it

    def on_test_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if self._eval_task is None:
            self._start_eval("test", trainer.num_test_batches)

    def on_test_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._advance_eval()

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._end_eval()

    def on_predict_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if self._eval_task is None:
            self._start_eval("predict", trainer.num_predict_batches)

    def on_predict_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._advance_eval()

    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._end_eval()

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        log_dir = trainer.log_dir  # a broadcast under DDP: every process must ask
        if self.is_enabled:  # the bar stays as the last step left it (the epoch has been counted up since)
            self._stop()
            for line in run_summary(trainer, log_dir):
                self.print(line)

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._stop()

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        self._stop()
