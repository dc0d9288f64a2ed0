"""A procedurally generated dataset of textured shapes on cluttered backgrounds (the quickstart's).

Deterministic from a seed, written once in the image-folder layout that ``FolderDataModule`` reads.
"""

from pathlib import Path

import numpy as np
from PIL import Image

from lit_seg.data.datasets.folder import FolderDataModule

CLASSES = ("background", "striped_disc", "checkered_square", "dotted_triangle", "ringed_ellipse")
PALETTE = ((0, 0, 0), (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48))
_HUES = {1: (0.9, 0.3, 0.3), 2: (0.3, 0.85, 0.35), 3: (0.3, 0.45, 0.95), 4: (0.95, 0.7, 0.2)}


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth colour gradients, random lines and noise."""
    y, x = np.mgrid[0:size, 0:size] / size
    image = np.empty((size, size, 3))
    for c in range(3):
        a, b, phase = rng.uniform(-1, 1, 3)
        image[..., c] = 0.5 + 0.25 * np.sin(3 * (a * x + b * y) + 6 * phase)
    for _ in range(rng.integers(3, 8)):
        a, b, offset = rng.uniform(-1, 1, 3)
        line = np.abs(a * (x - 0.5) + b * (y - 0.5) - 0.3 * offset) < 0.01
        image[line] = rng.uniform(0, 1, 3)
    return image + rng.normal(0, 0.05, image.shape)


def _shape_mask(label: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The region of a shape in its own rotated, unit-scaled coordinates ``u, v``."""
    if label == 1:
        return u**2 + v**2 < 1
    if label == 2:
        return (np.abs(u) < 0.85) & (np.abs(v) < 0.85)
    if label == 3:
        return (v < 0.7) & (v > -0.8 + 1.7 * np.abs(u))
    return ((u / 1.0) ** 2 + (v / 0.6) ** 2 < 1) & ((u / 0.45) ** 2 + (v / 0.25) ** 2 > 1)


def _texture(label: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """A brightness pattern in [0, 1] characteristic of each class."""
    if label == 1:
        return 0.5 + 0.5 * np.sign(np.sin(9 * u))
    if label == 2:
        return 0.5 + 0.5 * np.sign(np.sin(7 * u) * np.sin(7 * v))
    if label == 3:
        return (np.sin(10 * u) ** 2 + np.sin(10 * v) ** 2 > 1.2).astype(float)
    return 0.5 + 0.5 * np.sin(14 * np.sqrt(u**2 + v**2))


def render_sample(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One ``[size, size, 3]`` uint8 image and its ``[size, size]`` uint8 label mask."""
    image = _background(rng, size)
    mask = np.zeros((size, size), dtype=np.uint8)
    y, x = np.mgrid[0:size, 0:size].astype(float)
    for _ in range(rng.integers(2, 5)):
        label = int(rng.integers(1, len(CLASSES)))
        cy, cx = rng.uniform(0.15, 0.85, 2) * size
        radius = rng.uniform(0.1, 0.2) * size
        angle = rng.uniform(0, np.pi)
        u = ((x - cx) * np.cos(angle) + (y - cy) * np.sin(angle)) / radius
        v = (-(x - cx) * np.sin(angle) + (y - cy) * np.cos(angle)) / radius
        region = _shape_mask(label, u, v)
        colour = np.clip(np.array(_HUES[label]) + rng.normal(0, 0.08, 3), 0, 1)
        shade = 0.35 + 0.65 * _texture(label, u, v)[..., None]
        image[region] = (colour * shade)[region]
        mask[region] = label
    image = np.clip(image + rng.normal(0, 0.03, image.shape), 0, 1)
    return (image * 255).astype(np.uint8), mask


def write_shapes_dataset(root: Path, splits: dict[str, int], size: int = 96, seed: int = 0) -> None:
    """Writes ``splits`` ({split: number of images}) under ``root`` in the image-folder layout."""
    rng = np.random.default_rng(seed)
    palette = [value for colour in PALETTE for value in colour]
    for split, count in splits.items():
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "masks" / split).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            image, mask = render_sample(rng, size)
            Image.fromarray(image).save(root / "images" / split / f"{index:05d}.png")
            label_png = Image.fromarray(mask, mode="P")
            label_png.putpalette(palette)
            label_png.save(root / "masks" / split / f"{index:05d}.png")
    lines = [f"{name} {r} {g} {b}" for name, (r, g, b) in zip(CLASSES, PALETTE)]
    # classes.txt last: its presence marks a complete dataset.
    (root / "classes.txt").write_text("\n".join(lines) + "\n")


class ShapesDataModule(FolderDataModule):
    """The quickstart dataset, generated under ``root`` on first use.

    Args:
        root: where the generated dataset lives.
        train_images: number of training images.
        val_images: number of validation images.
        image_size: side length of the square images.
        seed: the generator's seed; the same seed gives the same dataset.
        **kwargs: the arguments of :class:`SegmentationDataModule`.
    """

    def __init__(
        self,
        root: str = "data/shapes",
        train_images: int = 400,
        val_images: int = 64,
        image_size: int = 96,
        seed: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(root, **kwargs)
        self.splits = {"train": train_images, "val": val_images, "test": val_images}
        self.image_size = image_size
        self.seed = seed

    def prepare_data(self) -> None:
        if not (self.root / "classes.txt").is_file():
            write_shapes_dataset(self.root, self.splits, self.image_size, self.seed)

    def check_root(self) -> None:
        self.prepare_data()
