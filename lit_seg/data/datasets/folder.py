"""Any dataset laid out as images/<split>/ and masks/<split>/ with a classes.txt."""

from functools import cached_property
from pathlib import Path

import numpy as np

from lit_seg.data.datamodule import SegmentationDataModule
from lit_seg.data.io import DatasetError, list_files, read_colour_mask, read_index_mask


def read_classes_file(path: Path) -> tuple[tuple[str, ...], tuple[tuple[int, int, int], ...] | None]:
    """Reads ``classes.txt``: one class per line, ``name`` or ``name R G B``; line i is label i - 1.

    Returns the names and the palette (None unless every line gives a colour).

    Raises:
        DatasetError: naming the line, for a blank line (which would shift the labels of the lines
            after it) or a name given twice (whose classes would share one column of the metrics).
    """
    if not path.is_file():
        raise FileNotFoundError(f"no classes file at {path}: expected one line per class, 'name [R G B]'")
    lines = path.read_text().splitlines()
    while lines and not lines[-1].strip():  # trailing blank lines name no class
        lines.pop()
    if not lines:
        raise DatasetError(f"{path} names no class: expected one line per class, 'name [R G B]'")
    names, colours = [], []
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        if not fields:
            raise DatasetError(f"{path}:{number}: blank line; line i names label i - 1, so every line names a class")
        if len(fields) not in (1, 4):
            raise DatasetError(f"{path}:{number}: expected 'name' or 'name R G B', got {line!r}")
        if fields[0] in names:
            first = names.index(fields[0]) + 1
            raise DatasetError(f"{path}:{number}: class {fields[0]!r} is already named on line {first}")
        names.append(fields[0])
        if len(fields) == 4:
            if not all(v.isdigit() and int(v) <= 255 for v in fields[1:]):
                raise DatasetError(f"{path}:{number}: colour {' '.join(fields[1:])}: expected R G B from 0 to 255")
            colours.append(tuple(int(v) for v in fields[1:]))
    palette = tuple(colours) if len(colours) == len(names) else None
    return tuple(names), palette


class FolderDataModule(SegmentationDataModule):
    """A generic dataset: ``root/images/<split>/X.{png,jpg}``, ``root/masks/<split>/X.png`` and
    ``root/classes.txt``. Masks are index PNGs, or colour PNGs mapped through the palette of
    classes.txt (``colour_masks=True``).

    Args:
        colour_masks: masks are RGB and hold the palette colours instead of label indices.
        **kwargs: the arguments of :class:`SegmentationDataModule`.
    """

    def __init__(self, root: str, colour_masks: bool = False, **kwargs) -> None:
        super().__init__(root, **kwargs)
        self.colour_masks = colour_masks

    @cached_property
    def _classes(self) -> tuple[tuple[str, ...], tuple[tuple[int, int, int], ...] | None]:
        """The names and palette of ``classes.txt``, read on first use."""
        self.check_root()
        return read_classes_file(self.root / "classes.txt")

    @property
    def class_names(self) -> tuple[str, ...]:  # type: ignore[override]
        return self._classes[0]

    @property
    def palette(self) -> tuple[tuple[int, int, int], ...] | None:  # type: ignore[override]
        return self._classes[1]

    @cached_property
    def _palette_array(self) -> np.ndarray:
        return np.array(self.palette, dtype=np.uint8)

    def read_mask(self, path: Path) -> np.ndarray:
        if self.colour_masks:
            if self.palette is None:
                raise DatasetError(f"colour masks need a colour on every line of {self.root / 'classes.txt'}")
            return read_colour_mask(path, self._palette_array)
        return read_index_mask(path)

    def pairs(self, split: str) -> list[tuple[Path, Path]]:
        image_dir = self.require(self.root / "images" / split, "folder")
        mask_dir = self.require(self.root / "masks" / split, "folder")
        return [(image, mask_dir / f"{image.stem}.png") for image in list_files(image_dir)]
