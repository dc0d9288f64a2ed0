"""Reading images and label masks from disk."""

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lit_seg.data.io import DatasetError, read_colour_mask, read_image, read_index_mask

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


def test_16_bit_grayscale_is_scaled_to_8_bits(tmp_path: Path) -> None:
    levels = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)  # 0, 1, 127.5, 255 in 8 bits
    path = tmp_path / "depth.png"
    Image.fromarray(levels).save(path)
    with Image.open(path) as image:
        assert image.mode == "I;16"
    rgb = read_image(path)
    assert rgb.shape == (1, 4, 3) and rgb.dtype == np.uint8
    assert rgb[..., 0].tolist() == [[0, 1, 128, 255]] and (rgb == rgb[..., :1]).all()


@pytest.mark.parametrize(("dtype", "suffix"), [(np.int32, ".tif"), (np.float32, ".tif")])
def test_images_without_an_8_bit_scaling_are_refused(tmp_path: Path, dtype: type, suffix: str) -> None:
    path = tmp_path / f"image{suffix}"
    Image.fromarray(np.zeros((3, 4), dtype=dtype)).save(path)
    with pytest.raises(DatasetError, match=rf"image {re.escape(str(path))} has mode (I|F), which has no defined 8-bit"):
        read_image(path)


def test_16_bit_mask_holds_labels_up_to_255(tmp_path: Path) -> None:
    path = tmp_path / "mask.png"
    Image.fromarray(np.array([[0, 3, 255]], dtype=np.uint16)).save(path)
    labels = read_index_mask(path)
    assert labels.dtype == np.uint8 and labels.tolist() == [[0, 3, 255]]
    Image.fromarray(np.array([[0, 3, 300, 256]], dtype=np.uint16)).save(path)
    with pytest.raises(DatasetError, match=re.escape(f"mask {path} holds label value(s) [256, 300], outside 0..255")):
        read_index_mask(path)


def test_image_above_the_pixel_limit_is_a_dataset_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "huge.png"
    Image.fromarray(np.zeros((60, 50, 3), dtype=np.uint8)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 3000 pixels is above twice the limit: PIL refuses
    for read in (read_image, read_index_mask, lambda p: read_colour_mask(p, PALETTE)):
        with pytest.raises(DatasetError, match=rf"{re.escape(str(path))} is too large to read: .*3000 pixels"):
            read(path)
