"""CityscapesDataModule on a tiny copy of the leftImg8bit/gtFine layout."""

from pathlib import Path

import numpy as np

from lit_seg.data import CityscapesDataModule
from lit_seg.data.io import read_index_mask
from tests.helpers.fakes import fake_cityscapes

# labelId -> trainId, written out here independently of the module's table.
EXPECTED = {0: 255, 1: 255, 4: 255, 7: 0, 8: 1, 9: 255, 11: 2, 17: 5, 21: 8, 23: 10, 24: 11, 26: 13, 33: 18}


def test_pairs_use_the_label_ids(tmp_path: Path) -> None:
    root = fake_cityscapes(tmp_path / "cityscapes")
    datamodule = CityscapesDataModule(str(root))
    assert [len(datamodule.pairs(split)) for split in ("train", "val", "test")] == [3, 2, 1]
    image, mask = datamodule.pairs("val")[0]
    assert image == root / "leftImg8bit/val/frankfurt/frankfurt_000000_000019_leftImg8bit.png"
    assert mask == root / "gtFine/val/frankfurt/frankfurt_000000_000019_gtFine_labelIds.png"


def test_label_ids_map_to_train_ids(tmp_path: Path) -> None:
    datamodule = CityscapesDataModule(str(fake_cityscapes(tmp_path / "cityscapes")))
    assert datamodule.num_classes == len(datamodule.palette) == 19
    dataset = datamodule.dataset("train")
    seen = set()
    for index, (_, mask_path) in enumerate(dataset.pairs):
        stored, mask = read_index_mask(mask_path), dataset.load(index)[1]
        for label_id, train_id in EXPECTED.items():
            assert (mask[stored == label_id] == train_id).all(), label_id
        seen |= set(np.unique(stored).tolist())
    assert seen == set(EXPECTED)
    assert (datamodule.dataset("test").load(0)[1] == 255).all()
