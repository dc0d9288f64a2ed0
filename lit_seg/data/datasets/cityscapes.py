"""Cityscapes with fine annotations, trained on the 19 classes of the official benchmark."""

from pathlib import Path

import numpy as np

from lit_seg.data.datamodule import SegmentationDataModule

CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
)
PALETTE = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
    (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60),
    (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32),
)
# labelId -> trainId of cityscapesScripts' labels.py; the other labelIds (0..33) have trainId 255.
TRAIN_IDS = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12,
             26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
LABEL_IDS = 34  # labelIds 0..33 (the license plate, -1, is never drawn into *_labelIds.png)


class CityscapesDataModule(SegmentationDataModule):
    """Cityscapes (2,975 train / 500 val / 1,525 test), ``leftImg8bit_trainvaltest.zip`` and
    ``gtFine_trainvaltest.zip`` unpacked under ``root``::

        leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png
        gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png

    Args:
        root: the folder holding ``leftImg8bit`` and ``gtFine``.
        **kwargs: the arguments of :class:`SegmentationDataModule`.
    """

    class_names = CLASSES
    palette = PALETTE
    prepare_script = "prepare_cityscapes.py"

    def __init__(self, root: str = "data/cityscapes", **kwargs) -> None:
        super().__init__(root, **kwargs)

    def label_map(self) -> np.ndarray:
        table = np.full(LABEL_IDS, 255, dtype=np.uint8)
        table[list(TRAIN_IDS)] = list(TRAIN_IDS.values())
        return table

    def pairs(self, split: str) -> list[tuple[Path, Path]]:
        images = self.require(self.root / "leftImg8bit" / split, "folder")
        labels = self.root / "gtFine" / split
        return [
            (image, labels / image.parent.name / image.name.replace("_leftImg8bit.png", "_gtFine_labelIds.png"))
            for image in sorted(images.glob("*/*_leftImg8bit.png"))
        ]
