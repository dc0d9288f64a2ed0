"""``lit-seg predict`` on a folder of mixed images with a trained run's config and checkpoint."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lit_seg.commands.cli import main
from lit_seg.data.palette import class_palette
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
        "--data.predict_inputs", f"[{inputs}]", "--data.eval_batch_size", "2",
        "--predictions.output_dir", str(output), *extra,
    ])


def test_predict_writes_a_mask_and_an_overlay_per_image_and_reports_a_corrupt_file(
    trained_run: Path, inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    config = (trained_run / "config.yaml").read_text()
    output = tmp_path / "out"
    predict(trained_run, inputs, output)
    assert "broken.png" in capsys.readouterr().err
    expected = {f"{name}.png" for name in IMAGES} | {f"{name}_overlay.jpg" for name in IMAGES}
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
    assert "already exist" in capsys.readouterr().err
    assert (output / "gray.png").read_bytes() == b"keep me"
    assert [p.name for p in output.iterdir()] == ["gray.png"]  # stopped before predicting anything
    predict(trained_run, inputs, output, "--predictions.overwrite", "true")
    with Image.open(output / "gray.png") as mask:
        assert mask.size == (21, 33)


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
