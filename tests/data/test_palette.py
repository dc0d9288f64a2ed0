"""Class colours: the VOC colour map, void-first releases, colour tables and colourised masks."""

import numpy as np

from lit_seg.data.palette import bit_palette, class_palette, colourise, palette_table, void_first


def test_bit_palette_is_the_voc_colour_map() -> None:
    colours = bit_palette(256)
    assert colours[:4] == ((0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0))
    assert colours[15] == (192, 128, 128) and colours[20] == (0, 64, 128)  # person, tvmonitor
    assert len(set(colours)) == 256


def test_void_first_drops_the_void_colour_and_maps_void_to_ignore() -> None:
    palette, label_map = void_first(3)
    assert palette == bit_palette(4)[1:]
    assert label_map.tolist() == [255, 0, 1, 2] and label_map.dtype == np.uint8


def test_class_palette_prefers_the_dataset_palette() -> None:
    own = ((1, 2, 3), (4, 5, 6))
    assert class_palette(2, own).tolist() == [[1, 2, 3], [4, 5, 6]]
    assert class_palette(3).tolist() == [list(colour) for colour in bit_palette(3)]


def test_tables_and_colourised_masks() -> None:
    palette = class_palette(2, ((10, 20, 30), (40, 50, 60)))
    table = palette_table(palette)
    assert table.shape == (256, 3) and table[1].tolist() == [40, 50, 60] and not table[2:].any()
    mask = np.array([[0, 1], [7, 255]], dtype=np.uint8)
    expected = [[[10, 20, 30], [40, 50, 60]], [[255, 255, 255], [255, 255, 255]]]
    assert colourise(mask, palette).tolist() == expected  # beyond the palette and ignored: white
    assert colourise(mask, palette, ignore_index=1)[0, 1].tolist() == [255, 255, 255]
