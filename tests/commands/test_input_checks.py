"""Inputs that would train wrong without a word (gradient ascent, empty crops, merged classes) or fail
with a traceback (a batch of 0, an image above PIL's pixel limit, a full disk, an image too large to
evaluate whole) stop ``lit-seg`` with exit code 1 and one line naming the option, file or value."""

import errno
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lit_seg.commands.cli import run_cli
from tests.helpers.tiny_runs import tiny_fit_args


def one_line_error(capsys: pytest.CaptureFixture, args: list[str]) -> str:
    """The error line of a run that must exit with code 1 and print nothing but that line to stderr
    after the run's own notices (no traceback)."""
    with pytest.raises(SystemExit) as exit_info:
        run_cli(args)
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("lit-seg: error: ")
    return last.removeprefix("lit-seg: error: ")


def copy_of(shapes_root: Path, tmp_path: Path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(shapes_root, root)
    return root


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        # Before these checks: negative accumulation, loss rising at every step, exit 0.
        ("--total_batch_size", "-4", "total_batch_size -4: expected a positive number of samples per optimizer step"),
        ("--trainer.accumulate_grad_batches", "-2", "trainer.accumulate_grad_batches -2: expected 1"),
        # Before: empty crops, loss 0.0000, exit 0.
        ("--data.crop_size", "[0, -5]", "crop_size (0, -5): expected two positive sizes (height, width)"),
        # Before: a traceback from torch's sampler.
        ("--data.batch_size", "0", "batch_size 0: expected a positive number of images per process"),
        ("--data.eval_batch_size", "-1", "eval_batch_size -1: expected a positive number of images per process"),
        ("--data.scale_range", "[2.0, 0.5]", "scale_range (2.0, 0.5): expected (low, high) with 0 < low <= high"),
        ("--data.rotation", "270", "rotation 270.0: expected a maximum angle in degrees from 0 to 180"),
        ("--model.max_eval_pixels", "0", "max_eval_pixels 0: expected a positive number of pixels, or None"),
    ],
)
def test_numeric_option_is_refused_before_training(
    capsys: pytest.CaptureFixture, shapes_root: Path, tmp_path: Path, option: str, value: str, message: str
) -> None:
    error = one_line_error(capsys, tiny_fit_args(shapes_root, tmp_path, option, value, "--trainer.max_steps", "2"))
    assert error.startswith(message)
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        # Before: the two "disc" columns of the per-class IoU became one, silently.
        (["background", "disc", "square", "disc", "ellipse"], "classes.txt:4: class 'disc' is already named on line 2"),
        # Before: the blank line was skipped, so "square" became label 1 instead of 2.
        (["background", "disc", "", "square", "triangle", "ellipse"], "classes.txt:3: blank line"),
    ],
)
def test_classes_file_with_a_duplicate_or_blank_line(
    capsys: pytest.CaptureFixture, shapes_root: Path, tmp_path: Path, classes: list[str], message: str
) -> None:
    root = copy_of(shapes_root, tmp_path)
    (root / "classes.txt").write_text("\n".join(classes) + "\n")
    error = one_line_error(capsys, tiny_fit_args(root, tmp_path / "run", "--trainer.max_steps", "2"))
    assert error.startswith(str(root / message.split(":")[0])) and message in error


def test_training_image_above_the_pixel_limit(
    capsys: pytest.CaptureFixture, shapes_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = copy_of(shapes_root, tmp_path)
    giant = root / "images" / "train" / "00002.png"
    Image.fromarray(np.zeros((150, 140, 3), dtype=np.uint8)).save(giant)
    Image.fromarray(np.zeros((150, 140), dtype=np.uint8)).save(root / "masks" / "train" / "00002.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)  # PIL refuses above twice this; the others are 48x48
    error = one_line_error(capsys, tiny_fit_args(root, tmp_path / "run", "--trainer.max_epochs", "1"))
    assert error.startswith(f"image {giant} is too large to read: Image size (21000 pixels) exceeds limit")


def test_full_disk_while_saving_a_checkpoint(
    capsys: pytest.CaptureFixture, shapes_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(checkpoint: dict, path: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr("lit_seg.training.checkpoint_io.save_atomically", disk_full)
    args = tiny_fit_args(shapes_root, tmp_path, "--trainer.max_steps", "2", "--trainer.limit_val_batches", "1")
    error = one_line_error(capsys, args)
    assert error.startswith(f"No space left on device: {tmp_path / 'checkpoints'}/")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full, whose every write fails with ENOSPC")
def test_real_full_disk_while_saving_a_checkpoint(
    capsys: pytest.CaptureFixture, shapes_root: Path, tmp_path: Path
) -> None:
    # The checkpoint's temporary file is a link to /dev/full: torch.save meets the kernel's own ENOSPC.
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    for name in ("latest-epoch0-step2.ckpt.tmp", "best-epoch0-step2.ckpt.tmp"):
        (checkpoints / name).symlink_to("/dev/full")
    args = tiny_fit_args(shapes_root, tmp_path, "--trainer.max_steps", "2", "--trainer.limit_val_batches", "1")
    assert one_line_error(capsys, args).startswith(f"No space left on device: {checkpoints}/")
    assert not list(checkpoints.glob("*.ckpt"))  # no checkpoint under its final name


def test_validation_image_above_max_eval_pixels(
    capsys: pytest.CaptureFixture, trained_run: Path, tmp_path: Path
) -> None:
    args = [
        "validate", "--config", str(trained_run / "config.yaml"),
        "--ckpt_path", str(trained_run / "checkpoints" / "last.ckpt"),
        "--trainer.default_root_dir", str(tmp_path), "--model.max_eval_pixels", "2000",
    ]
    error = one_line_error(capsys, args)
    assert error.startswith("an image of 48x48 pixels is above model.max_eval_pixels (2000) for whole-image inference")
    assert "--model.inference lit_seg.evaluation.inference.SlidingWindow" in error
    window = ["--model.inference", "lit_seg.evaluation.inference.SlidingWindow", "--model.inference.crop_size",
              "[32, 32]", "--model.inference.stride", "[16, 16]"]
    cli = run_cli(args + window)  # windows of 1024 pixels: within the budget
    assert "val/mIoU" in cli.trainer.callback_metrics


def test_evaluation_settings_on_the_command_line_hold_with_a_checkpoint(trained_run: Path, tmp_path: Path) -> None:
    """LightningCLI applies a checkpoint's hyperparameters over the command line: evaluation settings are not among them."""
    args = [
        "validate", "--config", str(trained_run / "config.yaml"),
        "--ckpt_path", str(trained_run / "checkpoints" / "last.ckpt"),
        "--trainer.default_root_dir", str(tmp_path), "--model.boundary_f1", "false",
    ]
    metrics = run_cli(args).trainer.callback_metrics
    assert "val/mIoU" in metrics and "val/BF" not in metrics
