"""NYU Depth v2 (labelled frames) with the 40 classes of Gupta et al., converted to PNGs once."""

from pathlib import Path

import numpy as np

from lit_seg.data.datamodule import SegmentationDataModule
from lit_seg.data.palette import void_first

# The className of classMapping40.mat, in label order 1..40 (its spelling kept).
CLASSES = (
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf", "picture",
    "counter", "blinds", "desk", "shelves", "curtain", "dresser", "pillow", "mirror", "floor mat", "clothes",
    "ceiling", "books", "refridgerator", "television", "paper", "towel", "shower curtain", "box", "whiteboard",
    "person", "night stand", "toilet", "sink", "lamp", "bathtub", "bag", "otherstructure", "otherfurniture",
    "otherprop",
)
FOLDERS = {"train": "train", "val": "test", "test": "test"}


class NYUDv2DataModule(SegmentationDataModule):
    """NYUDv2, 40 classes, the standard 795 train / 654 test frames, as ``data/prepare_nyudv2.py``
    writes them from ``nyu_depth_v2_labeled.mat``, ``splits.mat`` and ``classMapping40.mat``::

        images/{train,test}/<NNNN>.png    RGB, 640x480; NNNN is the frame's 1-based index in the release
        labels/{train,test}/<NNNN>.png    0 = unlabelled (ignored), 1..40

    There is no validation set: validation and test both use the test frames, as the papers do.
    The palette is the VOC colour map of the stored labels.

    Args:
        root: the folder the preparation script wrote.
        **kwargs: the arguments of :class:`SegmentationDataModule`.
    """

    class_names = CLASSES
    palette, _label_map = void_first(len(CLASSES))
    prepare_script = "prepare_nyudv2.py"

    def __init__(self, root: str = "data/nyudv2", **kwargs) -> None:
        super().__init__(root, **kwargs)

    def label_map(self) -> np.ndarray:
        return self._label_map

    def pairs(self, split: str) -> list[tuple[Path, Path]]:
        images = self.require(self.root / "images" / FOLDERS[split], "folder")
        masks = self.root / "labels" / FOLDERS[split]
        return [(image, masks / image.name) for image in sorted(images.glob("*.png"))]
