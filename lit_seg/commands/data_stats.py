"""Class pixel frequencies and median-frequency class weights of a dataset split."""

import argparse
import importlib

import numpy as np

from lit_seg.data.datamodule import SegmentationDataModule
from lit_seg.data.dataset import map_labels


def datamodule_class(path: str) -> type[SegmentationDataModule]:
    """The DataModule class named by its import path, e.g. ``lit_seg.data.CamVidDataModule``."""
    module, _, name = path.rpartition(".")
    cls = getattr(importlib.import_module(module), name, None) if module else None
    if not (isinstance(cls, type) and issubclass(cls, SegmentationDataModule)):
        raise ValueError(f"{path!r} does not name a SegmentationDataModule subclass")
    return cls


def class_pixels(datamodule: SegmentationDataModule, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Counts, per class, its pixels and the pixels of all images in which it occurs.

    Masks are read and mapped as training reads them (images are not decoded); a label the
    dataset cannot have raises :class:`DatasetError` naming the file.

    Returns:
        ``(pixels, image_pixels)``, two int64 arrays of length ``num_classes``.
    """
    datamodule.check_root()
    num_classes, table = datamodule.num_classes, datamodule.label_map()
    pixels = np.zeros(num_classes, dtype=np.int64)
    image_pixels = np.zeros(num_classes, dtype=np.int64)
    for _, path in datamodule.pairs(split):
        mask, counts = map_labels(datamodule.read_mask(path), path, num_classes, datamodule.ignore_index, table)
        pixels += counts[:num_classes]
        image_pixels += (counts[:num_classes] > 0) * mask.size
    return pixels, image_pixels


def median_frequency_weights(pixels: np.ndarray, image_pixels: np.ndarray) -> np.ndarray:
    """SegNet's median-frequency balancing: ``w_c = median(freq) / freq_c`` with ``freq_c`` the
    pixels of class c over the pixels of the images where c occurs. Absent classes weigh 0."""
    present = image_pixels > 0
    freq = np.zeros(len(pixels))
    freq[present] = pixels[present] / image_pixels[present]
    weights = np.zeros(len(pixels))
    weights[present] = np.median(freq[present]) / freq[present]
    return weights


def main(argv: list[str] | None = None) -> None:
    """Prints a table of class frequencies and the weights as a YAML list."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="DataModule class path, e.g. lit_seg.data.CamVidDataModule")
    parser.add_argument("--root", help="the dataset folder (default: the DataModule's)")
    parser.add_argument("--split", default="train", help="train, val or test")
    parser.add_argument("--decimals", type=int, default=4)
    args = parser.parse_args(argv)
    cls = datamodule_class(args.data)
    datamodule = cls(root=args.root) if args.root else cls()
    pixels, image_pixels = class_pixels(datamodule, args.split)
    weights = median_frequency_weights(pixels, image_pixels)
    share = pixels / max(pixels.sum(), 1)
    width = max(len(name) for name in datamodule.class_names)
    print(f"{'id':>3}  {'class':<{width}}  {'pixels':>12}  {'share':>7}  {'freq':>7}  {'weight':>8}")
    for label, name in enumerate(datamodule.class_names):
        freq = pixels[label] / image_pixels[label] if image_pixels[label] else 0.0
        print(f"{label:>3}  {name:<{width}}  {pixels[label]:>12}  {share[label]:>7.4f}  {freq:>7.4f}  {weights[label]:>8.4f}")
    print(f"# median-frequency class weights, {cls.__name__} split {args.split!r} (absent classes: 0)")
    print("class_weights: [" + ", ".join(f"{w:.{args.decimals}f}" for w in weights) + "]")


if __name__ == "__main__":
    main()
