"""Paired image/mask transforms (torchvision v2): the mask is only ever resampled nearest."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from lit_seg.data.options import check_option

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Colour-jitter ranges: factors 1 +- these, hue shift +- 0.05 (used on the CPU and by DeviceAugment).
JITTER = {"brightness": 0.125, "contrast": 0.5, "saturation": 0.5, "hue": 0.05}


class RandomScale(v2.Transform):
    """Resizes by a factor drawn uniformly from ``scale_range`` (masks use nearest neighbour)."""

    def __init__(self, scale_range: tuple[float, float]) -> None:
        super().__init__()
        self.scale_range = scale_range

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        height, width = v2.query_size(flat_inputs)
        scale = torch.empty(1).uniform_(*self.scale_range).item()
        return {"size": [max(1, round(height * scale)), max(1, round(width * scale))]}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return F.resize(inpt, params["size"], antialias=True)


def _normalise(mean: Sequence[float], std: Sequence[float]) -> list[v2.Transform]:
    return [
        v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True),
        v2.Normalize(mean=list(mean), std=list(std)),
    ]


@dataclass(frozen=True)
class Augmentation:
    """The training augmentation, one description for both paths that apply it: the CPU transforms
    (:func:`train_transforms`) and the device's (:class:`lit_seg.data.device_augment.DeviceAugment`).

    Attributes:
        crop_size: output ``(height, width)``; smaller images are padded.
        scale_range: random-scale range.
        ignore_index: the mask's fill where padding and rotation leave no pixel (the image's is 0).
        hflip: random horizontal flips.
        rotation: maximum random rotation in degrees (0 = none).
        photometric: random brightness/contrast/saturation/hue (factors in ``JITTER``'s ranges).
        mean: per-channel mean of the normalisation (of images scaled to [0, 1]).
        std: per-channel standard deviation of the normalisation.
    """

    crop_size: tuple[int, int]
    scale_range: tuple[float, float] = (0.5, 2.0)
    ignore_index: int = 255
    hflip: bool = True
    rotation: float = 0.0
    photometric: bool = False
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        crop, scales = tuple(self.crop_size), tuple(self.scale_range)
        for name, value in (("crop_size", crop), ("scale_range", scales), ("mean", tuple(self.mean)), ("std", tuple(self.std))):
            object.__setattr__(self, name, value)  # lists from a config become the tuples compared and hashed
        check_option(len(crop) == 2 and min(crop) > 0, "crop_size", crop, "two positive sizes (height, width)")
        check_option(
            len(scales) == 2 and 0 < scales[0] <= scales[1], "scale_range", scales, "(low, high) with 0 < low <= high"
        )
        check_option(0 <= self.rotation <= 180, "rotation", self.rotation, "a maximum angle in degrees from 0 to 180")


def train_transforms(augmentation: Augmentation) -> v2.Compose:
    """Random scale, optional rotation, padded random crop, flip, optional colour jitter, normalise."""
    fill = {tv_tensors.Image: 0, tv_tensors.Mask: augmentation.ignore_index}
    steps: list[v2.Transform] = []
    if augmentation.scale_range != (1.0, 1.0):
        steps.append(RandomScale(augmentation.scale_range))
    if augmentation.rotation:
        steps.append(v2.RandomRotation(augmentation.rotation, interpolation=v2.InterpolationMode.BILINEAR, fill=fill))
    steps.append(v2.RandomCrop(list(augmentation.crop_size), pad_if_needed=True, fill=fill))
    if augmentation.hflip:
        steps.append(v2.RandomHorizontalFlip())
    if augmentation.photometric:
        steps.append(v2.ColorJitter(**JITTER))
    return v2.Compose(steps + _normalise(augmentation.mean, augmentation.std))


def unnormalise(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Undoes the normalisation of ``[..., 3, H, W]`` images: values back on the 0-1 scale (unclamped)."""
    return images * images.new_tensor(std).view(3, 1, 1) + images.new_tensor(mean).view(3, 1, 1)


def eval_transforms(mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> v2.Compose:
    """Full resolution, normalised."""
    return v2.Compose(_normalise(mean, std))
