"""The batches the loaders give, by kind, and each image of a padded batch at its own size."""

from collections.abc import Iterator
from typing import NotRequired, TypedDict

from torch import Tensor


class Batch(TypedDict):
    """A training or evaluation batch (:func:`lit_seg.data.dataset.pad_collate`, or a
    :class:`RawBatch` once :class:`lit_seg.data.device_augment.DeviceAugment` has augmented it).

    Attributes:
        image: ``[B, 3, H, W]`` normalised float images.
        mask: ``[B, H, W]`` int64 labels.
        name: each image file's stem.
        sizes: ``[B, 2]``, each image's own ``(height, width)``; only in a batch of images of
            different sizes, zero-padded (masks with the ignore index) to the largest.
    """

    image: Tensor
    mask: Tensor
    name: list[str]
    sizes: NotRequired[Tensor]


class RawBatch(TypedDict):
    """A ``device_augment`` training batch before augmentation (:func:`lit_seg.data.device_augment.raw_collate`).

    Attributes:
        image: ``[B, 3, H, W]`` uint8 images, zero-padded to the largest.
        mask: ``[B, H, W]`` uint8 labels, padded with the ignore index.
        sizes: ``[B, 2]``, each image's own ``(height, width)``.
        draws: ``[B, len(DRAWS)]``, the uniform numbers that fix each sample's augmentation.
        name: each image file's stem.
    """

    image: Tensor
    mask: Tensor
    sizes: Tensor
    draws: Tensor
    name: list[str]


class PredictBatch(TypedDict):
    """A batch of images to predict (:func:`lit_seg.data.image_files.predict_collate`).

    Attributes:
        image: ``[B, 3, H, W]`` normalised float images of the readable files (``B`` may be 0).
        path: their files.
        failed: ``(path, error)`` of each file that could not be read.
        sizes: as in :class:`Batch`.
    """

    image: Tensor
    path: list[str]
    failed: list[tuple[str, str]]
    sizes: NotRequired[Tensor]


def at_own_sizes(batch: Batch | PredictBatch, *tensors: Tensor) -> Iterator[tuple[slice, *tuple[Tensor, ...]]]:
    """``tensors`` of ``batch`` (its images, masks, predictions: ``[B, ..., H, W]``) in parts whose
    images share one size, each cut to that size: the whole batch when it has no ``"sizes"``, else
    each image alone, without its padding.

    Yields:
        ``(rows, *parts)``: the part's rows of the batch, and each tensor's ``[N, ..., h, w]`` part.
    """
    if "sizes" not in batch:
        yield slice(None), *tensors
        return
    for index, (height, width) in enumerate(batch["sizes"].tolist()):
        rows = slice(index, index + 1)
        yield rows, *(tensor[rows, ..., :height, :width] for tensor in tensors)
