"""``lit-seg benchmark`` on CPU: every figure is printed and written, the ladder skips GPU-only rungs."""

import inspect
import json
from pathlib import Path

import pytest
import torch

from lit_seg.commands.benchmark.command import LADDER, _ladder, parse_options
from lit_seg.commands.main import main
from lit_seg.networks import create_model
from lit_seg.networks.costs import forward_flops
from lit_seg.networks.deeplabv3 import DeepLabV3

SMALL = ["--model", "deeplabv3", "--backbone", "resnet18", "--model-option", "multi_grid=null", "--classes", "3"]


def run(tmp_path: Path, *args: str) -> tuple[dict, str]:
    """Runs the command in-process; returns the JSON result and the Markdown file."""
    main(["benchmark", *SMALL, "--size", "32", "--batch", "2", "--output-dir", str(tmp_path), *args])
    (json_path,) = tmp_path.glob("*.json")
    return json.loads(json_path.read_text()), json_path.with_suffix(".md").read_text()


def test_one_setup_reports_every_figure(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    result, markdown = run(tmp_path, "--warmup", "1", "--window", "2", "--windows", "3", "--peak-tflops", "2.0")
    (row,) = result["rows"]
    assert row["images_per_s"]["n"] == 3 and row["images_per_s"]["min"] <= row["images_per_s"]["median"] > 0
    assert row["ms_per_step"]["median"] == pytest.approx(2 * 1000 / row["images_per_s"]["median"], rel=0.5)
    assert row["peak_memory_kind"] == "process peak RSS" and row["peak_memory_mb"] > 100
    with torch.device("meta"):
        model = create_model("deeplabv3", 3, backbone="resnet18", multi_grid=None)
    flops = forward_flops(model, (32, 32), batch=2, training=True) / 2
    assert result["forward_gflop_per_image"] == pytest.approx(flops / 1e9) and result["forward_mode"] == "training"
    assert row["tflop_per_s"] == pytest.approx(3 * flops * row["images_per_s"]["median"] / 1e12)
    assert row["mfu"] == pytest.approx(row["tflop_per_s"] / 2.0)
    assert result["machine"]["device"] == "cpu" and result["machine"]["torch"] == torch.__version__
    assert result["command"].startswith("lit-seg benchmark --model deeplabv3 --backbone resnet18")
    assert result["model_options"] == {"multi_grid": None, "backbone": "resnet18"}
    assert "| 32-true, NCHW, eager, default SGD |" in markdown and markdown in capsys.readouterr().out


def test_lightning_overhead_is_measured_against_a_plain_loop(tmp_path: Path) -> None:
    result, markdown = run(tmp_path, "--overhead", "--warmup", "1", "--window", "2", "--windows", "3")
    ratio = result["overhead"]["lightning_over_plain"]
    assert ratio["n"] == 3 and 0.2 < ratio["median"] < 5
    assert set(result["overhead"]["ms_per_step"]) == {"Trainer.fit", "plain loop"}
    assert "Lightning overhead" in markdown


def test_inference_frames_per_second(tmp_path: Path) -> None:
    result, markdown = run(tmp_path, "--inference", "--precision", "bf16-mixed", "--warmup", "1", "--window", "1", "--windows", "2")
    (row,) = result["rows"]
    assert result["mode"] == "inference" and row["images_per_s"]["n"] == 2
    assert row["tflop_per_s"] == pytest.approx(result["forward_gflop_per_image"] * row["images_per_s"]["median"] / 1e3)
    assert "frames/s" in markdown


def test_the_real_data_path_with_device_augmentation(tmp_path: Path) -> None:
    """Generated PNGs through FolderDataModule: decoded once into memory, augmented per batch."""
    result, _ = run(
        tmp_path / "out", "--data-root", str(tmp_path / "data"), "--make-data", "6", "--data-size", "40", "56",
        "--data-option", "cache=memory", "--data-option", "device_augment=true", "--data-option", "num_workers=0",
        "--warmup", "1", "--window", "2", "--windows", "2",
    )
    assert sorted(p.name for p in (tmp_path / "data" / "images" / "train").iterdir())[-1] == "00005.png"
    assert "cache" in result["data"] and result["classes"] == 3
    assert result["rows"][0]["images_per_s"]["median"] > 0


def test_the_ladder_skips_gpu_only_rungs_on_cpu() -> None:
    rungs, skipped = _ladder(torch.device("cpu"))
    assert [row["label"] for row in skipped] == ["+cudnn.benchmark"]
    assert len(rungs) == len(LADDER) - 1
    final = rungs[-1][1]
    assert (final.precision, final.channels_last, final.compile, final.cudnn_benchmark, final.optimizer) == (
        "bf16-mixed", True, True, False, "fused"
    )
    rungs, skipped = _ladder(torch.device("cuda"))
    assert not skipped and rungs[-1][1].cudnn_benchmark


@pytest.mark.slow
def test_the_ladder_runs_on_cpu(tmp_path: Path) -> None:
    result, markdown = run(tmp_path, "--ladder", "--warmup", "2", "--window", "1", "--windows", "2", "--rounds", "2")
    labels = [row["label"] for row in result["rows"]]
    assert labels == [label for label, _ in LADDER]
    assert result["rows"][1]["skipped"] and "skipped" in markdown
    assert all(row["ratio_to_previous"]["n"] == 2 for row in result["rows"][2:])
    assert result["rows"][4]["graph_breaks"] == 0 and result["rows"][4]["compiled_graphs"] >= 1


def test_model_options_are_parsed_with_their_types() -> None:
    signature = inspect.signature(DeepLabV3)
    options = parse_options(["output_stride=8", "multi_grid=[1, 2, 4]", "pretrained=null"], signature, "model")
    assert options == {"output_stride": 8, "multi_grid": (1, 2, 4), "pretrained": None}
    with pytest.raises(ValueError, match="unknown model option 'stride'"):
        parse_options(["stride=8"], signature, "model")
    with pytest.raises(ValueError, match="output_stride=eight"):
        parse_options(["output_stride=eight"], signature, "model")
