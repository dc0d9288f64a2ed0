"""Model costs: trainable parameters and forward multiply-accumulates, measured on the meta device."""

from collections.abc import Sequence

import torch
from rich.table import Table
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from lit_seg.models.registry import create_model


def count_parameters(model: nn.Module) -> int:
    """Returns the number of trainable parameters (BN weights and biases included, buffers not)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def forward_flops(model: nn.Module, image_size: tuple[int, int] = (512, 512), batch: int = 1) -> int:
    """Returns the FLOPs of one forward pass in eval mode, as counted by torch's ``FlopCounterMode``
    (a multiply-accumulate counts as 2 FLOPs; convolutions and matrix products only, biases,
    normalisation, pooling and interpolation are not counted).

    The input is a 3-channel batch on the model's device: a model built under
    ``torch.device("meta")`` is measured in seconds without computing anything.

    Args:
        model: the network.
        image_size: (height, width) of the input.
        batch: batch size.
    """
    device = next(model.parameters()).device
    images = torch.zeros(batch, 3, *image_size, device=device)
    training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(images)
    model.train(training)
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
    header = ("Model", "Params", "GMAC", "Input")
    cells = [
        (str(row["name"]), f"{row['params']:,}", f"{row['gmac']:.1f}", f"{row['size']}x{row['size']}")
        for row in rows
    ]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|---|---:|---:|---:|"]
        lines += ["| " + " | ".join(cell) + " |" for cell in cells]
        return "\n".join(lines) + "\n"
    table = Table(title="Forward cost (GMAC = multiply-accumulates / 1e9, eval mode, batch 1)")
    table.add_column(header[0])
    for column in header[1:]:
        table.add_column(column, justify="right")
    for cell in cells:
        table.add_row(*cell)
    return table
