"""``lit-seg models``: the parameter and forward-cost table of registered models, and the paper
models' reference parameter counts beside ours."""

import argparse
from collections.abc import Sequence

import torch
from rich.table import Table

from lit_seg.evaluation.tables import markdown_table, rich_table
from lit_seg.networks.costs import count_parameters, forward_flops
from lit_seg.networks.registry import create_model, list_models, model_entry


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


def reference_rows() -> list[dict[str, object]]:
    """Each reference count of the paper models (PAPERS.md) with ours in that configuration, built on
    the meta device: ``name``, ``description``, ``num_classes``, ``reference``, ``ours`` and ``exact``."""
    rows = []
    for name in list_models(paper_only=True):
        for reference in model_entry(name).references:
            with torch.device("meta"):
                model = create_model(name, reference.num_classes, **reference.options)
            rows.append({
                "name": name, "description": reference.description, "num_classes": reference.num_classes,
                "reference": reference.params, "ours": count_parameters(model), "exact": reference.exact,
            })
    return rows


def render_references(rows: Sequence[dict[str, object]], markdown: bool = False) -> Table | str:
    """Renders rows of :func:`reference_rows` as a rich ``Table``, or as Markdown text."""
    header = ("Model", "Configuration", "Reference", "Ours", "Kind")
    cells = [
        (str(row["name"]), str(row["description"]), f"{row['reference']:,}", f"{row['ours']:,}",
         "exact" if row["exact"] else "ref (0.5 %)")
        for row in rows
    ]
    if markdown:
        return markdown_table(header, cells, text_columns=2)
    return rich_table("Trainable parameters: PAPERS.md's reference counts and ours", header, cells, text_columns=2)


def main(argv: list[str] | None = None) -> None:
    """``lit-seg models``: the parameter and cost table of registered models."""
    parser = argparse.ArgumentParser(prog="lit-seg models", description=main.__doc__)
    parser.add_argument("names", nargs="*", help="model names (default: every registered model)")
    parser.add_argument("--paper", action="store_true", help="only the ten paper architectures")
    parser.add_argument("--references", action="store_true",
                        help="the paper models' reference parameter counts (PAPERS.md) beside ours")
    parser.add_argument("--classes", type=int, default=21, help="number of classes (default 21)")
    parser.add_argument("--size", type=int, default=512, help="square input side (default 512)")
    parser.add_argument("--markdown", action="store_true", help="print Markdown instead of a rich table")
    args = parser.parse_args(argv)
    if args.references:
        table = render_references(reference_rows(), markdown=args.markdown)
    else:
        names = args.names or list_models(paper_only=args.paper)
        table = render_table(model_table(names, args.classes, args.size), markdown=args.markdown)
    if args.markdown:
        print(table, end="")
    else:
        from rich.console import Console

        Console().print(table)
