"""``lit-seg export``: a trained network to ONNX or torch.export with dynamic batch, height and width,
checked against PyTorch, with what a deployment needs to use it (class names, palette, ignore index, the
images' mean and std) in the ONNX file's metadata or in a JSON file beside a ``.pt2``."""

import copy
import json
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
import torch
import yaml
from jsonargparse import ActionConfigFile, ArgumentError, Namespace
from lightning.pytorch.cli import LightningArgumentParser
from torch import Tensor, nn
from torch.export import Dim, ExportedProgram

from lit_seg.commands.cli import link_data_to_model
from lit_seg.commands.config_files import PARSER_MODE, ConfigError, expand_arguments, given_configs
from lit_seg.data.datamodule import SegmentationDataModule
from lit_seg.data.palette import class_palette
from lit_seg.networks.backbones import load_state_dict
from lit_seg.training.module import SegmentationModule

FORMATS = {".onnx": "ONNX", ".pt2": "torch.export"}
# The names of the exported graph's dimensions: input "images" [batch, 3, height, width], output "logits"
# [batch, classes, height, width].
DIMENSIONS = {0: "batch", 2: "height", 3: "width"}


class ExportError(RuntimeError):
    """A network cannot be exported with a dynamic input size, or its export computes otherwise."""


class _Logits(nn.Module):
    """The network's ``"out"`` logits alone: an exported graph has tensor outputs."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, images: Tensor) -> Tensor:
        return self.net(images)["out"]


def _averaging_matrix(size: Tensor | int, bins: int, like: Tensor) -> Tensor:
    """``[bins, size]``: row i averages the input positions of adaptive pooling's bin i."""
    index = torch.arange(bins, device=like.device)
    start = (index * size) // bins
    end = ((index + 1) * size + bins - 1) // bins
    position = torch.arange(size, device=like.device)
    inside = (position[None, :] >= start[:, None]) & (position[None, :] < end[:, None])
    return inside.to(like.dtype) / (end - start)[:, None].to(like.dtype)


class _MatrixAdaptiveAvgPool2d(nn.Module):
    """``nn.AdaptiveAvgPool2d`` as two matrix products whose matrices follow the input size: the
    same bins and values, but exportable with a dynamic size (ONNX's pooling fixes the kernel at
    export time, which gives wrong bins at other sizes)."""

    def __init__(self, output_size: int | tuple[int | None, int | None]) -> None:
        super().__init__()
        self.output_size = (output_size, output_size) if isinstance(output_size, int) else output_size

    def forward(self, x: Tensor) -> Tensor:
        bins_h = self.output_size[0] or x.shape[-2]
        bins_w = self.output_size[1] or x.shape[-1]
        rows = _averaging_matrix(x.shape[-2], bins_h, x)
        columns = _averaging_matrix(x.shape[-1], bins_w, x)
        return torch.einsum("kh,nchw,lw->nckl", rows, x, columns)


class _ScatterMaxUnpool2d(nn.Module):
    """``nn.MaxUnpool2d(2, 2)`` with ``output_size`` as a scatter into a zero map of that size,
    exportable with a dynamic size (ONNX's MaxUnpool gets odd sizes wrong)."""

    def forward(self, x: Tensor, indices: Tensor, output_size: torch.Size) -> Tensor:
        batch, channels = x.shape[:2]
        height, width = output_size[-2], output_size[-1]
        flat = x.new_zeros(batch, channels, height * width)
        return flat.scatter(2, indices.flatten(2), x.flatten(2)).view(batch, channels, height, width)


def exportable(net: nn.Module) -> nn.Module:
    """An eval-mode copy of ``net`` returning its logits, with the layers whose export would fix
    the input size swapped for exact equivalents (adaptive pooling to more than one bin, max
    unpooling)."""
    copied = copy.deepcopy(net).eval()
    for module in list(copied.modules()):
        for name, child in module.named_children():
            if isinstance(child, nn.AdaptiveAvgPool2d) and child.output_size not in (1, (1, 1)):
                setattr(module, name, _MatrixAdaptiveAvgPool2d(child.output_size))
            elif isinstance(child, nn.MaxUnpool2d):
                if child.kernel_size != (2, 2) or child.stride != (2, 2) or child.padding != (0, 0):
                    raise ExportError(f"layer {name}: only 2x2 max unpooling of stride 2 is exportable")
                setattr(module, name, _ScatterMaxUnpool2d())
    return _Logits(copied)


def _failing_layer(error: BaseException, net: nn.Module) -> str | None:
    """The innermost submodule of ``net`` whose code raised ``error`` (or what caused it)."""
    names = {id(module): name for name, module in net.named_modules() if name}
    while error is not None:
        found = None
        for frame, _ in traceback.walk_tb(error.__traceback__):
            found = names.get(id(frame.f_locals.get("self")), found)
        if found is not None:
            return found
        error = error.__cause__ or error.__context__
    return None


def capture(net: nn.Module, example_size: tuple[int, int] = (512, 512)) -> ExportedProgram:
    """The network's graph for any batch size, height and width (``torch.export``).

    Raises:
        ExportError: naming the layer whose code cannot be captured with a dynamic size.
    """
    model = exportable(net)
    example = torch.randn(2, 3, *example_size)
    dynamic = {"images": {0: Dim.DYNAMIC, 2: Dim.DYNAMIC, 3: Dim.DYNAMIC}}
    try:
        with torch.no_grad():
            return torch.export.export(model, (example,), dynamic_shapes=dynamic)
    except Exception as error:
        layer = _failing_layer(error, model.net)
        where = f"layer {layer} ({type(model.net.get_submodule(layer)).__name__})" if layer else "a layer"
        message = str(error).strip().splitlines()[0]
        raise ExportError(
            f"{type(net).__name__} cannot be exported with a dynamic input size: {where}: {message}"
        ) from error


def deployment_metadata(data: SegmentationDataModule) -> dict[str, Any]:
    """What a deployment needs besides the network, from the DataModule: the class names, the palette
    (an RGB colour per class), the ignore index, and the mean and std that normalise images scaled to
    [0, 1], with the input and output described."""
    return {
        "class_names": list(data.class_names),
        "palette": class_palette(data.num_classes, data.palette).tolist(),
        "ignore_index": data.ignore_index,
        "mean": list(data.mean),
        "std": list(data.std),
        "input": "images: float32 [batch, 3, height, width], RGB scaled to [0, 1], then (x - mean) / std",
        "output": "logits: float32 [batch, classes, height, width]; each pixel's class is the argmax over classes",
    }


def metadata_path(path: Path) -> Path:
    """The JSON file of a ``.pt2`` export's metadata: ``model.pt2`` -> ``model.json``."""
    return path.with_suffix(".json")


def read_metadata(path: Path) -> dict[str, Any]:
    """The metadata of an exported file: an ONNX file's ``metadata_props`` (each value JSON), or the
    JSON file beside a ``.pt2``."""
    if path.suffix == ".onnx":
        model = onnx.load(str(path), load_external_data=False)
        return {prop.key: json.loads(prop.value) for prop in model.metadata_props}
    return json.loads(metadata_path(path).read_text())


def _name_dimensions(model: onnx.ModelProto) -> None:
    """Names the input's dynamic dimensions batch, height and width, wherever the graph uses them."""
    names = {}
    for index, dimension in enumerate(model.graph.input[0].type.tensor_type.shape.dim):
        if dimension.dim_param and index in DIMENSIONS:
            names[dimension.dim_param] = DIMENSIONS[index]
    for value in [*model.graph.input, *model.graph.output, *model.graph.value_info]:
        for dimension in value.type.tensor_type.shape.dim:
            if dimension.dim_param in names:
                dimension.dim_param = names[dimension.dim_param]


def export(
    net: nn.Module, path: Path, example_size: tuple[int, int] = (512, 512), opset: int = 18,
    metadata: Mapping[str, Any] | None = None,
) -> None:
    """Writes ``net`` (logits only, input ``images`` of any batch, height and width, so named) to
    ``path``: ONNX for ``.onnx``, a torch.export program for ``.pt2`` (load with ``torch.export.load``).
    ``metadata`` (see :func:`deployment_metadata`) goes into the ONNX file's ``metadata_props``, each
    value as JSON, or into a JSON file beside the ``.pt2`` (:func:`metadata_path`)."""
    if path.suffix not in FORMATS:
        raise ExportError(f"unknown export format {path.suffix!r} of {path}: use {' or '.join(FORMATS)}")
    program = capture(net, example_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".pt2":
        torch.export.save(program, path)
        if metadata is not None:
            metadata_path(path).write_text(json.dumps(metadata, indent=2) + "\n")
        return
    large = sum(p.numel() * p.element_size() for p in net.parameters()) > 1.5 * 2**30  # protobuf's 2 GB limit
    torch.onnx.export(
        program, (), str(path), input_names=["images"], output_names=["logits"], opset_version=opset,
        external_data=large, verbose=False,
    )
    model = onnx.load(str(path), load_external_data=False)  # the weights of a large model stay where they are
    _name_dimensions(model)
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=key, value=json.dumps(value))
    onnx.save(model, str(path))


def load_exported(path: Path) -> Callable[[Tensor], Tensor]:
    """An exported file as a function of images (ONNX through onnxruntime on the CPU)."""
    if path.suffix == ".onnx":
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return lambda images: torch.from_numpy(session.run(None, {"images": images.numpy()})[0])
    program = torch.export.load(path).module()
    return lambda images: program(images)


@contextmanager
def _evaluating(net: nn.Module) -> Iterator[None]:
    """``net`` in eval mode inside the block; each submodule's own mode is restored after it."""
    modes = {module: module.training for module in net.modules()}
    net.eval()
    try:
        yield
    finally:
        for module, training in modes.items():
            module.training = training


def check(net: nn.Module, path: Path, sizes: list[tuple[int, int]], tolerance: float = 1e-3) -> float:
    """The largest difference between the exported file's logits and PyTorch's at each of
    ``sizes`` (random images, batch 2; ``net`` runs in eval mode, its modes restored after).

    Raises:
        ExportError: when a difference exceeds ``tolerance`` times the largest logit (at least 1).
    """
    model = _Logits(net)
    exported = load_exported(path)
    worst = 0.0
    for height, width in sizes:
        images = torch.randn(2, 3, height, width)
        with torch.no_grad(), _evaluating(net):
            expected = model(images)
            actual = exported(images)
        difference = (actual - expected).abs().max().item() if actual.shape == expected.shape else np.inf
        if not difference <= tolerance * max(1.0, expected.abs().max().item()):
            raise ExportError(
                f"{path} differs from PyTorch by {difference:.3g} at {height}x{width} (output {tuple(actual.shape)}, "
                f"expected {tuple(expected.shape)}): a layer's export depends on the input size"
            )
        worst = max(worst, difference)
    return worst


def export_parser(config_keys: set[str]) -> LightningArgumentParser:
    """The parser of ``lit-seg export``: ``--config`` files as ``lit-seg fit`` takes them (a run's
    config.yaml, or a recipe, with registry names of networks), of which only ``model`` and ``data`` are
    used (``config_keys`` are the other top-level keys in them, accepted and ignored), then options of the
    command line (``--data.init_args.root DIR`` as in ``fit``)."""
    parser = LightningArgumentParser(
        prog="lit-seg export", description=__doc__, parser_mode=PARSER_MODE, exit_on_error=False,
        usage="%(prog)s --config RUN/version_0/config.yaml --ckpt_path CKPT --output model.onnx",
    )
    parser.add_argument("--config", action=ActionConfigFile, help="a run's config.yaml, or the recipe it ran")
    parser.add_lightning_class_args(SegmentationModule, "model")
    parser.add_lightning_class_args(SegmentationDataModule, "data", subclass_mode=True)
    link_data_to_model(parser)
    parser.add_argument("--ckpt_path", type=str, required=True, help="the checkpoint whose weights are exported")
    parser.add_argument("--output", type=str, required=True, help="model.onnx (ONNX) or model.pt2 (torch.export)")
    parser.add_argument("--example_size", type=tuple[int, int], default=(512, 512),
                        help="height and width traced (the exported model takes any size)")
    parser.add_argument("--opset", type=int, default=18, help="ONNX opset")
    parser.add_argument("--overwrite", type=bool, default=False, help="replace an existing output file")
    for key in sorted(config_keys - {"model", "data", "config", "ckpt_path"}):
        parser.add_argument(f"--{key}", type=Any, default=None, help="(ignored)")
    return parser


def _config_keys(argv: list[str]) -> set[str]:
    """The top-level keys of the config files in ``argv``."""
    keys = set()
    for _, path in given_configs(argv):  # --config FILE and --config=FILE
        loaded = yaml.safe_load(path.read_text())
        keys |= set(loaded) if isinstance(loaded, dict) else set()
    return keys


def load_trained(argv: list[str]) -> tuple[SegmentationModule, SegmentationDataModule, Namespace]:
    """The model (with the checkpoint's weights) and DataModule that the ``lit-seg export`` arguments
    ``argv`` describe, and the parsed arguments (a recipe's ``--config`` expanded into its parts, as
    for ``fit``)."""
    try:
        argv = expand_arguments(argv)
        parser = export_parser(_config_keys(argv))
        args = parser.parse_args(argv)
    except (ArgumentError, ConfigError) as error:
        raise SystemExit(f"lit-seg export: error: {error}") from None
    objects = parser.instantiate_classes(args)
    objects.model.load_state_dict(load_state_dict(Path(args.ckpt_path)))
    return objects.model.eval(), objects.data, args


def main(argv: list[str] | None = None) -> None:
    """``lit-seg export --config RUN/version_0/config.yaml --ckpt_path CKPT --output model.onnx``."""
    model, data, args = load_trained(sys.argv[1:] if argv is None else list(argv))
    output = Path(args.output)
    if output.exists() and not args.overwrite:
        raise SystemExit(f"lit-seg export: error: {output} exists; pass --overwrite true to replace it")
    height, width = args.example_size
    output.parent.mkdir(parents=True, exist_ok=True)
    # Written and checked in a scratch folder, then moved: a failure leaves no file behind.
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=f".{output.name}.") as scratch:
        staged = Path(scratch) / output.name
        try:
            export(model.net, staged, (height, width), args.opset, deployment_metadata(data))
            difference = check(model.net, staged, [(height, width), (height + 37, width + 23)])
        except ExportError as error:
            raise SystemExit(f"lit-seg export: error: {error}") from None
        for file in Path(scratch).iterdir():  # the model, its metadata (.pt2) or its weights (ONNX over 2 GB)
            os.replace(file, output.parent / file.name)
    kind = FORMATS[output.suffix]
    where = "its metadata" if output.suffix == ".onnx" else metadata_path(output)
    print(f"wrote {kind} model {output} (logits differ from PyTorch by at most {difference:.2g}); "
          f"class names, palette, ignore index, mean and std in {where}")
