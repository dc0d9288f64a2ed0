"""CamVid with the 11 classes of the SegNet tutorial release."""

from pathlib import Path

import numpy as np

from lit_seg.data.datamodule import SegmentationDataModule
from lit_seg.data.io import DatasetError

CLASSES = ("sky", "building", "pole", "road", "pavement", "tree", "signsymbol", "fence", "car", "pedestrian", "bicyclist")
# The colours of the SegNet tutorial's scripts (CamVid's own, except pavement).
PALETTE = (
    (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
    (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
)


class CamVidDataModule(SegmentationDataModule):
    """CamVid (367 train / 101 val / 233 test, 360x480) as the SegNet tutorial lays it out::

        {train,val,test}/<name>.png          RGB frames
        {train,val,test}annot/<name>.png     labels 0..10, 11 = void (ignored)
        {train,val,test}.txt                 "<image path> <label path>" per line

    The list files hold the tutorial machine's absolute paths (``/SegNet/CamVid/train/X.png``);
    each is resolved under ``root`` by its last two components.

    Args:
        root: the tutorial's ``CamVid`` folder.
        **kwargs: the arguments of :class:`SegmentationDataModule`.
    """

    class_names = CLASSES
    palette = PALETTE
    prepare_script = "prepare_camvid.py"

    def __init__(self, root: str = "data/camvid", **kwargs) -> None:
        super().__init__(root, **kwargs)

    def label_map(self) -> np.ndarray:
        return np.array([*range(len(CLASSES)), 255], dtype=np.uint8)

    def pairs(self, split: str) -> list[tuple[Path, Path]]:
        listing = self.require(self.root / f"{split}.txt", "list")
        pairs = []
        for number, line in enumerate(listing.read_text().splitlines(), start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2:
                raise DatasetError(f"{listing}:{number}: expected '<image path> <label path>', got {line!r}")
            image, mask = (self.root.joinpath(*Path(field).parts[-2:]) for field in fields)
            pairs.append((image, mask))
        return pairs
