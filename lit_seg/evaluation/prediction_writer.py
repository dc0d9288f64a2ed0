"""``predict`` outputs: a palette mask and a colour overlay per image, never half-written."""

import errno
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import BasePredictionWriter
from PIL import Image
from torch import Tensor
from torchvision.utils import draw_segmentation_masks

from lit_seg.data.batch import PredictBatch, at_own_sizes
from lit_seg.data.palette import class_palette, palette_table
from lit_seg.data.transforms import unnormalise
from lit_seg.evaluation.report import write_atomically

# OS errors of a disk or folder that no later file escapes (full, over quota, read-only, not permitted):
# predict stops at the first, and ``lit-seg`` reports any of them, in fit too, as one line.
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


class PredictionFailures(RuntimeError):
    """Some inputs of ``predict`` could not be read or their outputs written; the others were."""


def write_file(path: Path, write: Callable[[Path], None]) -> None:
    """:func:`lit_seg.evaluation.report.write_atomically`, whose OS error names ``path`` (a full disk's
    names no file, and an unwritable folder's names the temporary file)."""
    try:
        write_atomically(path, write)
    except OSError as error:
        if error.errno is None:
            raise
        raise OSError(error.errno, error.strerror, str(path)) from error


def output_paths(directory: Path, image: Path) -> tuple[Path, Path]:
    """Where the mask (``<stem>.png``) and the overlay (``<stem>_overlay.jpg``) of ``image`` go."""
    return directory / f"{image.stem}.png", directory / f"{image.stem}_overlay.jpg"


def save_mask(labels: np.ndarray, palette: np.ndarray, path: Path) -> None:
    """Writes ``[H, W]`` labels as a palette PNG (each pixel's value is its class index)."""
    image = Image.fromarray(labels.astype(np.uint8))
    image.putpalette(palette_table(palette).ravel().tolist())  # mode L becomes P
    write_file(path, lambda temporary: image.save(temporary, format="PNG"))


def overlay(image: Tensor, labels: Tensor, palette: np.ndarray, alpha: float = 0.5) -> Tensor:
    """The ``[3, H, W]`` uint8 image blended with the colours of its ``[H, W]`` labels (opacity ``alpha``)."""
    classes = labels.unique()
    colours = palette[classes.cpu().numpy()].tolist()
    blend = draw_segmentation_masks(image.float() / 255, labels == classes[:, None, None], alpha, colours)
    return (blend * 255).round().byte()


def save_overlay(image: Tensor, labels: Tensor, palette: np.ndarray, path: Path, alpha: float = 0.5) -> None:
    """Writes the :func:`overlay` of a ``[3, H, W]`` uint8 image as a JPEG."""
    picture = Image.fromarray(overlay(image, labels, palette, alpha).permute(1, 2, 0).cpu().numpy())
    write_file(path, lambda temporary: picture.save(temporary, format="JPEG", quality=90))


class SegmentationWriter(BasePredictionWriter):
    """For every image of ``predict``, writes the predicted labels as a palette PNG ``<stem>.png``
    (pixel value = class index) and the image blended with the class colours as
    ``<stem>_overlay.jpg``, side by side in ``output_dir``, each of the image's size.

    Before predicting anything, stops with an error if two inputs share a stem or if an output
    exists (unless ``overwrite``). Each file is written to a temporary name and renamed, so a run
    stopped mid-way leaves no partial file. An input that cannot be read, or whose outputs cannot be
    written, is reported by name as it comes and the others are still predicted; at the end
    :class:`PredictionFailures` says how many failed (``lit-seg predict`` then exits with 1). A full
    disk, a read-only folder or a refused permission (``DISK_ERRNOS``) stops the run at once, naming
    the file. Predictions are not kept in memory (``return_predictions`` is turned off).

    Args:
        output_dir: where the files go; None for ``<log dir>/predictions``.
        overwrite: replace existing outputs.
        overlay_alpha: opacity of the class colours in the overlays.
        progress_interval: seconds between progress lines when the output is not a terminal.
    """

    def __init__(
        self,
        output_dir: str | None = None,
        overwrite: bool = False,
        overlay_alpha: float = 0.5,
        progress_interval: float = 10.0,
    ) -> None:
        super().__init__(write_interval="batch")
        self.output_dir = output_dir
        self.overwrite = overwrite
        self.overlay_alpha = overlay_alpha
        self.progress_interval = progress_interval
        self.directory = Path(output_dir or "predictions")
        self.failed: list[tuple[str, str]] = []
        self.written = 0
        self._total = 0
        self._last_print = 0.0
        self._palette: np.ndarray | None = None  # the class colours, set per predict run

    def on_predict_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        trainer.predict_loop.return_predictions = False
        self.directory = Path(self.output_dir or Path(trainer.log_dir or trainer.default_root_dir) / "predictions")
        paths = trainer.datamodule.datasets["predict"].paths
        self._check_outputs(paths)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.failed, self.written, self._total = [], 0, len(paths)
        data = trainer.datamodule
        self._palette = class_palette(data.num_classes, data.palette)
        self._last_print = time.perf_counter()

    def _check_outputs(self, paths: list[Path]) -> None:
        stems: dict[str, Path] = {}
        for path in paths:
            if path.stem in stems:
                raise FileExistsError(f"inputs {stems[path.stem]} and {path} would both write {path.stem}.png")
            stems[path.stem] = path
        if self.overwrite:
            return
        existing = [out for path in paths for out in output_paths(self.directory, path) if out.exists()]
        if existing:
            raise FileExistsError(
                f"{len(existing)} output(s) already exist in {self.directory}, e.g. {existing[0].name}; "
                "choose another --predictions.output_dir or give --predictions.overwrite true"
            )

    def write_on_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        prediction: list[Tensor | str],
        batch_indices: Any,
        batch: PredictBatch,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        for path, error in batch["failed"]:
            self._skip(path, error)
        data = trainer.datamodule
        images = unnormalise(batch["image"], data.mean, data.std)
        crops = (image for _, part in at_own_sizes(batch, images) for image in part)
        for image, labels, path in zip(crops, prediction, batch["path"], strict=True):
            if isinstance(labels, str):  # the module's reason for not predicting this image
                self._skip(path, labels)
                continue
            mask_path, overlay_path = output_paths(self.directory, Path(path))
            rgb = (image * 255).round().clamp(0, 255).byte()
            try:
                self._save(rgb, labels, mask_path, overlay_path)
            except OSError as error:
                if error.errno in DISK_ERRNOS:
                    raise
                self._skip(path, f"cannot write {error.filename or self.directory}: {error.strerror or error}")
                continue
            self.written += 1
        now = time.perf_counter()
        if not sys.stdout.isatty() and now - self._last_print >= self.progress_interval:
            self._last_print = now
            print(f"predicted {self.written + len(self.failed)}/{self._total} images", flush=True)

    def _save(self, rgb: Tensor, labels: Tensor, mask_path: Path, overlay_path: Path) -> None:
        """Writes the mask and the overlay of one image: both or neither."""
        save_mask(labels.cpu().numpy(), self._palette, mask_path)
        try:
            save_overlay(rgb, labels, self._palette, overlay_path, self.overlay_alpha)
        except BaseException:
            mask_path.unlink()
            raise

    def _skip(self, path: str, error: str) -> None:
        print(f"lit-seg predict: skipped {path}: {error}", file=sys.stderr, flush=True)
        self.failed.append((path, error))

    def on_predict_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Says how many images were written; raises :class:`PredictionFailures` if any input failed."""
        print(f"wrote masks and overlays of {self.written} images to {self.directory}", flush=True)
        if self.failed:
            names = [Path(path).name for path, _ in self.failed]
            listed = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            raise PredictionFailures(
                f"{len(self.failed)} of {self._total} input(s) failed (each reported above): {listed}"
            )
