"""Class lists: classes.txt errors name the line; the built-in lists hold each name once."""

import re
from pathlib import Path

import pytest

from lit_seg.data import (
    ADE20KDataModule,
    CamVidDataModule,
    CityscapesDataModule,
    DatasetError,
    NYUDv2DataModule,
    VOCDataModule,
)
from lit_seg.data.datasets.folder import read_classes_file


def classes_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "classes.txt"
    path.write_text(text)
    return path


def test_names_and_palette(tmp_path: Path) -> None:
    path = classes_file(tmp_path, "sky 0 0 255\nroad 128 64 128\n\n")  # a trailing blank line names nothing
    assert read_classes_file(path) == (("sky", "road"), ((0, 0, 255), (128, 64, 128)))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sky\nroad\nsky\n", "classes.txt:3: class 'sky' is already named on line 1"),
        ("sky\n\nroad\n", "classes.txt:2: blank line"),
        ("sky\n   \nroad\n", "classes.txt:2: blank line"),
        ("sky 0 0 256\n", "classes.txt:1: colour 0 0 256: expected R G B from 0 to 255"),
        ("sky 0 0 blue\n", "classes.txt:1: colour 0 0 blue"),
        ("\n\n", "names no class"),
    ],
)
def test_errors_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(DatasetError, match=re.escape(message)):
        read_classes_file(classes_file(tmp_path, text))


@pytest.mark.parametrize(
    "datamodule",
    [ADE20KDataModule, CamVidDataModule, CityscapesDataModule, NYUDv2DataModule, VOCDataModule],
)
def test_built_in_class_names_are_distinct_and_not_blank(datamodule: type) -> None:
    names = datamodule.class_names
    assert len(set(names)) == len(names) and all(name.strip() for name in names)
