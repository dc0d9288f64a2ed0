"""A generated image-folder dataset with real file formats (RGB PNGs, index-PNG masks), for timing the data path."""

from pathlib import Path

import numpy as np
from PIL import Image


def write_folder_dataset(
    root: Path, count: int, image_size: tuple[int, int], num_classes: int, val_count: int = 2, seed: int = 0
) -> None:
    """Writes ``count`` training and ``val_count`` validation pairs in the layout of
    :class:`lit_seg.data.FolderDataModule`: smooth colour fields with mild noise (so that PNG
    decoding costs about what a photo costs) and masks of 32-pixel label blocks.

    Args:
        root: the dataset folder (created).
        count: training pairs.
        image_size: ``(height, width)`` of every image.
        num_classes: labels are ``0..num_classes - 1``; ``classes.txt`` names them ``class<i>``.
        val_count: validation pairs.
        seed: seed of the content.
    """
    rng = np.random.default_rng(seed)
    height, width = image_size
    root.mkdir(parents=True, exist_ok=True)
    for split, number in (("train", count), ("val", val_count)):
        for folder in ("images", "masks"):
            (root / folder / split).mkdir(parents=True, exist_ok=True)
        for i in range(number):
            coarse = Image.fromarray(rng.integers(0, 256, (max(1, height // 64), max(1, width // 64), 3), dtype=np.uint8))
            smooth = np.asarray(coarse.resize((width, height), Image.BILINEAR), dtype=np.int16)
            image = (smooth + rng.integers(-4, 5, smooth.shape)).clip(0, 255).astype(np.uint8)
            blocks = rng.integers(0, num_classes, (-(-height // 32), -(-width // 32)), dtype=np.uint8)
            mask = np.kron(blocks, np.ones((32, 32), dtype=np.uint8))[:height, :width]
            Image.fromarray(image).save(root / "images" / split / f"{i:05d}.png")
            Image.fromarray(mask).save(root / "masks" / split / f"{i:05d}.png")
    # classes.txt last: the benchmark command takes its presence for a complete dataset.
    (root / "classes.txt").write_text("".join(f"class{i}\n" for i in range(num_classes)))
