"""The DataModule that every dataset shares: splits, transforms, loaders and class metadata.

A dataset subclass states its class names (and palette), says where each split's file pairs
are (``pairs``), and, where stored labels are not training labels, gives a ``label_map``.
"""

from functools import cached_property, partial
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from lightning import LightningDataModule
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader

from lit_seg.data.batch import Batch, RawBatch
from lit_seg.data.cache import CachedDataset, DecodedCache
from lit_seg.data.dataset import SegmentationDataset, pad_collate
from lit_seg.data.device_augment import DeviceAugment, RawSamples, raw_collate
from lit_seg.data.image_files import ImageFiles, list_images, predict_collate
from lit_seg.data.io import DatasetError, read_index_mask
from lit_seg.data.options import check_option
from lit_seg.data.palette import Palette
from lit_seg.data.sampling import EpochSampler, run_seed
from lit_seg.data.transforms import IMAGENET_MEAN, IMAGENET_STD, Augmentation, eval_transforms, train_transforms


class SegmentationDataModule(LightningDataModule):
    """Base DataModule; subclasses set ``class_names`` and implement :meth:`pairs`.

    Args:
        root: the dataset's folder, laid out as its public release.
        batch_size: training batch size per process.
        eval_batch_size: validation/test batch size per process; images of different sizes are
            padded together and evaluated each at its own size.
        num_workers: loader worker processes.
        crop_size: training crop ``(height, width)``; smaller images are padded.
        scale_range: training random-scale range.
        hflip: random horizontal flips in training.
        rotation: maximum random rotation in degrees (0 = none).
        photometric: random brightness/contrast/saturation/hue in training.
        cache: keep every decoded image and mask after the first read: ``"memory"``, or
            ``"disk"`` (memory-mapped ``.npy`` files under ``cache_dir``); ``"none"`` decodes
            files every time.
        cache_dir: folder of the disk cache (default ``<root>/.lit_seg_cache``).
        device_augment: the loader only decodes (or reads the cache) and the training
            augmentation runs on whole batches on the device (:mod:`lit_seg.data.device_augment`).
        predict_inputs: an image file or folder, or a list of them, that ``predict`` segments (any size; see
            :class:`lit_seg.evaluation.prediction_writer.SegmentationWriter` for the outputs); None predicts the test
            split's images.
    """

    class_names: tuple[str, ...] = ()
    palette: Palette | None = None
    ignore_index: int = 255
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    prepare_script: str = ""  # the data/ script that prepares the dataset, if any

    def __init__(
        self,
        root: str,
        batch_size: int = 8,
        eval_batch_size: int = 1,
        num_workers: int = 4,
        crop_size: tuple[int, int] = (512, 512),
        scale_range: tuple[float, float] = (0.5, 2.0),
        hflip: bool = True,
        rotation: float = 0.0,
        photometric: bool = False,
        cache: Literal["none", "memory", "disk"] = "none",
        cache_dir: str | None = None,
        device_augment: bool = False,
        predict_inputs: str | list[str] | None = None,
    ) -> None:
        super().__init__()
        check_option(batch_size > 0, "batch_size", batch_size, "a positive number of images per process")
        check_option(eval_batch_size > 0, "eval_batch_size", eval_batch_size, "a positive number of images per process")
        check_option(num_workers >= 0, "num_workers", num_workers, "0 (load in the main process) or more")
        self.root = Path(root)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self.augmentation = Augmentation(
            crop_size, scale_range, self.ignore_index, hflip, rotation, photometric, self.mean, self.std
        )
        self.cache = cache
        self.cache_dir = Path(cache_dir) if cache_dir else self.root / ".lit_seg_cache"
        self.device_augment = device_augment
        self.predict_inputs = [predict_inputs] if isinstance(predict_inputs, str) else predict_inputs
        self.datasets: dict[str, SegmentationDataset | RawSamples | ImageFiles] = {}

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def pairs(self, split: str) -> list[tuple[Path, Path]]:
        """The ``(image, mask)`` file pairs of ``split`` ("train", "val" or "test")."""
        raise NotImplementedError

    def label_map(self) -> np.ndarray | None:
        """A 256-entry table from stored label values to training labels, or None if they agree."""
        return None

    def read_mask(self, path: Path) -> np.ndarray:
        return read_index_mask(path)

    @property
    def prepare_command(self) -> str:
        """The command that prepares the dataset under ``root`` ("" without a ``prepare_script``)."""
        return f"python data/{self.prepare_script} --root {self.root}" if self.prepare_script else ""

    def _missing(self, what: str) -> FileNotFoundError:
        hint = f"; prepare it with: {self.prepare_command}" if self.prepare_command else ""
        return FileNotFoundError(f"{type(self).__name__}: no {what}{hint}")

    def check_root(self) -> None:
        """Fails with the path looked in and the preparation command when the data is absent."""
        if not self.root.is_dir():
            raise self._missing(f"dataset folder at {self.root.resolve()}")

    def require(self, path: Path, kind: Literal["folder", "list"]) -> Path:
        """``path``, a folder or a list file of the dataset; fails with the preparation command when absent."""
        if not (path.is_dir() if kind == "folder" else path.is_file()):
            raise self._missing(f"{kind} {path}")
        return path

    def dataset(self, split: str, train: bool = False) -> SegmentationDataset | RawSamples:
        """The dataset of ``split`` with training or evaluation transforms (raw samples for
        ``device_augment`` training)."""
        self.check_root()
        pairs = self.pairs(split)
        if not pairs:
            raise DatasetError(f"{type(self).__name__}: split {split!r} under {self.root} holds no image/mask pairs")
        for image, mask in pairs:
            if not image.is_file():
                raise DatasetError(f"{type(self).__name__}: split {split!r} lists image {image}, which does not exist")
            if not mask.is_file():
                raise DatasetError(f"image {image} has no mask: expected {mask}")
        if not train:
            transform = eval_transforms(self.mean, self.std)
        else:  # device_augment: the loader only decodes, and batch_augment does the rest
            transform = None if self.device_augment else train_transforms(self.augmentation)
        dataset = SegmentationDataset(
            pairs, self.num_classes, self.ignore_index, transform, self.label_map(), self.read_mask
        )
        if self.cache == "memory":
            dataset = CachedDataset(dataset, DecodedCache.in_memory(dataset))
        elif self.cache == "disk":
            dataset = CachedDataset(dataset, DecodedCache.on_disk(dataset, self.cache_dir / split))
        return RawSamples(dataset) if train and self.device_augment else dataset

    def setup(self, stage: str) -> None:
        if stage == "predict":
            images = list_images(self.predict_inputs) if self.predict_inputs else [i for i, _ in self.pairs("test")]
            self.datasets["predict"] = ImageFiles(images, eval_transforms(self.mean, self.std))
            return
        splits = {"fit": [("train", True), ("val", False)], "validate": [("val", False)],
                  "test": [("test", False)]}[stage]
        for split, train in splits:
            if split not in self.datasets:
                self.datasets[split] = self.dataset(split, train)

    def _loader(self, split: str, train: bool) -> DataLoader:
        dataset = self.datasets[split]
        trainer = self.trainer
        replicas, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        if train:
            # Order and augmentation follow (seed, epoch, index): a resumed run repeats the original.
            seed = run_seed() or 0  # 0 without one
            dataset.seed = seed
            sampler = EpochSampler(dataset, replicas, rank, shuffle=True, seed=seed, drop_last=True)
            sampler.set_epoch(trainer.current_epoch if trainer is not None else 0)
        else:
            # Lightning's default sampler pads the set by repeating samples, which would count
            # them twice in the metrics; this one gives every sample to exactly one process.
            sampler = UnrepeatedDistributedSampler(dataset, replicas, rank, shuffle=False)
        return DataLoader(
            dataset,
            batch_size=self.batch_size if train else self.eval_batch_size,
            sampler=sampler,
            drop_last=train,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
            collate_fn=partial(
                raw_collate if isinstance(dataset, RawSamples) else pad_collate, ignore_index=self.ignore_index
            ),
        )

    def on_after_batch_transfer(self, batch: Batch | RawBatch, dataloader_idx: int) -> Batch:
        """Augments raw training batches (``device_augment``) once they are on the device."""
        return self.batch_augment(batch) if "draws" in batch else batch

    @cached_property
    def batch_augment(self) -> DeviceAugment:
        """The ``device_augment`` training augmentation, built on first use."""
        return DeviceAugment(self.augmentation)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)

    def predict_dataloader(self) -> DataLoader:
        trainer = self.trainer
        replicas, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        dataset = self.datasets["predict"]
        return DataLoader(
            dataset,
            batch_size=self.eval_batch_size,
            sampler=UnrepeatedDistributedSampler(dataset, replicas, rank, shuffle=False),  # each file once
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
            collate_fn=predict_collate,
        )
