"""Wall time and training throughput, logged with every validation so that runs compare by time."""

import time
from typing import Any

from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn


class RunClock(Callback):
    """Logs ``time/wall_s`` (seconds since the fit started, setup and validation included) and
    ``time/train_images_per_s`` (training images of all processes over training time, validation
    excluded) at the end of each validation epoch. Both carry over when a run resumes from a
    checkpoint: the time between sessions is not counted."""

    def __init__(self) -> None:
        self._previous_wall = 0.0  # wall seconds of earlier sessions
        self._train_seconds = 0.0  # training seconds of closed training stretches
        self._images = 0
        self._session_start: float | None = None
        self._stretch_start: float | None = None  # start of the current training stretch

    def wall_seconds(self) -> float:
        """Seconds of fitting so far, earlier sessions included."""
        session = time.perf_counter() - self._session_start if self._session_start is not None else 0.0
        return self._previous_wall + session

    def train_seconds(self) -> float:
        """Seconds spent in training so far (between validations), earlier sessions included."""
        stretch = time.perf_counter() - self._stretch_start if self._stretch_start is not None else 0.0
        return self._train_seconds + stretch

    def _close_stretch(self) -> None:
        self._train_seconds = self.train_seconds()
        self._stretch_start = None

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._session_start = time.perf_counter()

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._stretch_start = time.perf_counter()

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._images += len(batch["image"]) * trainer.world_size

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._close_stretch()

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.state.fn != TrainerFn.FITTING or trainer.sanity_checking:
            return
        pl_module.log("time/wall_s", self.wall_seconds())
        if self._train_seconds > 0:
            pl_module.log("time/train_images_per_s", self._images / self._train_seconds)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking:
            self._stretch_start = time.perf_counter()

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._close_stretch()

    def state_dict(self) -> dict[str, float]:
        return {"wall_s": self.wall_seconds(), "train_s": self.train_seconds(), "images": self._images}

    def load_state_dict(self, state_dict: dict[str, float]) -> None:
        self._previous_wall = state_dict["wall_s"]
        self._train_seconds = state_dict["train_s"]
        self._images = int(state_dict["images"])
