"""Samples whose mask can be read off the image, for tests of paired transforms."""

import numpy as np
import torch
from torchvision import tv_tensors

from lit_seg.data.palette import bit_palette
from lit_seg.data.transforms import IMAGENET_MEAN, IMAGENET_STD, Augmentation

COLOURS = np.array(bit_palette(8), dtype=np.uint8)  # labels 0..7, colours 128 apart per channel


def block_sample(seed: int, height: int = 64, width: int = 96, block: int = 16) -> tuple[tv_tensors.Image, tv_tensors.Mask]:
    """Large label blocks and an image whose colour is ``COLOURS[label]``: the mask can be read off the image."""
    rng = np.random.default_rng(seed)
    grid = rng.integers(0, len(COLOURS), (height // block, width // block))
    mask = np.kron(grid, np.ones((block, block), dtype=np.int64)).astype(np.uint8)
    image = COLOURS[mask]
    return tv_tensors.Image(torch.from_numpy(image).permute(2, 0, 1)), tv_tensors.Mask(torch.from_numpy(mask))


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """Undoes the normalisation: ``[3, H, W]`` float -> ``[H, W, 3]`` values 0..255."""
    mean, std = torch.tensor(IMAGENET_MEAN)[:, None, None], torch.tensor(IMAGENET_STD)[:, None, None]
    return ((image * std + mean) * 255).permute(1, 2, 0).numpy()


def assert_aligned(image: torch.Tensor, mask: np.ndarray, context: str) -> None:
    """Away from label edges, the transformed image still shows ``COLOURS[label]`` of the transformed mask."""
    colours, inside = to_uint8(image), interior(mask)
    assert inside.sum() > 100, "too few pixels away from block edges to compare"
    error = np.abs(colours[inside] - COLOURS[mask[inside]].astype(float)).max()
    assert error < 2.0, f"{context}: image and mask disagree by {error} grey levels"


def interior(mask: np.ndarray, radius: int = 2) -> np.ndarray:
    """Pixels whose whole (2 radius + 1)^2 neighbourhood holds their label, padding excluded."""
    padded = np.pad(mask.astype(np.int64), radius, constant_values=-1)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (2 * radius + 1, 2 * radius + 1))
    return (windows == mask[..., None, None]).all(axis=(-2, -1)) & (mask != 255)


PIPELINES = {
    "scale": Augmentation((64, 96), (0.5, 2.0), hflip=False),
    "crop": Augmentation((48, 40), (1.0, 1.0), hflip=False),
    "padded crop": Augmentation((80, 112), (1.0, 1.0), hflip=False),
    "flip": Augmentation((64, 96), (1.0, 1.0), hflip=True),
    "rotation": Augmentation((64, 96), (1.0, 1.0), hflip=False, rotation=30.0),
    "all": Augmentation((56, 72), (0.5, 2.0), hflip=True, rotation=15.0),
}
