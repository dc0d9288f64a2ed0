"""Tiny copies of each dataset's public release on disk: the same folders, file names, file formats
and label encodings, with a few 40x56 images of noise and block-shaped labels."""

from pathlib import Path

import h5py
import numpy as np
from PIL import Image
from scipy.io import savemat
from scipy.sparse import csc_matrix

from lit_seg.commands.prepare_data import build_voc_aug, convert_nyudv2
from lit_seg.data.datasets.nyudv2 import CLASSES as NYU40_CLASSES
from lit_seg.data.palette import bit_palette

HEIGHT, WIDTH = 40, 56


def label_blocks(
    rng: np.random.Generator, values: list[int], height: int = HEIGHT, width: int = WIDTH, block: int = 8
) -> np.ndarray:
    """A ``[height, width]`` mask of ``block``-pixel squares, each value of ``values`` in at least one
    square where they fit (35 squares at the default size)."""
    rows, cols = -(-height // block), -(-width // block)
    grid = rng.permutation(np.resize(np.asarray(values), rows * cols)).reshape(rows, cols)
    return np.kron(grid, np.ones((block, block), dtype=np.int64))[:height, :width]


def save_image(path: Path, rng: np.random.Generator, height: int = HEIGHT, width: int = WIDTH) -> None:
    """An RGB noise image, PNG or JPEG by the file's suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)


def save_mask(path: Path, mask: np.ndarray, palette: bool = False) -> None:
    """A single-channel label PNG: grayscale, or palette-indexed (VOC colours) with ``palette``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(mask.astype(np.uint8), mode="P" if palette else "L")
    if palette:
        image.putpalette([value for colour in bit_palette(256) for value in colour])
    image.save(path)


def fake_camvid(root: Path, counts: dict[str, int] | None = None, seed: int = 0) -> Path:
    """The SegNet tutorial's CamVid folder: ``<split>/``, ``<split>annot/`` (labels 0..11) and
    ``<split>.txt`` with the tutorial machine's ``/SegNet/CamVid/...`` paths."""
    rng = np.random.default_rng(seed)
    prefixes = {"train": "0001TP", "val": "0016E5", "test": "Seq05VD"}
    for split, count in (counts or {"train": 3, "val": 2, "test": 2}).items():
        lines = []
        for index in range(count):
            name = f"{prefixes[split]}_{6690 + 30 * index:06d}.png"
            save_image(root / split / name, rng)
            save_mask(root / f"{split}annot" / name, label_blocks(rng, list(range(12))))
            lines.append(f"/SegNet/CamVid/{split}/{name} /SegNet/CamVid/{split}annot/{name}\n")
        (root / f"{split}.txt").write_text("".join(lines))
    return root


def fake_cityscapes(root: Path, seed: int = 0) -> Path:
    """``leftImg8bit/`` and ``gtFine/`` (labelIds, color, instanceIds, polygons) for three splits."""
    rng = np.random.default_rng(seed)
    cities = {"train": ["aachen", "aachen", "bochum"], "val": ["frankfurt", "lindau"], "test": ["berlin"]}
    label_ids = [0, 1, 4, 7, 8, 9, 11, 17, 21, 23, 24, 26, 33]  # unlabelled, ego vehicle, static, road...
    for split, names in cities.items():
        for index, city in enumerate(names):
            stem = f"{city}_{index:06d}_{19 + index:06d}"
            save_image(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", rng)
            gt = root / "gtFine" / split / city
            labels = label_blocks(rng, label_ids) if split != "test" else np.zeros((HEIGHT, WIDTH), dtype=np.int64)
            save_mask(gt / f"{stem}_gtFine_labelIds.png", labels)
            save_image(gt / f"{stem}_gtFine_color.png", rng)
            Image.fromarray((labels * 1000).astype(np.uint16)).save(gt / f"{stem}_gtFine_instanceIds.png")
            (gt / f"{stem}_gtFine_polygons.json").write_text(f'{{"imgHeight": {HEIGHT}, "imgWidth": {WIDTH}, "objects": []}}')
    return root


def fake_ade20k(root: Path, seed: int = 0) -> Path:
    """``ADEChallengeData2016/`` with JPEG images and annotations 0 (other) .. 150."""
    rng = np.random.default_rng(seed)
    base = root / "ADEChallengeData2016"
    for folder, prefix, count in (("training", "ADE_train", 3), ("validation", "ADE_val", 2)):
        for index in range(1, count + 1):
            save_image(base / "images" / folder / f"{prefix}_{index:08d}.jpg", rng)
            save_mask(base / "annotations" / folder / f"{prefix}_{index:08d}.png", label_blocks(rng, [0, 1, 2, 75, 149, 150]))
    (base / "objectInfo150.txt").write_text("Idx\tRatio\tTrain\tVal\tName\n1\t0.1576\t11664\t1172\twall\n")
    (base / "sceneCategories.txt").write_text("ADE_train_00000001 airport_terminal\n")
    return root


VOC_TRAIN = ["2007_000032", "2007_000039", "2007_000063"]
VOC_VAL = ["2007_000033", "2007_000042"]
SBD_TRAIN = ["2007_000032", "2007_000033", "2008_000001"]  # one VOC train, one VOC val, one SBD-only
SBD_VAL = ["2008_000002", "2007_000042"]
TRAIN_AUG = sorted(set(VOC_TRAIN + SBD_TRAIN + SBD_VAL) - set(VOC_VAL))


def voc_mask(rng: np.random.Generator) -> np.ndarray:
    """Class blocks whose borders are drawn with 255, as VOC marks object boundaries."""
    mask = label_blocks(rng, [0, 1, 8, 15, 20])
    edge = np.zeros(mask.shape, dtype=bool)
    edge[:, 1:] |= mask[:, 1:] != mask[:, :-1]
    edge[1:, :] |= mask[1:, :] != mask[:-1, :]
    mask[edge] = 255
    return mask


def fake_voc(root: Path, prepared: bool = False, seed: int = 0) -> Path:
    """``VOCdevkit/VOC2012`` and SBD's ``benchmark_RELEASE/dataset`` (``cls/*.mat`` as MATLAB
    structs ``GTcls``); with ``prepared``, also what data/prepare_voc.py derives (train_aug)."""
    rng = np.random.default_rng(seed)
    voc, sbd = root / "VOCdevkit" / "VOC2012", root / "benchmark_RELEASE" / "dataset"
    lists = voc / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True)
    for image_id in VOC_TRAIN + VOC_VAL + ["2008_000001", "2008_000002", "2008_000003"]:
        save_image(voc / "JPEGImages" / f"{image_id}.jpg", rng)
    for image_id in VOC_TRAIN + VOC_VAL:
        save_mask(voc / "SegmentationClass" / f"{image_id}.png", voc_mask(rng), palette=True)
    for name, ids in (("train", VOC_TRAIN), ("val", VOC_VAL), ("trainval", sorted(VOC_TRAIN + VOC_VAL))):
        (lists / f"{name}.txt").write_text("".join(f"{i}\n" for i in ids))
    (sbd / "cls").mkdir(parents=True)
    for image_id in SBD_TRAIN + SBD_VAL:
        save_image(sbd / "img" / f"{image_id}.jpg", rng)
        segmentation = label_blocks(rng, [0, 3, 12, 20]).astype(np.uint8)
        boundaries = np.empty((20, 1), dtype=object)
        for k in range(20):
            boundaries[k, 0] = csc_matrix((HEIGHT, WIDTH), dtype=np.float64)
        categories = np.unique(segmentation[segmentation > 0]).astype(np.uint8)[:, None]
        gtcls = {"Boundaries": boundaries, "Segmentation": segmentation, "CategoriesPresent": categories}
        savemat(sbd / "cls" / f"{image_id}.mat", {"GTcls": gtcls}, do_compression=True)
    (sbd / "train.txt").write_text("".join(f"{i}\n" for i in SBD_TRAIN))
    (sbd / "val.txt").write_text("".join(f"{i}\n" for i in SBD_VAL))
    if prepared:
        build_voc_aug(voc, sbd)
    return root


NYU_CLASSES = 894
NYU_TRAIN, NYU_TEST = [1, 3, 4], [2, 5, 6]


def nyu_mapping() -> np.ndarray:
    """A stand-in for classMapping40.mat's ``mapClass``: NYU class k -> 1 + (k % 40)."""
    return 1 + np.arange(1, NYU_CLASSES + 1) % 40


def fake_nyudv2_release(folder: Path, seed: int = 0) -> tuple[Path, Path, Path]:
    """``nyu_depth_v2_labeled.mat`` (MATLAB v7.3: HDF5 behind a 512-byte MATLAB header, arrays in
    MATLAB's reversed axis order), ``splits.mat`` and ``classMapping40.mat``.

    Returns:
        The paths of the three files.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    frames = len(NYU_TRAIN) + len(NYU_TEST)
    labeled = folder / "nyu_depth_v2_labeled.mat"
    with h5py.File(labeled, "w", userblock_size=512) as release:
        # MATLAB's H x W x 3 x N and H x W x N arrays appear to HDF5 as N x 3 x W x H and N x W x H.
        arrays = {
            "images": (rng.integers(0, 256, (frames, 3, WIDTH, HEIGHT)), np.uint8, "uint8"),
            "labels": (np.stack([label_blocks(rng, [0, 1, 5, 40, 41, 894]).T for _ in range(frames)]), np.uint16, "uint16"),
            "depths": (rng.uniform(0.5, 10.0, (frames, WIDTH, HEIGHT)), np.float32, "single"),
            "instances": (rng.integers(0, 5, (frames, WIDTH, HEIGHT)), np.uint8, "uint8"),
        }
        for name, (values, dtype, matlab_class) in arrays.items():
            release.create_dataset(name, data=values.astype(dtype)).attrs["MATLAB_class"] = np.bytes_(matlab_class)
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Oct 15 10:00:00 2012 HDF5 schema 1.00 ."
    with labeled.open("r+b") as file:
        file.write(header.ljust(116) + b"\0" * 8 + b"\x00\x02IM")
    splits, mapping = folder / "splits.mat", folder / "classMapping40.mat"
    savemat(splits, {"trainNdxs": np.array(NYU_TRAIN, float)[:, None], "testNdxs": np.array(NYU_TEST, float)[:, None]})
    names = np.array(NYU40_CLASSES, dtype=object)[None, :]
    savemat(mapping, {"mapClass": nyu_mapping().astype(float)[None, :], "className": names})
    return labeled, splits, mapping


def fake_nyudv2(root: Path, seed: int = 0) -> Path:
    """The downloaded release files under ``root``, and the PNGs data/prepare_nyudv2.py makes of them."""
    convert_nyudv2(*fake_nyudv2_release(root, seed), root)
    return root
