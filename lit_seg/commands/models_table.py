"""Model costs: trainable parameters and forward multiply-accumulates, measured on the meta device."""

import argparse
from collections.abc import Sequence

import torch
from rich.table import Table
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from lit_seg.evaluation.tables import markdown_table, rich_table
from lit_seg.networks.registry import create_model, list_models

PAPER_MODELS = (
    "fcn32s", "fcn16s", "fcn8s", "segnet", "pspnet", "deeplabv2", "deeplabv3", "deeplabv3plus", "denseaspp", "refinenet",
)


def count_parameters(model: nn.Module) -> int:
    """Returns the number of trainable parameters (BN weights and biases included, buffers not)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def forward_flops(
    model: nn.Module, image_size: tuple[int, int] = (512, 512), batch: int = 1, training: bool = False
) -> int:
    """Returns the FLOPs of one forward pass, as counted by torch's ``FlopCounterMode`` (a
    multiply-accumulate counts as 2 FLOPs; convolutions and matrix products only, biases,
    normalisation, pooling and interpolation are not counted).

    The input is a 3-channel batch on the model's device: a model built under
    ``torch.device("meta")`` is measured in seconds without computing anything.

    Args:
        model: the network.
        image_size: (height, width) of the input.
        batch: batch size.
        training: count the training-mode forward, auxiliary heads included (the default counts
            inference). It needs a batch of 2 where a batch norm sees a 1x1 map (PSPNet's and
            ASPP's image pooling), and updates batch-norm statistics unless the model is on meta.
    """
    device = next(model.parameters()).device
    images = torch.zeros(batch, 3, *image_size, device=device)
    was_training = model.training
    model.train(training)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(images)
    model.train(was_training)
    return counter.get_total_flops()


def model_table(names: Sequence[str], num_classes: int = 21, size: int = 512) -> list[dict[str, object]]:
    """Builds each registered model with its default options on the meta device and measures it.

    Args:
        names: registered model names.
        num_classes: number of output classes.
        size: side of the square input image.

    Returns:
        One row per model: ``name``, ``params`` (trainable parameters), ``gmac`` (forward
        multiply-accumulates in billions, i.e. FLOPs / 2 / 1e9, the unit of PAPERS' costs) and
        ``size``.
    """
    rows = []
    for name in names:
        with torch.device("meta"):
            model = create_model(name, num_classes)
        flops = forward_flops(model, (size, size))
        rows.append({"name": name, "params": count_parameters(model), "gmac": flops / 2 / 1e9, "size": size})
    return rows


def render_table(rows: Sequence[dict[str, object]], markdown: bool = False) -> Table | str:
    """Renders rows of :func:`model_table` as a rich ``Table``, or as Markdown text."""
    header = ("Model", "Params", "GMAC", "GFLOPs", "Input")
    cells = [
        (str(row["name"]), f"{row['params']:,}", f"{row['gmac']:.1f}", f"{2 * row['gmac']:.1f}", f"{row['size']}x{row['size']}")
        for row in rows
    ]
    if markdown:
        return markdown_table(header, cells)
    return rich_table(
        "Forward cost (GMAC = multiply-accumulates / 1e9, GFLOPs = 2 x GMAC; eval mode, batch 1)", header, cells
    )


def main(argv: list[str] | None = None) -> None:
    """``lit-seg models``: the parameter and cost table of registered models."""
    parser = argparse.ArgumentParser(prog="lit-seg models", description=main.__doc__)
    parser.add_argument("names", nargs="*", help="model names (default: every registered model)")
    parser.add_argument("--paper", action="store_true", help="only the ten paper architectures")
    parser.add_argument("--classes", type=int, default=21, help="number of classes (default 21)")
    parser.add_argument("--size", type=int, default=512, help="square input side (default 512)")
    parser.add_argument("--markdown", action="store_true", help="print Markdown instead of a rich table")
    args = parser.parse_args(argv)
    names = args.names or (PAPER_MODELS if args.paper else list_models())
    table = render_table(model_table(names, args.classes, args.size), markdown=args.markdown)
    if args.markdown:
        print(table, end="")
    else:
        from rich.console import Console

        Console().print(table)
