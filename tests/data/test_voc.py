"""VOCDataModule on a tiny copy of VOCdevkit/VOC2012 plus SBD, before and after preparation."""

from pathlib import Path

import numpy as np
import pytest

from lit_seg.data import VOCDataModule
from lit_seg.data.io import read_index_mask
from tests.helpers.fakes import TRAIN_AUG, VOC_TRAIN, VOC_VAL, fake_voc


def test_official_lists(tmp_path: Path) -> None:
    root = fake_voc(tmp_path / "voc")
    datamodule = VOCDataModule(str(root), train_split="train")
    voc = root / "VOCdevkit/VOC2012"
    assert datamodule.pairs("train") == [(voc / f"JPEGImages/{i}.jpg", voc / f"SegmentationClass/{i}.png") for i in VOC_TRAIN]
    assert [image.stem for image, _ in datamodule.pairs("val")] == [image.stem for image, _ in datamodule.pairs("test")] == VOC_VAL


def test_train_aug_after_preparation(tmp_path: Path) -> None:
    root = fake_voc(tmp_path / "voc", prepared=True)
    pairs = VOCDataModule(str(root)).pairs("train")
    assert [image.stem for image, _ in pairs] == TRAIN_AUG
    assert all(mask.parent.name == "SegmentationClassAug" and mask.is_file() for _, mask in pairs)


def test_train_aug_needs_preparation(tmp_path: Path) -> None:
    root = fake_voc(tmp_path / "voc")
    with pytest.raises(FileNotFoundError, match=r"train_aug\.txt.*python data/prepare_voc\.py --root"):
        VOCDataModule(str(root)).setup("fit")


def test_boundary_255_is_kept(tmp_path: Path) -> None:
    datamodule = VOCDataModule(str(fake_voc(tmp_path / "voc")), train_split="train")
    assert datamodule.num_classes == 21 and datamodule.palette[15] == (192, 128, 128)  # person
    dataset = datamodule.dataset("train")
    for index, (_, mask_path) in enumerate(dataset.pairs):
        stored, mask = read_index_mask(mask_path), dataset.load(index)[1]
        assert (stored == 255).any() and np.array_equal(mask, stored)
