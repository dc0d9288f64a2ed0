"""Prepares Cityscapes (fine annotations): unpacks the two archives you download, then checks the counts.

Cityscapes is given only to registered users, so this script cannot download it: it tells you
which files to fetch, and where to put them.
"""

from pathlib import Path

from lit_seg.commands.prepare_data import check_layout, extract, layout_problems, run_script
from lit_seg.data.io import DatasetError

PACKAGES = {  # archive: (packageID on the download page, size)
    "gtFine_trainvaltest.zip": (1, "241 MB"),
    "leftImg8bit_trainvaltest.zip": (3, "11 GB"),
}
COUNTS = {"train": 2975, "val": 500, "test": 1525}
FILES = {f"leftImg8bit/{split}/*/*_leftImg8bit.png": count for split, count in COUNTS.items()} | {
    f"gtFine/{split}/*/*_gtFine_labelIds.png": count for split, count in COUNTS.items()
}


def manual_steps(root: Path) -> str:
    """What to download by hand, and where to put it."""
    files = "\n".join(
        f"  {name} ({size}): https://www.cityscapes-dataset.com/file-handling/?packageID={package}"
        for name, (package, size) in PACKAGES.items()
    )
    return (
        "Cityscapes is distributed only to registered users, so it cannot be downloaded for you.\n"
        "Register and log in at https://www.cityscapes-dataset.com/login/, download\n"
        f"{files}\ninto {root.resolve()}/ and run this script again."
    )


def prepare(root: Path) -> None:
    """Unpacks the archives found under ``root`` where the layout is incomplete, then checks it."""
    if not layout_problems(root, FILES):
        return
    if any(not (root / name).is_file() for name in PACKAGES):
        raise DatasetError(manual_steps(root))
    for name in PACKAGES:
        extract(root / name, root)
    check_layout(root, FILES)


def main(argv: list[str] | None = None) -> None:
    run_script(
        "prepare_cityscapes.py", __doc__, prepare, "data/cityscapes",
        "Cityscapes ready under {root}: train 2975, val 500, test 1525 images", argv,
    )


if __name__ == "__main__":
    main()
