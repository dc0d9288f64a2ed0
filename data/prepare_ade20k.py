"""Prepares ADE20K as the MIT Scene Parsing Benchmark distributes it (ADEChallengeData2016.zip).

Downloads and unpacks the archive into --root, then checks the counts (20,210 training and
2,000 validation images with their annotations). Use of the data is subject to the terms at
https://groups.csail.mit.edu/vision/datasets/ADE20K/.
"""

from pathlib import Path

from lit_seg.commands.prepare_data import check_layout, download, extract, layout_problems, run_script

URL = "http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip"
SHA1 = ("sha1", "219e1696abb36c8ba3a3afe7fb2f4b4606a897c7")
COUNTS = {"training": 20210, "validation": 2000}
FILES = {f"ADEChallengeData2016/images/{split}/*.jpg": count for split, count in COUNTS.items()} | {
    f"ADEChallengeData2016/annotations/{split}/*.png": count for split, count in COUNTS.items()
}


def prepare(root: Path) -> None:
    """Fetches and unpacks the archive where the layout under ``root`` is incomplete, then checks it."""
    if layout_problems(root, FILES):
        extract(download(URL, root / "ADEChallengeData2016.zip", SHA1), root)
        check_layout(root, FILES)


def main(argv: list[str] | None = None) -> None:
    run_script(
        "prepare_ade20k.py", __doc__, prepare, "data/ade20k",
        "ADE20K ready under {root}: training 20210, validation 2000 images", argv,
    )


if __name__ == "__main__":
    main()
