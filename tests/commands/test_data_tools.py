"""The data-stats and loader-throughput commands."""

import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from lit_seg.commands import data_stats as stats
from lit_seg.commands import loader_benchmark as throughput
from lit_seg.data import CamVidDataModule, DatasetError
from lit_seg.data.io import read_index_mask
from tests.helpers.fakes import fake_camvid


def test_median_frequency_weights() -> None:
    # freq = pixels / pixels of the images holding the class: 0.1, 0.3, 0.2; median 0.2
    weights = stats.median_frequency_weights(np.array([10, 30, 40, 0]), np.array([100, 100, 200, 0]))
    assert np.allclose(weights, [2.0, 2 / 3, 1.0, 0.0])


def test_class_pixels_count_like_by_hand(tmp_path: Path) -> None:
    datamodule = CamVidDataModule(str(fake_camvid(tmp_path / "camvid")))
    pixels, image_pixels = stats.class_pixels(datamodule, "train")
    masks = [read_index_mask(mask) for _, mask in datamodule.pairs("train")]
    assert pixels.tolist() == [sum(int((m == c).sum()) for m in masks) for c in range(11)]
    assert image_pixels.tolist() == [sum(m.size for m in masks if (m == c).any()) for c in range(11)]


def test_class_pixels_reject_impossible_labels(tmp_path: Path) -> None:
    datamodule = CamVidDataModule(str(fake_camvid(tmp_path / "camvid")))
    _, mask = datamodule.pairs("train")[1]
    Image.fromarray(np.full((40, 56), 12, dtype=np.uint8)).save(mask)
    with pytest.raises(DatasetError, match=re.escape(f"mask {mask} holds label 12")):
        stats.class_pixels(datamodule, "train")


def test_stats_prints_table_and_yaml_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = fake_camvid(tmp_path / "camvid")
    stats.main(["--data", "lit_seg.data.CamVidDataModule", "--root", str(root), "--split", "val"])
    out = capsys.readouterr().out
    assert "bicyclist" in out
    weights = yaml.safe_load(out.splitlines()[-1])["class_weights"]
    expected = stats.median_frequency_weights(*stats.class_pixels(CamVidDataModule(str(root)), "val"))
    assert np.allclose(weights, expected, atol=1e-4)


def test_stats_rejects_a_path_that_names_no_datamodule() -> None:
    with pytest.raises(ValueError, match="SegmentationDataModule"):
        stats.main(["--data", "lit_seg.data.io.read_image"])


def test_throughput_reports_each_worker_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = fake_camvid(tmp_path / "camvid", {"train": 4})
    throughput.main(["--data", "lit_seg.data.CamVidDataModule", "--root", str(root), "--crop", "32", "48",
                     "--workers", "0", "--batch-size", "2", "--batches", "3", "--warmup", "1"])
    rows = capsys.readouterr().out.splitlines()[2:]
    assert len(rows) == 1 and float(rows[0].split()[1]) > 0
