"""ADE20K as the MIT Scene Parsing Benchmark distributes it (ADEChallengeData2016, 150 classes)."""

from pathlib import Path

import numpy as np

from lit_seg.data.datamodule import SegmentationDataModule
from lit_seg.data.palette import void_first

# The first name of each line of the release's objectInfo150.txt, in label order 1..150.
CLASSES = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass", "cabinet",
    "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair", "car", "water",
    "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field", "armchair", "seat", "fence", "desk",
    "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion", "base", "box", "column", "signboard",
    "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand",
    "path", "stairs", "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge",
    "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove",
    "palm", "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus",
    "towel", "light", "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver",
    "airplane", "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle",
    "buffet", "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything",
    "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven",
    "ball", "food", "step", "tank", "trade name", "microwave", "pot", "animal", "bicycle", "lake",
    "dishwasher", "screen", "blanket", "sculpture", "hood", "sconce", "vase", "traffic light", "tray",
    "ashcan", "fan", "pier", "crt screen", "plate", "monitor", "bulletin board", "shower", "radiator",
    "glass", "clock", "flag",
)
FOLDERS = {"train": "training", "val": "validation", "test": "validation"}


class ADE20KDataModule(SegmentationDataModule):
    """ADE20K (20,210 training / 2,000 validation images), ``ADEChallengeData2016.zip`` unpacked
    under ``root``::

        ADEChallengeData2016/images/{training,validation}/ADE_*.jpg
        ADEChallengeData2016/annotations/{training,validation}/ADE_*.png   0 = other, 1..150

    Stored label 0 ("other") is ignored and 1..150 become 0..149. The test split is the
    validation set (the challenge's test labels are not public). The palette is the VOC colour
    map of the stored labels, not the benchmark's own colours.

    Args:
        root: the folder holding ``ADEChallengeData2016``.
        **kwargs: the arguments of :class:`SegmentationDataModule`.
    """

    class_names = CLASSES
    palette, _label_map = void_first(len(CLASSES))
    prepare_script = "prepare_ade20k.py"

    def __init__(self, root: str = "data/ade20k", **kwargs) -> None:
        super().__init__(root, **kwargs)

    def label_map(self) -> np.ndarray:
        return self._label_map

    def pairs(self, split: str) -> list[tuple[Path, Path]]:
        base = self.root / "ADEChallengeData2016"
        images = self.require(base / "images" / FOLDERS[split], "folder")
        masks = base / "annotations" / FOLDERS[split]
        return [(image, masks / f"{image.stem}.png") for image in sorted(images.glob("*.jpg"))]
