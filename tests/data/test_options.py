"""Numeric options of the data are refused where they enter, in one line naming the option and value."""

import re

import pytest

from lit_seg.data import SegmentationDataModule
from lit_seg.data.options import OptionError
from lit_seg.data.transforms import Augmentation


@pytest.mark.parametrize(
    ("option", "value"),
    [("batch_size", 0), ("batch_size", -2), ("eval_batch_size", 0), ("num_workers", -1)],
)
def test_datamodule_refuses_counts(option: str, value: int) -> None:
    with pytest.raises(OptionError, match=rf"^{option} {value}: expected "):
        SegmentationDataModule("data", **{option: value})


@pytest.mark.parametrize(
    ("option", "value", "shown"),
    [
        ("crop_size", (0, -5), "(0, -5)"),
        ("crop_size", (32,), "(32,)"),
        ("scale_range", (0.0, 2.0), "(0.0, 2.0)"),
        ("scale_range", (2.0, 0.5), "(2.0, 0.5)"),
        ("rotation", -10.0, "-10.0"),
        ("rotation", 181.0, "181.0"),
    ],
)
def test_augmentation_refuses_ranges(option: str, value: object, shown: str) -> None:
    arguments = {"crop_size": (32, 32), option: value}
    with pytest.raises(OptionError, match=rf"^{re.escape(option + ' ' + shown)}: expected "):
        Augmentation(**arguments)
    with pytest.raises(OptionError, match=f"^{option} "):  # as the DataModule's arguments, which build it
        SegmentationDataModule("data", **arguments)


def test_edge_values_are_accepted() -> None:
    data = SegmentationDataModule(
        "data", batch_size=1, num_workers=0, crop_size=(1, 1), scale_range=(1, 1), rotation=180
    )
    assert data.augmentation.crop_size == (1, 1) and data.augmentation.rotation == 180
