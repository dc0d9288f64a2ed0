"""``lit-seg export``: a trained network to ONNX or torch.export with dynamic size, checked against PyTorch."""

import argparse
import copy
import os
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnxruntime
import torch
import yaml
from lightning.pytorch.cli import LightningArgumentParser
from torch import Tensor, nn
from torch.export import Dim, ExportedProgram

from lit_seg.commands.cli import link_data_to_model
from lit_seg.data.datamodule import SegmentationDataModule
from lit_seg.networks.backbones import load_state_dict
from lit_seg.training.module import SegmentationModule

FORMATS = {".onnx": "ONNX", ".pt2": "torch.export"}


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


def export(net: nn.Module, path: Path, example_size: tuple[int, int] = (512, 512), opset: int = 18) -> None:
    """Writes ``net`` (logits only, input ``images`` of any batch, height and width) to ``path``:
    ONNX for ``.onnx``, a torch.export program for ``.pt2`` (load with ``torch.export.load``)."""
    if path.suffix not in FORMATS:
        raise ExportError(f"unknown export format {path.suffix!r} of {path}: use {' or '.join(FORMATS)}")
    program = capture(net, example_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".pt2":
        torch.export.save(program, path)
        return
    large = sum(p.numel() * p.element_size() for p in net.parameters()) > 1.5 * 2**30  # protobuf's 2 GB limit
    torch.onnx.export(
        program, (), str(path), input_names=["images"], output_names=["logits"], opset_version=opset,
        external_data=large, verbose=False,
    )


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


def load_trained(config: Path, checkpoint: Path | None) -> tuple[SegmentationModule, SegmentationDataModule]:
    """The model and DataModule of a run's ``config.yaml``, with the weights of ``checkpoint``."""
    parser = LightningArgumentParser()
    parser.add_lightning_class_args(SegmentationModule, "model")
    parser.add_lightning_class_args(SegmentationDataModule, "data", subclass_mode=True)
    link_data_to_model(parser)
    settings = yaml.safe_load(config.read_text())
    objects = parser.instantiate(parser.parse_object({"model": settings["model"], "data": settings["data"]}))
    model = objects.model
    if checkpoint is not None:
        model.load_state_dict(load_state_dict(checkpoint))
    return model.eval(), objects.data


def main(argv: list[str] | None = None) -> None:
    """``lit-seg export --config RUN/config.yaml --checkpoint CKPT --output model.onnx``."""
    parser = argparse.ArgumentParser(prog="lit-seg export", description=__doc__)
    parser.add_argument("--config", type=Path, required=True, help="the run's config.yaml")
    parser.add_argument("--checkpoint", type=Path, help="weights (a Lightning checkpoint); none keeps the initial ones")
    parser.add_argument("--output", type=Path, required=True, help="model.onnx (ONNX) or model.pt2 (torch.export)")
    parser.add_argument("--example-size", type=int, nargs=2, default=[512, 512], metavar=("HEIGHT", "WIDTH"),
                        help="input size traced (the exported model takes any size)")
    parser.add_argument("--opset", type=int, default=18, help="ONNX opset")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    args = parser.parse_args(argv)
    if args.output.exists() and not args.overwrite:
        parser.error(f"{args.output} exists; pass --overwrite to replace it")
    model, _ = load_trained(args.config, args.checkpoint)
    height, width = args.example_size
    args.output.parent.mkdir(parents=True, exist_ok=True)
    # Written and checked in a scratch folder, then moved: a failure leaves no file behind.
    with tempfile.TemporaryDirectory(dir=args.output.parent, prefix=f".{args.output.name}.") as scratch:
        staged = Path(scratch) / args.output.name
        try:
            export(model.net, staged, (height, width), args.opset)
            difference = check(model.net, staged, [(height, width), (height + 37, width + 23)])
        except ExportError as error:
            parser.exit(1, f"lit-seg export: error: {error}\n")
        for file in Path(scratch).iterdir():  # the model, and its weights file for ONNX over 2 GB
            os.replace(file, args.output.parent / file.name)
    kind = FORMATS[args.output.suffix]
    print(f"wrote {kind} model {args.output} (logits differ from PyTorch by at most {difference:.2g})")
