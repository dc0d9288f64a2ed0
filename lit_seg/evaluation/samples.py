"""A few validation images with ground truth and prediction: a PNG grid on disk and W&B masks."""

from pathlib import Path

import numpy as np
from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import WandbLogger
from PIL import Image
from torch import Tensor

from lit_seg.data.batch import Batch, at_own_sizes
from lit_seg.data.palette import class_palette, colourise
from lit_seg.data.transforms import unnormalise
from lit_seg.evaluation.report import write_atomically


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
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: dict[str, Tensor],
        batch: Batch,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not trainer.is_global_zero or len(self._samples) >= self.num_samples:
            return
        data = trainer.datamodule
        for _, images, masks, predictions in at_own_sizes(batch, batch["image"], batch["mask"], outputs["predictions"]):
            for image, mask, prediction in zip(images, masks, predictions):
                if len(self._samples) >= self.num_samples:
                    return
                rgb = (unnormalise(image, data.mean, data.std).clamp(0, 1) * 255).byte()
                self._samples.append((
                    rgb.permute(1, 2, 0).cpu().numpy(),
                    mask.cpu().numpy().astype(np.uint8),
                    prediction.cpu().numpy().astype(np.uint8),
                ))

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        log_dir = trainer.log_dir  # a broadcast under DDP: every process must ask
        if not trainer.is_global_zero or not self._samples or trainer.sanity_checking:
            return
        data = trainer.datamodule
        palette = class_palette(data.num_classes, data.palette)
        rows = [
            np.concatenate([image, colourise(mask, palette, data.ignore_index), colourise(pred, palette)], axis=1)
            for image, mask, pred in self._samples
        ]
        width = max(row.shape[1] for row in rows)
        grid = np.concatenate([np.pad(row, ((0, 2), (0, width - row.shape[1]), (0, 0)), constant_values=255) for row in rows])
        directory = Path(log_dir or trainer.default_root_dir)
        directory.mkdir(parents=True, exist_ok=True)
        write_atomically(directory / "predictions.png", lambda path: Image.fromarray(grid).save(path, format="PNG"))
        self._log_to_wandb(trainer, data.class_names)

    def _log_to_wandb(self, trainer: Trainer, class_names: tuple[str, ...]) -> None:
        """Logs the samples as W&B images with ground-truth and prediction masks (the ignore label named
        "ignore"). They are held back (``commit=False``) and so land in the row of the validation
        metrics that Lightning logs next, at the step of those metrics."""
        loggers = [logger for logger in trainer.loggers if isinstance(logger, WandbLogger)]
        if not loggers:  # wandb.Image writes its PNG at once
            return
        import wandb

        labels = dict(enumerate(class_names)) | {trainer.datamodule.ignore_index: "ignore"}
        images = [
            wandb.Image(image, masks={
                "prediction": {"mask_data": pred, "class_labels": labels},
                "ground_truth": {"mask_data": mask, "class_labels": labels},
            })
            for image, mask, pred in self._samples
        ]
        for logger in loggers:
            logger.experiment.log({"val/predictions": images}, commit=False)
