"""Reading images and label masks from disk, with errors that name the file."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

# Modes of 8-bit channels, which PIL converts to RGB as they are meant.
EIGHT_BIT_MODES = ("1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr")
# Modes of 16-bit unsigned grey levels (0..65535), which PIL's RGB conversion clips at 255.
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
# Modes of single-channel label masks.
MASK_MODES = ("L", "P", "I", *SIXTEEN_BIT_MODES)


class DatasetError(ValueError):
    """A dataset file is missing, unreadable or holds values the dataset cannot have."""


@contextmanager
def open_image(path: Path, kind: str = "image") -> Iterator[Image.Image]:
    """``PIL.Image.open`` that fails with a :class:`DatasetError` naming the file as ``kind`` ("image",
    "mask"): unreadable or corrupt, or above PIL's pixel limit (``Image.MAX_IMAGE_PIXELS``, which
    guards against decompression bombs)."""
    try:
        with Image.open(path) as image:
            yield image
    except DatasetError:
        raise
    except Image.DecompressionBombError as error:
        raise DatasetError(f"{kind} {path} is too large to read: {error}; tile or downscale it") from error
    except (OSError, SyntaxError, ValueError) as error:
        raise DatasetError(f"cannot read {kind} {path}: {error}") from error


def read_image(path: Path) -> np.ndarray:
    """Reads an image as an ``[H, W, 3]`` uint8 RGB array.

    8-bit modes (grayscale, palette, RGBA, CMYK, ...) are converted by PIL. 16-bit grayscale is
    scaled from its full range (0..65535, as PNG and TIFF define 16-bit samples) to 0..255, where
    PIL's conversion would clip every value above 255. 32-bit integer and floating-point images have
    no defined range to scale from and are refused, as are other modes.
    """
    with open_image(path) as image:
        if image.mode in SIXTEEN_BIT_MODES:
            grey = np.round(np.asarray(image, dtype=np.float32) / 257).astype(np.uint8)  # 65535 / 257 = 255
            return np.repeat(grey[..., None], 3, axis=2)
        if image.mode not in EIGHT_BIT_MODES:
            raise DatasetError(
                f"image {path} has mode {image.mode}, which has no defined 8-bit scaling; "
                "convert it to 8-bit RGB or grayscale"
            )
        return np.array(image.convert("RGB"))


def read_index_mask(path: Path) -> np.ndarray:
    """Reads a single-channel label PNG (grayscale or palette indices) as an ``[H, W]`` uint8 array;
    a 16- or 32-bit mask must hold labels 0..255."""
    with open_image(path, "mask") as image:
        if image.mode not in MASK_MODES:
            raise DatasetError(f"mask {path} has mode {image.mode}, expected a single-channel or palette PNG")
        labels = np.asarray(image)
    if labels.dtype != np.uint8:
        outside = labels[(labels < 0) | (labels > 255)]
        if outside.size:
            values = np.unique(outside)[:5].tolist()
            raise DatasetError(f"mask {path} holds label value(s) {values}, outside 0..255 (mode {image.mode})")
        labels = labels.astype(np.uint8)
    return labels


def read_colour_mask(path: Path, palette: np.ndarray) -> np.ndarray:
    """Reads an RGB label PNG and maps each colour to its index in ``palette`` (``[C, 3]`` uint8)."""
    with open_image(path, "mask") as image:
        rgb = np.asarray(image.convert("RGB")).astype(np.int32)
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
