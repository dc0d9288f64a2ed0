"""Reading images and label masks from disk, with errors that name the file."""

from pathlib import Path

import numpy as np
from PIL import Image


class DatasetError(ValueError):
    """A dataset file is missing, unreadable or holds values the dataset cannot have."""


def read_image(path: Path) -> np.ndarray:
    """Reads an image as an ``[H, W, 3]`` uint8 RGB array (grayscale and RGBA are converted)."""
    try:
        with Image.open(path) as image:
            return np.array(image.convert("RGB"))
    except (OSError, SyntaxError, ValueError) as error:
        raise DatasetError(f"cannot read image {path}: {error}") from error


def read_index_mask(path: Path) -> np.ndarray:
    """Reads a single-channel label PNG (grayscale or palette indices) as an ``[H, W]`` array."""
    try:
        with Image.open(path) as image:
            if image.mode not in ("L", "P", "I", "I;16"):
                raise DatasetError(f"mask {path} has mode {image.mode}, expected a single-channel or palette PNG")
            return np.asarray(image)
    except (OSError, SyntaxError) as error:
        raise DatasetError(f"cannot read mask {path}: {error}") from error


def read_colour_mask(path: Path, palette: np.ndarray) -> np.ndarray:
    """Reads an RGB label PNG and maps each colour to its index in ``palette`` (``[C, 3]`` uint8)."""
    try:
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB")).astype(np.int32)
    except (OSError, SyntaxError) as error:
        raise DatasetError(f"cannot read mask {path}: {error}") from error
    colours = palette.astype(np.int32)
    codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    palette_codes = (colours[:, 0] << 16) | (colours[:, 1] << 8) | colours[:, 2]
    order = np.argsort(palette_codes)
    position = np.searchsorted(palette_codes[order], codes).clip(0, len(order) - 1)
    unknown = palette_codes[order][position] != codes
    if unknown.any():
        y, x = np.argwhere(unknown)[0]
        raise DatasetError(f"mask {path}: colour {tuple(rgb[y, x].tolist())} at (x={x}, y={y}) is not in the palette")
    return order[position].astype(np.uint8)


def list_files(folder: Path, suffixes: tuple[str, ...] = (".png", ".jpg", ".jpeg")) -> list[Path]:
    """The files in ``folder`` with one of ``suffixes``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in suffixes)
