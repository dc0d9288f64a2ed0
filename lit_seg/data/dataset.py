"""A dataset of (image, mask) file pairs: decoding, label mapping, validation and transforms."""

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset
from torchvision import tv_tensors

from lit_seg.data.batch import Batch
from lit_seg.data.io import DatasetError, read_image, read_index_mask
from lit_seg.data.sampling import sample_seed

Sample = dict[str, Tensor | str]


def map_labels(
    mask: np.ndarray, path: Path, num_classes: int, ignore_index: int, label_map: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``mask`` mapped through ``label_map`` (if any) and its pixel count per label (the ignore
    index counted as 0).

    Raises:
        DatasetError: naming ``path`` when a stored label lies beyond ``label_map``, or a mapped
            label is neither in ``[0, num_classes)`` nor ``ignore_index``.
    """
    if label_map is not None:
        if mask.max(initial=0) >= len(label_map):
            raise DatasetError(f"mask {path} holds label {mask.max()}, beyond the dataset's label map")
        mask = label_map[mask]
    counts = np.bincount(mask.ravel(), minlength=256)
    counts[ignore_index] = 0
    bad = np.flatnonzero(counts[num_classes:]) + num_classes
    if bad.size:
        raise DatasetError(
            f"mask {path} holds label value(s) {bad.tolist()}; expected 0..{num_classes - 1} "
            f"or the ignore index {ignore_index}"
        )
    return mask, counts


class SegmentationDataset(Dataset[Sample]):
    """Image/mask pairs read from disk.

    Args:
        pairs: ``(image path, mask path)`` per sample.
        num_classes: labels must lie in ``[0, num_classes)`` or equal ``ignore_index`` after mapping.
        ignore_index: the label of pixels that count in no loss or metric.
        transform: a torchvision v2 transform taking ``(Image, Mask)``.
        label_map: a 256-entry lookup table from stored label values to training labels.
        read_mask: decodes one mask file to an ``[H, W]`` integer array.
        seed: base seed of the per-sample augmentation when indexed by ``(epoch, index)``.
    """

    def __init__(
        self,
        pairs: Sequence[tuple[Path, Path]],
        num_classes: int,
        ignore_index: int = 255,
        transform: Callable | None = None,
        label_map: np.ndarray | None = None,
        read_mask: Callable[[Path], np.ndarray] = read_index_mask,
        seed: int = 0,
    ) -> None:
        self.pairs = list(pairs)
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.transform = transform
        self.label_map = label_map
        self.read_mask = read_mask
        self.seed = seed

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The decoded ``[H, W, 3]`` uint8 image and ``[H, W]`` uint8 label mask, validated."""
        image_path, mask_path = self.pairs[index]
        image = read_image(image_path)
        mask = self.read_mask(mask_path)
        if image.shape[:2] != mask.shape:
            raise DatasetError(
                f"mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} but image {image_path} "
                f"is {image.shape[1]}x{image.shape[0]} (width x height)"
            )
        mask, _ = map_labels(mask, mask_path, self.num_classes, self.ignore_index, self.label_map)
        return image, mask.astype(np.uint8)

    def __getitem__(self, key: int | tuple[int, int]) -> Sample:
        """Sample ``key``; an ``(epoch, index)`` key (from ``EpochSampler``) also fixes the random
        augmentation to depend on ``seed``, epoch and index only."""
        epoch, index = key if isinstance(key, tuple) else (None, key)
        image, mask = self.load(index)
        image_t = tv_tensors.Image(torch.from_numpy(image).permute(2, 0, 1))
        mask_t = tv_tensors.Mask(torch.from_numpy(mask))
        if self.transform is not None:
            with torch.random.fork_rng(devices=[]):
                if epoch is not None:
                    torch.manual_seed(sample_seed(self.seed, epoch, index))
                image_t, mask_t = self.transform(image_t, mask_t)
        return {"image": image_t.as_subclass(Tensor), "mask": mask_t.as_subclass(Tensor).long(), "name": self.pairs[index][0].stem}


def pad_stack(tensors: Sequence[Tensor], fill: float = 0) -> Tensor:
    """Stacks ``[..., H, W]`` tensors, padded at the bottom and right with ``fill`` to the largest
    height and width where their sizes differ."""
    shapes = [tuple(t.shape[-2:]) for t in tensors]
    if len(set(shapes)) == 1:
        return torch.stack(tensors)
    height, width = max(h for h, _ in shapes), max(w for _, w in shapes)
    stacked = tensors[0].new_full((len(tensors), *tensors[0].shape[:-2], height, width), fill)
    for i, (tensor, (h, w)) in enumerate(zip(tensors, shapes)):
        stacked[i, ..., :h, :w] = tensor
    return stacked


def pad_collate(samples: list[Sample], ignore_index: int = 255) -> Batch:
    """Stacks samples; images of different sizes are zero-padded (masks with ``ignore_index``) to
    the largest size, and ``"sizes"`` then holds each sample's own ``(height, width)``."""
    shapes = [tuple(s["image"].shape[-2:]) for s in samples]
    batch: Batch = {
        "image": pad_stack([s["image"] for s in samples]),
        "mask": pad_stack([s["mask"] for s in samples], ignore_index),
        "name": [s["name"] for s in samples],
    }
    if len(set(shapes)) > 1:
        batch["sizes"] = torch.tensor(shapes)
    return batch
