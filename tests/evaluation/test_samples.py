"""The validation sample grid a fit writes: image | ground truth | prediction, one row per image."""

from pathlib import Path

import numpy as np
from PIL import Image

from lit_seg.commands.cli import run_cli
from lit_seg.data import FolderDataModule
from lit_seg.data.palette import class_palette, colourise
from tests.helpers.tiny_runs import tiny_fit_args


def test_fit_writes_the_sample_grid(shapes_root: Path, tmp_path: Path) -> None:
    run_cli(tiny_fit_args(shapes_root, tmp_path, "--trainer.max_epochs", "1", "--trainer.logger", "true"))
    with Image.open(tmp_path / "version_0" / "predictions.png") as image:
        grid = np.asarray(image.convert("RGB"))
    side = 48  # the shapes images; 5 validation images, each row padded by 2 white lines
    assert grid.shape == (5 * (side + 2), 3 * side, 3)
    data = FolderDataModule(str(shapes_root))
    data.setup("validate")
    first = data.datasets["val"][0]
    truth = colourise(first["mask"].numpy(), class_palette(data.num_classes, data.palette), data.ignore_index)
    assert np.array_equal(grid[:side, side : 2 * side], truth)
