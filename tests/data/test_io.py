"""Reading label masks from disk."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lit_seg.data.io import DatasetError, read_colour_mask

# Colours that differ in one channel each, green included: every channel must count.
PALETTE = np.array([[0, 0, 0], [230, 25, 75], [230, 200, 75], [230, 25, 180], [10, 25, 75]], dtype=np.uint8)


def test_colour_mask_maps_each_colour_to_its_index(tmp_path: Path) -> None:
    labels = np.random.default_rng(0).integers(0, len(PALETTE), (12, 17))
    path = tmp_path / "mask.png"
    Image.fromarray(PALETTE[labels]).save(path)
    assert np.array_equal(read_colour_mask(path, PALETTE), labels)


def test_colour_outside_the_palette_is_named_with_the_file(tmp_path: Path) -> None:
    rgb = np.zeros((4, 5, 3), dtype=np.uint8)
    rgb[2, 3] = (230, 26, 75)
    path = tmp_path / "mask.png"
    Image.fromarray(rgb).save(path)
    with pytest.raises(DatasetError, match=rf"mask {path}: colour \(230, 26, 75\) at \(x=3, y=2\) is not in the palette"):
        read_colour_mask(path, PALETTE)
