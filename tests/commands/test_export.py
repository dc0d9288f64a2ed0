"""Export to ONNX and torch.export with a dynamic input size, checked against PyTorch's logits, with the
metadata that lets a deployment reproduce ``predict``."""

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
import yaml
from PIL import Image
from torch import Tensor, nn

from lit_seg.commands.cli import run_cli
from lit_seg.commands.export import ExportError, capture, check, export, exportable, read_metadata
from lit_seg.commands.main import main
from lit_seg.networks import create_model, list_models

# Small backbones for the models of PAPERS.md that have a choice.
SMALL_OPTIONS = {
    "pspnet": {"backbone": "resnet18"},
    "deeplabv2": {"backbone": "resnet18"},
    "deeplabv3": {"backbone": "resnet18", "multi_grid": None},
    "deeplabv3plus": {"backbone": "resnet18", "multi_grid": None},
    "denseaspp": {"backbone": "densenet121"},
    "refinenet": {"backbone": "resnet18"},
}
SIZES = [(64, 80), (97, 131)]


def random_net(name: str, **options: object) -> nn.Module:
    """A registered model whose zero-initialised layers (FCN's score layers) get random weights, so
    that its logits are not all zero."""
    torch.manual_seed(0)
    net = create_model(name, 5, **options).eval()
    with torch.no_grad():
        for parameter in net.parameters():
            if not parameter.any():
                parameter.normal_(0, 0.01)
    return net


@pytest.mark.slow
@pytest.mark.parametrize("name", [*list_models(paper_only=True), "segnet_basic"])
def test_paper_model_exports_matching_pytorch_at_two_sizes(name: str, tmp_path: Path) -> None:
    net = random_net(name, **SMALL_OPTIONS.get(name, {}))
    for suffix in (".onnx", ".pt2"):
        path = tmp_path / f"{name}{suffix}"
        export(net, path, example_size=SIZES[0])
        assert check(net, path, SIZES) < 1e-3


class SizeDependentNet(nn.Module):
    """The layers whose ONNX export would fix the input size, in miniature: PSPNet's adaptive
    pooling to bins that rarely divide the size, and SegNet's unpooling to odd sizes."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2, stride=2, ceil_mode=True, return_indices=True)
        self.pyramid = nn.ModuleList(nn.AdaptiveAvgPool2d(bins) for bins in (1, 2, 3, 6))
        self.unpool = nn.MaxUnpool2d(2, stride=2)
        self.head = nn.Conv2d(20, num_classes, 1)

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        features = self.conv(images)
        pooled, indices = self.pool(features)
        size = pooled.shape[-2:]
        pyramid = [nn.functional.interpolate(pool(pooled), size=size, mode="bilinear") for pool in self.pyramid]
        scores = self.head(torch.cat([pooled, *pyramid], 1))
        return {"out": self.unpool(scores, indices[:, :3], output_size=features.shape[-2:])}


def test_size_dependent_layers_are_swapped_for_exact_equivalents(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = SizeDependentNet().eval()
    swapped = exportable(net)
    assert not any(isinstance(m, nn.AdaptiveAvgPool2d) and m.output_size != 1 for m in swapped.modules())
    assert not any(isinstance(m, nn.MaxUnpool2d) for m in swapped.modules())
    images = torch.randn(2, 3, 53, 71)
    torch.testing.assert_close(swapped(images), net(images)["out"], rtol=0, atol=1e-6)
    for suffix in (".onnx", ".pt2"):
        export(net, tmp_path / f"net{suffix}", example_size=(40, 48))
        assert check(net, tmp_path / f"net{suffix}", [(40, 48), (53, 71), (33, 90)]) < 1e-5


class DataDependent(nn.Module):
    """Control flow on tensor values: no graph holds it."""

    def forward(self, x: Tensor) -> Tensor:
        return x * 2 if x.mean() > 0 else x


class Unexportable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 3, 1)
        self.block = nn.Sequential(nn.ReLU(), DataDependent())

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        return {"out": self.block(self.stem(images))}


def test_an_unexportable_layer_is_named() -> None:
    with pytest.raises(ExportError, match=r"Unexportable cannot be exported .*layer block\.1 \(DataDependent\)"):
        capture(Unexportable(), example_size=(16, 16))


def export_args(run: Path, output: Path, *configs: Path) -> list[str]:
    return ["export", "--config", str(run / "config.yaml"), *(f"--config={config}" for config in configs),
            "--ckpt_path", str(run / "checkpoints" / "last.ckpt"), "--output", str(output), "--example_size", "[32, 48]"]


@pytest.mark.parametrize("suffix", [".onnx", ".pt2"])
def test_export_command_writes_a_checked_model_and_its_metadata(
    trained_run: Path, tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture
) -> None:
    output = tmp_path / f"model{suffix}"
    overlay = tmp_path.parent / f"{tmp_path.name}-overlay.yaml"  # as a stacked run's later file: other keys too
    overlay.write_text("trainer:\n  max_steps: 1\nwandb:\n  project: mine\nmodel:\n  boundary_f1: false\n")
    main(export_args(trained_run, output, overlay))
    assert "differ from PyTorch by at most" in capsys.readouterr().out
    beside = {".onnx": [], ".pt2": ["model.json"]}[suffix]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([output.name, *beside])  # no scratch files left
    metadata = read_metadata(output)
    assert metadata["class_names"][0] == "background" and metadata["ignore_index"] == 255
    assert len(metadata["palette"]) == len(metadata["class_names"]) and len(metadata["mean"]) == 3
    with pytest.raises(SystemExit, match="--overwrite true"):
        main(export_args(trained_run, output))


def test_onnx_dimensions_are_named(trained_run: Path, tmp_path: Path) -> None:
    main(export_args(trained_run, tmp_path / "model.onnx"))
    graph = onnx.load(str(tmp_path / "model.onnx")).graph
    shapes = [[d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim] for value in (*graph.input, *graph.output)]
    assert shapes == [["batch", 3, "height", "width"], ["batch", 5, "height", "width"]]


def test_onnx_with_its_metadata_alone_reproduces_predict(trained_run: Path, shapes_root: Path, tmp_path: Path) -> None:
    image_path = tmp_path / "photo.png"
    with Image.open(next((shapes_root / "images" / "val").iterdir())) as image:
        image.convert("RGB").resize((45, 37)).save(image_path)  # a size the export never traced
    run_cli(["predict", "--config", str(trained_run / "config.yaml"), "--ckpt_path",
             str(trained_run / "checkpoints" / "last.ckpt"), "--data.predict_inputs", f"[{image_path}]",
             "--predictions.output_dir", str(tmp_path / "predicted")])
    with Image.open(tmp_path / "predicted" / "photo.png") as mask:
        predicted = np.asarray(mask)
    main(export_args(trained_run, tmp_path / "model.onnx"))

    # What a deployment has: the ONNX file.
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    metadata = {key: json.loads(value) for key, value in session.get_modelmeta().custom_metadata_map.items()}
    pixels = np.asarray(Image.open(image_path).convert("RGB"), dtype=np.float32) / 255
    images = ((pixels - metadata["mean"]) / metadata["std"]).transpose(2, 0, 1)[None].astype(np.float32)
    [logits] = session.run(["logits"], {"images": images})
    np.testing.assert_array_equal(logits[0].argmax(0), predicted)
    assert len(metadata["class_names"]) == logits.shape[1]


def test_export_reads_a_recipe_as_fit_does(capsys: pytest.CaptureFixture) -> None:
    """A one-file recipe (its parts expanded) and command-line overrides: model and data as fit has them."""
    recipe = Path(__file__).resolve().parents[2] / "experiments" / "recipes" / "segnet_basic_camvid.yaml"
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--config", str(recipe), "--data.init_args.root", "elsewhere", "--ckpt_path", "last.ckpt",
              "--output", "model.onnx", "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["net"]["class_path"] == "lit_seg.networks.segnet.SegNetBasic"  # from the model part
    assert printed["data"]["init_args"]["root"] == "elsewhere" and printed["data"]["init_args"]["batch_size"] == 4
