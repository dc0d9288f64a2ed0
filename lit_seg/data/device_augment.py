"""Training augmentation of whole batches on the device: random scale, rotation, crop, flip, colour jitter."""

import functools

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from lit_seg.data.batch import Batch, RawBatch
from lit_seg.data.dataset import SegmentationDataset, pad_stack
from lit_seg.data.sampling import sample_seed
from lit_seg.data.transforms import JITTER, Augmentation

# One uniform number per random choice of a sample, in this order.
DRAWS = ("scale", "rotation", "crop_y", "crop_x", "flip", "brightness", "contrast", "saturation", "hue")
_GREY = (0.2989, 0.587, 0.114)  # the luma weights torchvision's grayscale uses


class RawSamples(Dataset):
    """Decoded uint8 samples, each with the uniform random numbers (one per name in ``DRAWS``) that
    fix its augmentation; :class:`DeviceAugment` applies it to the whole batch on the device.

    As with ``SegmentationDataset``, an ``(epoch, index)`` key from ``EpochSampler`` makes the
    draws depend on ``seed``, epoch and index only, so a resumed run repeats the original.

    Args:
        dataset: gives the decoded ``(image, mask)`` of a sample through ``load`` (files or cache).
        seed: base seed of the draws; the DataModule sets it from the run's seed.
    """

    def __init__(self, dataset: SegmentationDataset, seed: int = 0) -> None:
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Tensor | str]:
        epoch, index = key if isinstance(key, tuple) else (None, key)
        image, mask = self.dataset.load(index)
        generator = None if epoch is None else torch.Generator().manual_seed(sample_seed(self.seed, epoch, index))
        return {
            "image": torch.from_numpy(image).permute(2, 0, 1),
            "mask": torch.from_numpy(mask),
            "draws": torch.rand(len(DRAWS), generator=generator),
            "name": self.dataset.pairs[index][0].stem,
        }


def raw_collate(samples: list[dict[str, Tensor | str]], ignore_index: int = 255) -> RawBatch:
    """Stacks raw samples, padding images with zeros and masks with ``ignore_index`` to the largest
    size; ``"sizes"`` holds each sample's own ``(height, width)``. Everything stays uint8 (4x less
    to copy to the device than float images, 8x less than int64 masks)."""
    return {
        "image": pad_stack([s["image"] for s in samples]),
        "mask": pad_stack([s["mask"] for s in samples], ignore_index),
        "sizes": torch.tensor([tuple(s["image"].shape[-2:]) for s in samples]),
        "draws": torch.stack([s["draws"] for s in samples]),
        "name": [s["name"] for s in samples],
    }


# Not kornia 0.9: its warps ignore each sample's own size in a padded batch, and its jitter is 6e-5 off torchvision's.
class DeviceAugment:
    """The training transforms of ``train_transforms``, applied to a raw batch on its device.

    One sampling grid per sample does random scale, rotation (about the scaled image's centre),
    crop (padded where the scaled image is smaller) and horizontal flip in one ``grid_sample``:
    bilinear for the image (without the antialiasing of the CPU path's downscaling), nearest for
    the mask, whose values are therefore never interpolated; pixels outside the image are 0 in
    the image and ``ignore_index`` in the mask. Then colour jitter (brightness, contrast,
    saturation, hue, in this fixed order, with ColorJitter's ranges) and normalisation.

    Args:
        augmentation: what to apply, as the CPU path's :func:`lit_seg.data.transforms.train_transforms`.
    """

    def __init__(self, augmentation: Augmentation) -> None:
        self.augmentation = augmentation

    @torch.no_grad()
    def __call__(self, batch: RawBatch) -> Batch:
        """Turns a :func:`raw_collate` batch into a training batch: normalised float32 images
        ``[B, 3, *crop_size]`` and int64 masks ``[B, *crop_size]``."""
        images, masks = batch["image"], batch["mask"]
        draws = dict(zip(DRAWS, batch["draws"].float().unbind(1)))
        grid = self.sampling_grid(batch["sizes"].float(), draws, images.shape[-2:])
        image = F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False) / 255
        # Sampled as (label - ignore), the zeros outside the image come out as the ignore label.
        ignore_index = self.augmentation.ignore_index
        offset_masks = masks.float().unsqueeze(1) - ignore_index
        mask = F.grid_sample(offset_masks, grid, mode="nearest", padding_mode="zeros", align_corners=False)
        mask = mask.squeeze(1).round().long() + ignore_index
        if self.augmentation.photometric:
            factors = {name: 1 + (2 * draws[name] - 1) * JITTER[name] for name in ("brightness", "contrast", "saturation")}
            image = colour_jitter(image, **factors, hue=(2 * draws["hue"] - 1) * JITTER["hue"])
        mean, std = (_per_channel(values, image.device) for values in (self.augmentation.mean, self.augmentation.std))
        return {"image": (image - mean) / std, "mask": mask, "name": batch["name"]}

    def sampling_grid(self, sizes: Tensor, draws: dict[str, Tensor], padded: torch.Size) -> Tensor:
        """The ``[B, crop height, crop width, 2]`` grid of ``grid_sample`` (x, y in [-1, 1] over the
        padded batch) that maps each output pixel to its source point; -2 marks pixels outside.

        Coordinates are continuous, pixel ``k`` spanning ``[k, k + 1)``, so that a scale maps pixel
        centres onto pixel centres as a resize does.
        """
        crop_size, rotation = self.augmentation.crop_size, self.augmentation.rotation
        crop_h, crop_w = crop_size
        low, high = self.augmentation.scale_range
        scale = low + (high - low) * draws["scale"]
        scaled = (sizes * scale[:, None]).round().clamp(min=1)  # [B, 2]: the RandomScale sizes
        # Crop offsets in the scaled image, uniform over the valid integers; negative = padded.
        spare = torch.stack([scaled[:, 0] - crop_h, scaled[:, 1] - crop_w], dim=1)  # no host-to-device copy
        start = spare.clamp(max=0) + (torch.stack([draws["crop_y"], draws["crop_x"]], 1) * (spare.abs() + 1)).floor()
        start = torch.minimum(start, spare.clamp(min=0))
        y = torch.arange(crop_h, device=sizes.device, dtype=sizes.dtype) + 0.5
        x = torch.arange(crop_w, device=sizes.device, dtype=sizes.dtype) + 0.5
        x = x.expand(len(sizes), -1)
        if self.augmentation.hflip:
            x = torch.where((draws["flip"] < 0.5)[:, None], crop_w - x, x)
        y = start[:, 0, None, None] + y[None, :, None]  # [B, H, 1] in the scaled image
        x = start[:, 1, None, None] + x[:, None, :]  # [B, 1, W]
        y, x = torch.broadcast_tensors(y, x)
        inside = (y >= 0) & (y < scaled[:, 0, None, None]) & (x >= 0) & (x < scaled[:, 1, None, None])
        if rotation:
            angle = torch.deg2rad((2 * draws["rotation"] - 1) * rotation)[:, None, None]
            centre_y, centre_x = scaled[:, 0, None, None] / 2, scaled[:, 1, None, None] / 2
            cos, sin = angle.cos(), angle.sin()
            y, x = centre_y + cos * (y - centre_y) - sin * (x - centre_x), centre_x + sin * (y - centre_y) + cos * (x - centre_x)
            inside &= (y >= 0) & (y < scaled[:, 0, None, None]) & (x >= 0) & (x < scaled[:, 1, None, None])
        # Back to the source image; clamped to its pixel centres so bilinear never reads padding.
        height, width = sizes[:, 0, None, None], sizes[:, 1, None, None]
        y = (y * height / scaled[:, 0, None, None]).clamp(min=0.5).minimum(height - 0.5)
        x = (x * width / scaled[:, 1, None, None]).clamp(min=0.5).minimum(width - 0.5)
        grid = torch.stack([2 * x / padded[1] - 1, 2 * y / padded[0] - 1], dim=-1)
        return torch.where(inside[..., None], grid, torch.full_like(grid, -2.0))


def colour_jitter(images: Tensor, brightness: Tensor, contrast: Tensor, saturation: Tensor, hue: Tensor) -> Tensor:
    """Per-sample brightness, contrast and saturation factors and hue shifts (each ``[B]``) applied
    to ``[B, 3, H, W]`` images in [0, 1], in this order, with torchvision's definitions."""
    images = (images * brightness.view(-1, 1, 1, 1)).clamp(0, 1)
    grey_mean = _grey(images).mean(dim=(1, 2, 3), keepdim=True)
    images = _blend(images, grey_mean, contrast)
    images = _blend(images, _grey(images), saturation)
    return shift_hue(images, hue)


@functools.cache
def _per_channel(values: tuple[float, float, float], device: torch.device) -> Tensor:
    """``values`` as a ``[1, 3, 1, 1]`` float32 tensor on ``device``, made once per values and device
    (not per batch: building it is a host-to-device copy)."""
    return torch.tensor(values, dtype=torch.float32, device=device).view(1, 3, 1, 1)


def _grey(images: Tensor) -> Tensor:
    return (images * _per_channel(_GREY, images.device)).sum(dim=1, keepdim=True)


def _blend(images: Tensor, other: Tensor, factor: Tensor) -> Tensor:
    factor = factor.view(-1, 1, 1, 1)
    return (factor * images + (1 - factor) * other).clamp(0, 1)


def shift_hue(images: Tensor, shift: Tensor) -> Tensor:
    """Rotates the hue of ``[B, 3, H, W]`` RGB images in [0, 1] by ``shift`` (``[B]``, in turns)."""
    red, green, blue = images.unbind(1)
    value, _ = images.max(dim=1)
    chroma = value - images.min(dim=1).values
    grey = chroma == 0
    safe_chroma = torch.where(grey, torch.ones_like(chroma), chroma)
    sector = torch.where(
        value == red,
        ((green - blue) / safe_chroma) % 6,
        torch.where(value == green, (blue - red) / safe_chroma + 2, (red - green) / safe_chroma + 4),
    )
    hue = torch.where(grey, torch.zeros_like(sector), sector / 6)
    saturation = chroma / torch.where(value == 0, torch.ones_like(value), value)
    hue = (hue + shift.view(-1, 1, 1)) % 1
    # HSV to RGB: channel n (5 red, 3 green, 1 blue) is v - v s clamp(min(k, 4 - k), 0, 1), k = (n + 6 h) mod 6.
    channels = []
    for n in (5, 3, 1):
        k = (n + 6 * hue) % 6
        channels.append(value - value * saturation * torch.minimum(k, 4 - k).clamp(0, 1))
    return torch.stack(channels, dim=1)
