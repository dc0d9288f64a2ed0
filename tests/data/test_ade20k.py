"""ADE20KDataModule on a tiny copy of ADEChallengeData2016."""

from pathlib import Path

import numpy as np

from lit_seg.data import ADE20KDataModule
from lit_seg.data.io import read_index_mask
from tests.helpers.fakes import fake_ade20k


def test_pairs(tmp_path: Path) -> None:
    root = fake_ade20k(tmp_path / "ade20k")
    datamodule = ADE20KDataModule(str(root))
    assert [len(datamodule.pairs(split)) for split in ("train", "val", "test")] == [3, 2, 2]
    image, mask = datamodule.pairs("train")[0]
    assert image == root / "ADEChallengeData2016/images/training/ADE_train_00000001.jpg"
    assert mask == root / "ADEChallengeData2016/annotations/training/ADE_train_00000001.png"


def test_other_is_ignored_and_labels_shift_down(tmp_path: Path) -> None:
    datamodule = ADE20KDataModule(str(fake_ade20k(tmp_path / "ade20k")))
    assert datamodule.num_classes == len(datamodule.palette) == 150
    dataset = datamodule.dataset("val")
    for index, (_, mask_path) in enumerate(dataset.pairs):
        stored, mask = read_index_mask(mask_path), dataset.load(index)[1]
        assert set(np.unique(stored).tolist()) == {0, 1, 2, 75, 149, 150}
        assert (mask[stored == 0] == 255).all() and (mask[stored == 1] == 0).all()
        assert np.array_equal(mask[stored > 0], stored[stored > 0] - 1)
