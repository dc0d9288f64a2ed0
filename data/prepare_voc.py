"""Prepares PASCAL VOC 2012 with the SBD-augmented training set (train_aug, 10,582 images).

Downloads VOCtrainval_11-May-2012.tar and SBD's benchmark.tgz into --root, unpacks them, converts
SBD's cls/*.mat labels once into VOCdevkit/VOC2012/SegmentationClassAug/ and writes
ImageSets/Segmentation/train_aug.txt, then checks the counts.
"""

from pathlib import Path

from lit_seg.commands.prepare_data import build_voc_aug, check_layout, download, extract, layout_problems, run_script

VOC_URL = "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/VOCtrainval_11-May-2012.tar"
VOC_MD5 = ("md5", "6cd6e144f989b92b3379bac3b3de84fd")
SBD_URL = "https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/semantic_contours/benchmark.tgz"
SBD_MD5 = ("md5", "82b4d87ceb2ed10f6038a1cba92111cb")
VOC = "VOCdevkit/VOC2012"
SBD = "benchmark_RELEASE/dataset"
VOC_FILES = {f"{VOC}/JPEGImages/*.jpg": 17125, f"{VOC}/SegmentationClass/*.png": 2913}
VOC_LINES = {f"{VOC}/ImageSets/Segmentation/train.txt": 1464, f"{VOC}/ImageSets/Segmentation/val.txt": 1449}
SBD_FILES = {f"{SBD}/cls/*.mat": 11355}
SBD_LINES = {f"{SBD}/train.txt": 8498, f"{SBD}/val.txt": 2857}
AUG_FILES = {f"{VOC}/SegmentationClassAug/*.png": 10582}
AUG_LINES = {f"{VOC}/ImageSets/Segmentation/train_aug.txt": 10582}


def prepare(root: Path) -> None:
    """Fetches, unpacks and converts what is missing under ``root``, then checks the result."""
    if not layout_problems(root, VOC_FILES | AUG_FILES, VOC_LINES | AUG_LINES):
        return
    if layout_problems(root, VOC_FILES, VOC_LINES):
        extract(download(VOC_URL, root / "VOCtrainval_11-May-2012.tar", VOC_MD5), root)
        check_layout(root, VOC_FILES, VOC_LINES)
    if layout_problems(root, SBD_FILES, SBD_LINES):
        extract(download(SBD_URL, root / "benchmark.tgz", SBD_MD5), root)
        check_layout(root, SBD_FILES, SBD_LINES)
    print("converting SBD labels to SegmentationClassAug/ ...", flush=True)
    build_voc_aug(root / VOC, root / SBD)
    check_layout(root, AUG_FILES, AUG_LINES)


def main(argv: list[str] | None = None) -> None:
    run_script(
        "prepare_voc.py", __doc__, prepare, "data/voc",
        "VOC 2012 ready under {root}: train_aug 10582, train 1464, val 1449 images", argv,
    )


if __name__ == "__main__":
    main()
