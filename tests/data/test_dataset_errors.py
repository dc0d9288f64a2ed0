"""Bad input, for every dataset: each error names the path at fault (and, for a missing dataset,
how to prepare it)."""

import re
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lit_seg.data import (
    ADE20KDataModule,
    CamVidDataModule,
    CityscapesDataModule,
    DatasetError,
    NYUDv2DataModule,
    VOCDataModule,
)
from lit_seg.data.datamodule import SegmentationDataModule
from tests.helpers.fakes import fake_ade20k, fake_camvid, fake_cityscapes, fake_nyudv2, fake_voc

# name: (fake layout writer, DataModule, a stored label value the release cannot hold)
DATASETS: dict[str, tuple[Callable[[Path], Path], type[SegmentationDataModule], int]] = {
    "camvid": (fake_camvid, CamVidDataModule, 12),
    "cityscapes": (fake_cityscapes, CityscapesDataModule, 34),
    "ade20k": (fake_ade20k, ADE20KDataModule, 151),
    "voc": (partial(fake_voc, prepared=True), VOCDataModule, 21),
    "nyudv2": (fake_nyudv2, NYUDv2DataModule, 41),
}


@pytest.fixture(params=list(DATASETS))
def dataset(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[SegmentationDataModule, int]:
    """A DataModule on a fresh tiny layout, and a label its masks cannot hold."""
    write, cls, bad_label = DATASETS[request.param]
    return cls(str(write(tmp_path / request.param)), num_workers=0), bad_label


@pytest.mark.parametrize("name", list(DATASETS))
def test_missing_root_names_path_and_preparation(name: str, tmp_path: Path) -> None:
    cls = DATASETS[name][1]
    with pytest.raises(FileNotFoundError) as caught:
        cls(str(tmp_path / "absent")).setup("fit")
    assert str((tmp_path / "absent").resolve()) in str(caught.value)
    assert f"prepare it with: python data/prepare_{name}.py --root {tmp_path / 'absent'}" in str(caught.value)


@pytest.mark.parametrize("name", list(DATASETS))
def test_empty_root_names_preparation(name: str, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=f"python data/prepare_{name}.py"):
        DATASETS[name][1](str(tmp_path)).setup("fit")


def test_image_without_mask(dataset: tuple[SegmentationDataModule, int]) -> None:
    datamodule, _ = dataset
    _, mask = datamodule.pairs("train")[0]
    mask.unlink()
    with pytest.raises(DatasetError, match=re.escape(f"has no mask: expected {mask}")):
        datamodule.setup("fit")


def test_mask_of_another_size(dataset: tuple[SegmentationDataModule, int]) -> None:
    datamodule, _ = dataset
    image, mask = datamodule.pairs("train")[0]
    Image.fromarray(np.zeros((10, 12), dtype=np.uint8)).save(mask)
    datamodule.setup("fit")
    with pytest.raises(DatasetError, match=re.escape(f"mask {mask} is 12x10 but image {image} is 56x40")):
        datamodule.datasets["train"][0]


@pytest.mark.parametrize("part", [0, 1], ids=["image", "mask"])
def test_corrupt_file(dataset: tuple[SegmentationDataModule, int], part: int) -> None:
    datamodule, _ = dataset
    path = datamodule.pairs("train")[0][part]
    path.write_bytes(path.read_bytes()[:40])  # a truncated download
    datamodule.setup("fit")
    with pytest.raises(DatasetError, match=re.escape(f"cannot read {['image', 'mask'][part]} {path}")):
        datamodule.datasets["train"][0]


def test_label_the_dataset_cannot_have(dataset: tuple[SegmentationDataModule, int]) -> None:
    datamodule, bad_label = dataset
    _, mask = datamodule.pairs("train")[0]
    stored = np.array(Image.open(mask))
    stored[3, 5] = bad_label
    Image.fromarray(stored, mode="L").save(mask)
    datamodule.setup("fit")
    with pytest.raises(DatasetError, match=re.escape(f"mask {mask} holds label")):
        datamodule.datasets["train"][0]
