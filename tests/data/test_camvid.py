"""CamVidDataModule on a tiny copy of the SegNet tutorial layout, and on the real CamVid where present."""

from pathlib import Path

import numpy as np
import pytest

from lit_seg.data import CamVidDataModule
from lit_seg.data.io import read_index_mask
from tests.helpers.fakes import fake_camvid
from tests.helpers.tiny_runs import SHARED

REAL = SHARED / "datasets" / "camvid"


def test_list_files_resolve_under_root(tmp_path: Path) -> None:
    root = fake_camvid(tmp_path / "camvid")
    assert (root / "train.txt").read_text().startswith("/SegNet/CamVid/train/")
    datamodule = CamVidDataModule(str(root))
    assert [len(datamodule.pairs(split)) for split in ("train", "val", "test")] == [3, 2, 2]
    for image, mask in datamodule.pairs("val"):
        assert image.parent == root / "val" and mask == root / "valannot" / image.name and image.is_file()


def test_void_becomes_ignore(tmp_path: Path) -> None:
    datamodule = CamVidDataModule(str(fake_camvid(tmp_path / "camvid")))
    assert (datamodule.num_classes, len(datamodule.palette), datamodule.ignore_index) == (11, 11, 255)
    dataset = datamodule.dataset("train")
    for index, (_, mask_path) in enumerate(dataset.pairs):
        stored, mask = read_index_mask(mask_path), dataset.load(index)[1]
        assert (stored == 11).any() and (mask[stored == 11] == 255).all()
        assert np.array_equal(mask[stored < 11], stored[stored < 11])


@pytest.mark.shared_data
@pytest.mark.skipif(not REAL.is_dir(), reason=f"no real CamVid at {REAL}")
def test_real_camvid() -> None:
    datamodule = CamVidDataModule(str(REAL))
    pairs = {split: datamodule.pairs(split) for split in ("train", "val")}
    assert (len(pairs["train"]), len(pairs["val"])) == (367, 101)
    table = datamodule.label_map()
    for _, mask_path in pairs["train"] + pairs["val"]:  # every mask: ~1 s
        values = np.unique(table[datamodule.read_mask(mask_path)])
        assert set(values.tolist()) <= set(range(11)) | {255}, mask_path
    dataset = datamodule.dataset("val")
    for index in range(0, len(dataset), 20):
        image, mask = dataset.load(index)
        assert image.shape == (360, 480, 3) and mask.shape == (360, 480)
