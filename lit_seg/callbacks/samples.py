"""A few validation images with ground truth and prediction: a PNG grid on disk and W&B masks."""

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger
from PIL import Image


def default_palette(num_classes: int) -> np.ndarray:
    """A distinct colour per class (the PASCAL VOC bit-interleaving scheme)."""
    palette = np.zeros((num_classes, 3), dtype=np.uint8)
    for label in range(num_classes):
        value, shift = label, 7
        while value:
            for channel in range(3):
                palette[label, channel] |= ((value >> channel) & 1) << shift
            value >>= 3
            shift -= 1
    return palette


def colourise(mask: np.ndarray, palette: np.ndarray, ignore_index: int = 255) -> np.ndarray:
    """An ``[H, W, 3]`` colour image of a label mask; ignored pixels are white."""
    table = np.full((256, 3), 255, dtype=np.uint8)
    table[: len(palette)] = palette
    table[ignore_index] = 255
    return table[mask.astype(np.uint8)]


class PredictionSamples(Callback):
    """After each validation run, writes ``predictions.png`` (rows of image | ground truth |
    prediction) into the run's log directory and logs the samples to W&B as image masks.

    Args:
        num_samples: number of validation images shown.
    """

    def __init__(self, num_samples: int = 6) -> None:
        super().__init__()
        self.num_samples = num_samples
        self._samples: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._samples = []

    def on_validation_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if not trainer.is_global_zero or len(self._samples) >= self.num_samples:
            return
        data = trainer.datamodule
        mean = torch.tensor(data.mean, device=batch["image"].device).view(3, 1, 1)
        std = torch.tensor(data.std, device=batch["image"].device).view(3, 1, 1)
        sizes = batch.get("sizes", [batch["image"].shape[-2:]] * len(batch["image"]))
        for i in range(min(len(batch["image"]), self.num_samples - len(self._samples))):
            height, width = (int(v) for v in sizes[i])
            image = ((batch["image"][i, :, :height, :width] * std + mean).clamp(0, 1) * 255).byte()
            self._samples.append((
                image.permute(1, 2, 0).cpu().numpy(),
                batch["mask"][i, :height, :width].cpu().numpy().astype(np.uint8),
                outputs["predictions"][i, :height, :width].cpu().numpy().astype(np.uint8),
            ))

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        log_dir = trainer.log_dir  # a broadcast under DDP: every process must ask
        if not trainer.is_global_zero or not self._samples or trainer.sanity_checking:
            return
        data = trainer.datamodule
        palette = np.array(data.palette, dtype=np.uint8) if data.palette else default_palette(data.num_classes)
        rows = [
            np.concatenate([image, colourise(mask, palette, data.ignore_index), colourise(pred, palette)], axis=1)
            for image, mask, pred in self._samples
        ]
        width = max(row.shape[1] for row in rows)
        grid = np.concatenate([np.pad(row, ((0, 2), (0, width - row.shape[1]), (0, 0)), constant_values=255) for row in rows])
        directory = Path(log_dir or trainer.default_root_dir)
        directory.mkdir(parents=True, exist_ok=True)
        temporary = directory / "predictions.png.tmp"
        Image.fromarray(grid).save(temporary, format="PNG")
        os.replace(temporary, directory / "predictions.png")
        self._log_to_wandb(trainer, data.class_names)

    def _log_to_wandb(self, trainer: Trainer, class_names: tuple[str, ...]) -> None:
        labels = dict(enumerate(class_names))
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(
                    key="val/predictions",
                    images=[image for image, _, _ in self._samples],
                    masks=[
                        {"prediction": {"mask_data": pred, "class_labels": labels},
                         "ground_truth": {"mask_data": mask, "class_labels": labels}}
                        for _, mask, pred in self._samples
                    ],
                    step=trainer.global_step,
                )
