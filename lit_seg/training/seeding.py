"""Per-epoch reseeding, so that a run resumed at an epoch boundary repeats the uninterrupted one."""

import random

import numpy as np
import torch
from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback

from lit_seg.data.sampling import run_seed


class EpochSeed(Callback):
    """At the start of each training epoch, seeds Python, NumPy and torch with ``seed + epoch``
    (``seed`` from ``seed_everything``), so the shuffling, augmentation and dropout of an epoch do
    not depend on what ran before it. Does nothing when no seed was set."""

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        seed = run_seed()
        if seed is None:
            return
        epoch_seed = (seed + trainer.current_epoch) % 2**32
        random.seed(epoch_seed)
        np.random.seed(epoch_seed)
        torch.manual_seed(epoch_seed)
