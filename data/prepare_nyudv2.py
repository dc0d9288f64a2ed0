"""Prepares NYUDv2 with 40 classes: the 795 train / 654 test frames of the labelled release as PNGs.

Downloads nyu_depth_v2_labeled.mat (2.8 GB, MATLAB v7.3), the official splits.mat and Gupta et
al.'s classMapping40.mat into --root, converts the frames once into images/{train,test}/ and
labels/{train,test}/, then checks the counts. No checksums are published for these files; the
conversion and the counts check them.
"""

from pathlib import Path

from lit_seg.commands.prepare_data import check_layout, convert_nyudv2, download, layout_problems, run_script

LABELED_URL = "http://horatio.cs.nyu.edu/mit/silberman/nyu_depth_v2/nyu_depth_v2_labeled.mat"
SPLITS_URL = "http://horatio.cs.nyu.edu/mit/silberman/indoor_seg_sup/splits.mat"
MAPPING_URL = "https://github.com/ankurhanda/nyuv2-meta-data/raw/master/classMapping40.mat"
COUNTS = {"train": 795, "test": 654}
FILES = {f"images/{split}/*.png": count for split, count in COUNTS.items()} | {
    f"labels/{split}/*.png": count for split, count in COUNTS.items()
}


def prepare(root: Path) -> None:
    """Fetches and converts where the layout under ``root`` is incomplete, then checks it."""
    if not layout_problems(root, FILES):
        return
    sources = [download(url, root / url.rpartition("/")[2]) for url in (LABELED_URL, SPLITS_URL, MAPPING_URL)]
    print("converting the labelled frames to PNGs ...", flush=True)
    convert_nyudv2(*sources, root)
    check_layout(root, FILES)


def main(argv: list[str] | None = None) -> None:
    run_script(
        "prepare_nyudv2.py", __doc__, prepare, "data/nyudv2",
        "NYUDv2 ready under {root}: train 795, test 654 frames", argv,
    )


if __name__ == "__main__":
    main()
