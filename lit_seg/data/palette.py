"""Class colours: the PASCAL VOC colour map, dataset palettes as colour tables, and colourised masks."""

from collections.abc import Sequence

import numpy as np

Palette = tuple[tuple[int, int, int], ...]


def bit_palette(count: int) -> Palette:
    """The VOC colour map: the bits of label ``i`` spread, three at a time, over R, G and B from the top bit down."""
    colours = []
    for label in range(count):
        rgb, value = [0, 0, 0], label
        for shift in range(7, -1, -1):
            for channel in range(3):
                rgb[channel] |= ((value >> channel) & 1) << shift
            value >>= 3
        colours.append((rgb[0], rgb[1], rgb[2]))
    return tuple(colours)


def void_first(num_classes: int) -> tuple[Palette, np.ndarray]:
    """The palette and label map of a release whose stored label 0 is void and 1..N its classes:
    the VOC colour map of the stored labels 1..N, and a table sending 0 to 255 and k to k - 1."""
    return bit_palette(num_classes + 1)[1:], np.array([255, *range(num_classes)], dtype=np.uint8)


def class_palette(num_classes: int, palette: Sequence[tuple[int, int, int]] | None = None) -> np.ndarray:
    """``[C, 3]`` uint8 colours: ``palette`` (a dataset's own), else the VOC colour map."""
    return np.array(palette or bit_palette(num_classes), dtype=np.uint8)


def palette_table(palette: np.ndarray | Sequence[tuple[int, int, int]], fill: int = 0) -> np.ndarray:
    """A ``[256, 3]`` uint8 table of every label value's colour: ``palette``'s for the first values,
    grey level ``fill`` for the others (a PNG palette, or a lookup table for :func:`colourise`)."""
    table = np.full((256, 3), fill, dtype=np.uint8)
    table[: len(palette)] = palette
    return table


def colourise(mask: np.ndarray, palette: np.ndarray, ignore_index: int = 255) -> np.ndarray:
    """An ``[H, W, 3]`` colour image of a label mask; ignored pixels are white."""
    table = palette_table(palette, fill=255)
    table[ignore_index] = 255
    return table[mask.astype(np.uint8)]
