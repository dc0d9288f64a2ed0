"""``lit-seg predict`` on a folder of mixed images with a trained run's config and checkpoint."""

import errno
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lit_seg.commands.main import main
from lit_seg.data.palette import class_palette
from lit_seg.evaluation import prediction_writer
from lit_seg.evaluation.prediction_writer import overlay, save_mask

# name: (width, height, mode)
IMAGES = {"rgb": (57, 40, "RGB"), "gray": (21, 33, "L"), "rgba": (64, 25, "RGBA"), "photo": (50, 50, "RGB")}


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "inputs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, (width, height, mode) in IMAGES.items():
        channels = {"RGB": 3, "L": 1, "RGBA": 4}[mode]
        pixels = rng.integers(0, 256, (height, width, channels), dtype=np.uint8).squeeze()
        suffix = ".jpg" if name == "photo" else ".png"
        Image.fromarray(pixels, mode).save(folder / f"{name}{suffix}")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png")
    (folder / "notes.txt").write_text("not an image")
    return folder


def predict(run: Path, inputs: Path, output: Path, *extra: str) -> None:
    main([
        "predict", "--config", str(run / "config.yaml"), "--ckpt_path", str(run / "checkpoints" / "last.ckpt"),
        "--data.predict_inputs", str(inputs), "--data.eval_batch_size", "2",  # a plain path (a list also works)
        "--predictions.output_dir", str(output), *extra,
    ])


def failed_predict(capsys: pytest.CaptureFixture, *args: Path | str) -> tuple[list[str], str]:
    """The skipped-file lines and the final error line of a predict run that exits with code 1."""
    with pytest.raises(SystemExit) as exit_info:
        predict(*args)
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    return [line for line in lines if line.startswith("lit-seg predict: skipped ")], lines[-1]


def outputs_of(names: list[str]) -> set[str]:
    return {f"{name}.png" for name in names} | {f"{name}_overlay.jpg" for name in names}


def test_predict_writes_a_mask_and_an_overlay_per_image_and_reports_a_corrupt_file(
    trained_run: Path, inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    config = (trained_run / "config.yaml").read_text()
    output = tmp_path / "out"
    skipped, last = failed_predict(capsys, trained_run, inputs, output)
    assert len(skipped) == 1 and skipped[0].startswith(f"lit-seg predict: skipped {inputs / 'broken.png'}: cannot read")
    assert last == "lit-seg: error: 1 of 5 input(s) failed (each reported above): broken.png"
    expected = outputs_of(list(IMAGES))
    assert {p.name for p in output.iterdir()} == expected  # nothing for broken.png, no temporary file
    for name, (width, height, _) in IMAGES.items():
        with Image.open(output / f"{name}.png") as mask:
            assert mask.mode == "P" and mask.size == (width, height)
            assert np.asarray(mask).max() < 5  # the shapes dataset's classes
        with Image.open(output / f"{name}_overlay.jpg") as overlay:
            assert overlay.mode == "RGB" and overlay.size == (width, height)
    assert (trained_run / "config.yaml").read_text() == config  # the run's config is read, never rewritten


def test_existing_outputs_are_not_overwritten_without_the_flag(
    trained_run: Path, inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    output = tmp_path / "out"
    output.mkdir()
    (output / "gray.png").write_bytes(b"keep me")
    with pytest.raises(SystemExit):
        predict(trained_run, inputs, output)
    assert "already exist" in (error := capsys.readouterr().err) and "--predictions.overwrite true" in error
    assert (output / "gray.png").read_bytes() == b"keep me"
    assert [p.name for p in output.iterdir()] == ["gray.png"]  # stopped before predicting anything
    with pytest.raises(SystemExit):  # broken.png
        predict(trained_run, inputs, output, "--predictions.overwrite", "true")
    with Image.open(output / "gray.png") as mask:
        assert mask.size == (21, 33)


def test_image_above_the_pixel_limit_is_skipped_and_the_others_written(
    trained_run: Path, inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    Image.fromarray(np.zeros((150, 140, 3), dtype=np.uint8)).save(inputs / "giant.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)  # PIL refuses above twice this; the others are smaller
    output = tmp_path / "out"
    skipped, last = failed_predict(capsys, trained_run, inputs, output)
    assert any(line.startswith(f"lit-seg predict: skipped {inputs / 'giant.png'}: image") and "too large" in line
               for line in skipped)
    assert last == "lit-seg: error: 2 of 6 input(s) failed (each reported above): broken.png, giant.png"
    assert {p.name for p in output.iterdir()} == outputs_of(list(IMAGES))


def test_image_above_max_eval_pixels_is_skipped_and_the_others_written(
    trained_run: Path, inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    output = tmp_path / "out"  # 2000 pixels: photo (50x50) and rgb (57x40) are above, gray and rgba below
    skipped, last = failed_predict(capsys, trained_run, inputs, output, "--model.max_eval_pixels", "2000")
    refused = [line for line in skipped if "above model.max_eval_pixels (2000)" in line]
    assert sorted(Path(line.split()[3].rstrip(":")).name for line in refused) == ["photo.jpg", "rgb.png"]
    assert last.startswith("lit-seg: error: 3 of 5 input(s) failed")
    assert {p.name for p in output.iterdir()} == outputs_of(["gray", "rgba"])


def failing_write(failure: OSError, stems: tuple[str, ...] = ()) -> Callable[[Path, Callable[[Path], None]], None]:
    """``write_atomically`` that fails with ``failure`` for outputs of the given stems (all when none given)."""
    write_atomically = prediction_writer.write_atomically

    def write(path: Path, save: Callable[[Path], None]) -> None:
        if stems and path.stem.removesuffix("_overlay") not in stems:
            return write_atomically(path, save)
        raise failure

    return write


def test_a_file_that_cannot_be_written_is_skipped_and_the_others_written(
    trained_run: Path, inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    failure = OSError(errno.ENAMETOOLONG, "File name too long")
    monkeypatch.setattr(prediction_writer, "write_atomically", failing_write(failure, ("rgba",)))
    output = tmp_path / "out"
    skipped, last = failed_predict(capsys, trained_run, inputs, output)
    reason = f"cannot write {output / 'rgba.png'}: File name too long"
    assert f"lit-seg predict: skipped {inputs / 'rgba.png'}: {reason}" in skipped
    assert last == "lit-seg: error: 2 of 5 input(s) failed (each reported above): broken.png, rgba.png"
    assert {p.name for p in output.iterdir()} == outputs_of(["rgb", "gray", "photo"])


def test_a_read_only_output_folder_stops_in_one_line(
    trained_run: Path, inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As root, a folder's permissions do not stop writes: the folder's file system refuses each one instead.
    failure = OSError(errno.EROFS, "Read-only file system")
    monkeypatch.setattr(prediction_writer, "write_atomically", failing_write(failure))
    output = tmp_path / "out"
    _, last = failed_predict(capsys, trained_run, inputs, output)
    assert last == f"lit-seg: error: Read-only file system: {output / 'gray.png'}"  # the first image, in name order
    assert list(output.iterdir()) == []


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full, whose every write fails with ENOSPC")
def test_a_full_disk_stops_in_one_line_naming_the_file(
    trained_run: Path, inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    output = tmp_path / "out"
    output.mkdir()
    (output / ".photo_overlay.jpg.tmp").symlink_to("/dev/full")  # the overlay's temporary file: the kernel's ENOSPC
    _, last = failed_predict(capsys, trained_run, inputs, output)
    assert last == f"lit-seg: error: No space left on device: {output / 'photo_overlay.jpg'}"
    assert {p.name for p in output.iterdir()} == outputs_of(["gray"])  # photo's mask went with its overlay


def test_a_failed_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail_midway(image: Image.Image, path: Path, format: str) -> None:  # noqa: A002
        Path(path).write_bytes(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", fail_midway)
    with pytest.raises(OSError, match="disk full"):
        save_mask(np.zeros((4, 5), dtype=np.uint8), np.zeros((2, 3), dtype=np.uint8), tmp_path / "mask.png")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("alpha", [0.5, 0.3])
def test_overlay_blends_each_pixel_with_its_class_colour(alpha: float) -> None:
    rng = np.random.default_rng(0)
    palette = class_palette(5)
    image = rng.integers(0, 256, (3, 6, 7), dtype=np.uint8)
    labels = rng.choice([0, 2, 4], (6, 7))  # classes 1 and 3 absent
    out = overlay(torch.from_numpy(image), torch.from_numpy(labels), palette, alpha).numpy()
    expected = (1 - alpha) * image + alpha * palette[labels].transpose(2, 0, 1)
    assert out.dtype == np.uint8 and np.abs(out - expected).max() <= 0.5 + 1e-4  # rounded to the nearest level
