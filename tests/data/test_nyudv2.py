"""NYUDv2DataModule on PNGs converted from a tiny copy of the labelled release."""

from pathlib import Path

import h5py
import numpy as np

from lit_seg.data import NYUDv2DataModule
from tests.helpers.fakes import NYU_TEST, NYU_TRAIN, fake_nyudv2, nyu_mapping


def test_pairs(tmp_path: Path) -> None:
    root = fake_nyudv2(tmp_path / "nyudv2")
    datamodule = NYUDv2DataModule(str(root))
    assert [int(image.stem) for image, _ in datamodule.pairs("train")] == NYU_TRAIN
    assert datamodule.pairs("val") == datamodule.pairs("test")
    assert [(image.relative_to(root), mask.relative_to(root)) for image, mask in datamodule.pairs("test")] == [
        (Path(f"images/test/{n:04d}.png"), Path(f"labels/test/{n:04d}.png")) for n in NYU_TEST
    ]


def test_unlabelled_is_ignored_and_classes_shift_down(tmp_path: Path) -> None:
    root = fake_nyudv2(tmp_path / "nyudv2")
    datamodule = NYUDv2DataModule(str(root))
    assert datamodule.num_classes == len(datamodule.palette) == 40
    dataset = datamodule.dataset("train")
    with h5py.File(root / "nyu_depth_v2_labeled.mat", "r") as release:
        for index, number in enumerate(NYU_TRAIN):
            nyu = release["labels"][number - 1].T  # one of 894 NYU classes, 0 = unlabelled
            expected = np.where(nyu == 0, 255, np.concatenate([[0], nyu_mapping()])[nyu] - 1)
            assert (nyu == 0).any() and np.array_equal(dataset.load(index)[1], expected)
