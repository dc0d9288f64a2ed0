"""PASCAL VOC 2012 segmentation, with the SBD-augmented training set ``train_aug``."""

from pathlib import Path

from lit_seg.data.datamodule import SegmentationDataModule
from lit_seg.data.palette import bit_palette

CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)


class VOCDataModule(SegmentationDataModule):
    """PASCAL VOC 2012: 21 classes, 255 marks object boundaries and is ignored.

    Reads ``VOCtrainval_11-May-2012.tar`` as unpacked under ``root``, plus what
    ``data/prepare_voc.py`` adds from SBD::

        VOCdevkit/VOC2012/JPEGImages/<id>.jpg
        VOCdevkit/VOC2012/SegmentationClass/<id>.png       palette PNGs
        VOCdevkit/VOC2012/SegmentationClassAug/<id>.png    masks of the train_aug images
        VOCdevkit/VOC2012/ImageSets/Segmentation/<list>.txt

    Args:
        root: the folder holding ``VOCdevkit``.
        train_split: the training list: ``train_aug`` (10,582 images; SBD train + val + VOC train,
            minus VOC val) or ``train`` (1,464).
        val_split: the list for validation and test (``val``, 1,449; test labels are not public).
        **kwargs: the arguments of :class:`SegmentationDataModule`.
    """

    class_names = CLASSES
    palette = bit_palette(len(CLASSES))
    prepare_script = "prepare_voc.py"

    def __init__(self, root: str = "data/voc", train_split: str = "train_aug", val_split: str = "val", **kwargs) -> None:
        super().__init__(root, **kwargs)
        self.train_split = train_split
        self.val_split = val_split

    def pairs(self, split: str) -> list[tuple[Path, Path]]:
        name = self.train_split if split == "train" else self.val_split
        voc = self.root / "VOCdevkit" / "VOC2012"
        listing = self.require(voc / "ImageSets" / "Segmentation" / f"{name}.txt", "list")
        masks = voc / ("SegmentationClassAug" if name.endswith("_aug") else "SegmentationClass")
        return [(voc / "JPEGImages" / f"{i}.jpg", masks / f"{i}.png") for i in listing.read_text().split()]
