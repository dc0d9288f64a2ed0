"""The ``lit-seg benchmark`` command: one setup, the speed-up ladder, Lightning's overhead, or inference."""

import argparse
import inspect
import logging
import shlex
import sys
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from functools import partial
from pathlib import Path

import jsonargparse
import torch
from lightning import LightningDataModule
from torch import nn
from torch._dynamo.utils import counters

from lit_seg.commands.benchmark import results
from lit_seg.commands.benchmark.measure import (
    Setup,
    SyntheticData,
    build_module,
    inference_windows,
    interleaved_windows,
    lightning_windows,
    peak_memory_mb,
)
from lit_seg.commands.benchmark.synthetic import write_folder_dataset
from lit_seg.data.datamodule import SegmentationDataModule
from lit_seg.data.datasets.folder import FolderDataModule
from lit_seg.evaluation.tables import markdown_table
from lit_seg.networks import create_model, get_model_class
from lit_seg.networks.costs import forward_flops

# The ladder: from the plain baseline, one speed option added per rung.
LADDER = (
    ("baseline (fp32, NCHW, eager)", {}),
    ("+cudnn.benchmark", {"cudnn_benchmark": True}),
    ("+channels_last", {"channels_last": True}),
    ("+bf16-mixed", {"precision": "bf16-mixed"}),
    ("+compile", {"compile": True}),
    ("+fused optimizer", {"optimizer": "fused"}),
)
GPU_ONLY = {"cudnn_benchmark": "cuDNN exists only on CUDA devices"}
# warm-up steps per fit, steps per timed window, windows per fit, and rounds (fits per setup).
DEFAULTS = {
    "benchmark": {"warmup": 5, "window": 5, "windows": 10, "rounds": 1},
    "ladder": {"warmup": 3, "window": 5, "windows": 2, "rounds": 3},
    "overhead": {"warmup": 3, "window": 5, "windows": 40, "rounds": 1},
    "inference": {"warmup": 5, "window": 10, "windows": 10, "rounds": 1},
}


def parse_options(pairs: list[str], signature: inspect.Signature, what: str) -> dict[str, object]:
    """Parses ``KEY=VALUE`` pairs, each value with the type annotation of the parameter of that
    name in ``signature`` (``8`` -> int, ``null`` -> None, ``[1,2,4]`` -> tuple, ...).

    Raises:
        ValueError: a pair without ``=``, an unknown key, or a value of the wrong type.
    """
    options: dict[str, object] = {}
    known = [name for name in signature.parameters if name not in ("num_classes", "self")]
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator:
            raise ValueError(f"{what} option {pair!r}: expected KEY=VALUE")
        if key not in known:
            raise ValueError(f"unknown {what} option {key!r}; known: {', '.join(known)}")
        annotation = signature.parameters[key].annotation
        value_parser = jsonargparse.ArgumentParser(exit_on_error=False)
        value_parser.add_argument("--value", type=str if annotation is inspect.Parameter.empty else annotation)
        try:
            options[key] = value_parser.parse_args([f"--value={value}"]).value
        except argparse.ArgumentError as error:
            raise ValueError(f"{what} option {key}={value}: {str(error).splitlines()[-1].strip()}") from None
    return options


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lit-seg benchmark",
        description="Training speed of a lit_seg model through the real SegmentationModule and Trainer.fit: "
        "images/s (median of timed windows after warm-up), ms/step, peak memory, FLOPs and utilisation.",
    )
    model = parser.add_argument_group("model")
    model.add_argument("--model", default="deeplabv3plus", help="a registered model name (lit-seg models)")
    model.add_argument("--backbone", help="shorthand for --model-option backbone=NAME")
    model.add_argument("--model-option", "-o", action="append", default=[], metavar="KEY=VALUE",
                       help="a constructor argument of the model, typed as in its signature, e.g. output_stride=8")
    model.add_argument("--classes", type=int, default=19, help="output classes (synthetic data)")
    work = parser.add_argument_group("workload")
    work.add_argument("--size", type=int, nargs="+", default=[512], metavar="SIDE",
                      help="input HEIGHT [WIDTH] (the training crop)")
    work.add_argument("--batch", type=int, default=16, help="images per step")
    work.add_argument("--data-root", help="time a FolderDataModule on this folder instead of one synthetic batch")
    work.add_argument("--make-data", type=int, metavar="COUNT",
                      help="first write COUNT generated PNG pairs of --data-size to --data-root, unless it holds a dataset")
    work.add_argument("--data-size", type=int, nargs=2, metavar=("HEIGHT", "WIDTH"), default=(1024, 2048),
                      help="image size of --make-data")
    work.add_argument("--data-option", action="append", default=[], metavar="KEY=VALUE",
                      help="a DataModule argument, e.g. num_workers=8, cache=memory, device_augment=true")
    speed = parser.add_argument_group("speed options (one setup)")
    speed.add_argument("--precision", default="32-true", help="Trainer precision: 32-true, bf16-mixed, 16-mixed")
    speed.add_argument("--channels-last", action="store_true", help="the module's channels_last")
    speed.add_argument("--compile", action="store_true", help="the module's compile (torch.compile)")
    speed.add_argument("--cudnn-benchmark", action="store_true", help="the Trainer's benchmark=True")
    speed.add_argument("--optimizer", choices=("default", "for-loop", "foreach", "fused"), default="default",
                       help="SGD implementation (torch's default is foreach on CUDA, for-loop on CPU)")
    mode = parser.add_argument_group("mode").add_mutually_exclusive_group()
    mode.add_argument("--ladder", action="store_true",
                      help="from the plain baseline, add cudnn.benchmark, channels_last, bf16-mixed, compile, fused "
                      "optimizer one at a time; setups run round-robin, each ratio is to the rung before")
    mode.add_argument("--overhead", action="store_true",
                      help="Trainer.fit against a plain PyTorch loop with the same module and batch, interleaved")
    mode.add_argument("--inference", action="store_true",
                      help="frames/s of the module's inference (eval mode, no gradients) instead of training")
    timing = parser.add_argument_group("timing (defaults depend on the mode)")
    timing.add_argument("--warmup", type=int, help="untimed steps at the start of every fit (compilation, cuDNN tuning)")
    timing.add_argument("--window", type=int, help="steps per timed window")
    timing.add_argument("--windows", type=int, help="timed windows per fit")
    timing.add_argument("--rounds", type=int, help="fits per setup, interleaved across setups")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--threads", type=int, help="CPU threads of torch (default: torch's choice)")
    parser.add_argument("--peak-tflops", type=float,
                        help="the device's peak dense TFLOP/s at the precision used, for model-FLOPs utilisation")
    parser.add_argument("--output-dir", default="benchmarks", help="where the JSON and Markdown results go")
    return parser


def _figures(
    windows: list[float],
    batch: int,
    window: int,
    flops: int,
    peak_tflops: float | None,
    memory: tuple[float, str],
    passes: int = 3,
) -> dict:
    """Throughput, step time, memory and utilisation of one setup's timed windows; a step costs
    ``passes`` forward passes (3 in training: the backward counts as twice the forward)."""
    images_per_s = results.spread([batch * window / seconds for seconds in windows])
    tflops = passes * flops * images_per_s["median"] / 1e12
    memory_mb, memory_kind = memory
    return {
        "images_per_s": images_per_s,
        "ms_per_step": results.spread([1000 * seconds / window for seconds in windows]),
        "peak_memory_mb": memory_mb,
        "peak_memory_kind": memory_kind,
        "tflop_per_s": tflops,
        "mfu": tflops / peak_tflops if peak_tflops else None,
    }


def _compile_counts() -> dict[str, int]:
    return {"graph_breaks": sum(counters["graph_break"].values()), "compiled_graphs": counters["stats"]["unique_graphs"]}


def _range(stats: dict[str, float], digits: int = 1) -> str:
    return f"{stats['median']:.{digits}f} [{stats['min']:.{digits}f}-{stats['max']:.{digits}f}]"


def _row(label: str, row: dict) -> list[str]:
    if row.get("skipped"):
        return [label, f"skipped: {row['skipped']}"] + [""] * 6
    mfu = f"{100 * row['mfu']:.1f} %" if row["mfu"] is not None else "-"
    breaks = f"{row['graph_breaks']} ({row['compiled_graphs']} graphs)" if row["setup"]["compile"] else "-"
    return [
        label, _range(row["images_per_s"]), _range(row["ms_per_step"]),
        f"{row['peak_memory_mb']:,.0f} MiB", f"{row['tflop_per_s']:.3f}", mfu, breaks,
    ]


def _columns(inference: bool = False) -> list[str]:
    rate, step = ("frames/s", "ms/batch") if inference else ("images/s", "ms/step")
    return ["Setup", f"{rate} median [min-max]", step, "peak memory", "model TFLOP/s", "MFU", "graph breaks"]


def _accelerator(device: torch.device) -> str:
    """The Trainer's accelerator for ``device``."""
    return "gpu" if device.type == "cuda" else "cpu"


def run_setups(
    rungs: list[tuple[str, Setup]],
    build: Callable[[], nn.Module],
    datamodule: LightningDataModule,
    device: torch.device,
    args: argparse.Namespace,
    flops: int,
) -> list[dict]:
    """Times each setup ``args.rounds`` times, round-robin, and returns one result row per setup
    (with ``ratio_to_previous`` per round, the previous being the last setup that ran)."""
    modules = {label: build_module(build, datamodule.num_classes, setup) for label, setup in rungs}
    windows: dict[str, list[list[float]]] = {label: [] for label, _ in rungs}
    memory: dict[str, list[tuple[float, str]]] = {label: [] for label, _ in rungs}
    compile_counts: dict[str, dict[str, int]] = {}
    for round_index in range(args.rounds):
        for label, setup in rungs:
            counters.clear()
            times = lightning_windows(
                modules[label], datamodule, setup, _accelerator(device), args.warmup, args.windows, args.window
            )
            windows[label].append(times)
            memory[label].append(peak_memory_mb(device))
            if round_index == 0:
                compile_counts[label] = _compile_counts()
    rows, previous = [], None
    for label, setup in rungs:
        flat = [t for times in windows[label] for t in times]
        figures = _figures(flat, args.batch, args.window, flops, args.peak_tflops, max(memory[label]))
        row = {"label": label, "setup": asdict(setup), **figures}
        row.update(compile_counts[label])
        per_round = [args.batch * args.window * len(times) / sum(times) for times in windows[label]]
        if previous is not None:
            row["ratio_to_previous"] = results.spread([now / before for now, before in zip(per_round, previous)])
        rows.append(row)
        previous = per_round
    return rows


def _ladder(device: torch.device) -> tuple[list[tuple[str, Setup]], list[dict]]:
    """The rungs that run on ``device``, and a row for each one that cannot."""
    rungs, skipped, options = [], [], {}
    for label, change in LADDER:
        gpu_only = [GPU_ONLY[key] for key in change if key in GPU_ONLY]
        if gpu_only and device.type != "cuda":
            skipped.append({"label": label, "setup": change, "skipped": gpu_only[0]})
            continue
        options.update(change)
        rungs.append((label, Setup(**options)))
    return rungs, skipped


def overhead(
    module_setup: Setup, build: Callable[[], nn.Module], data: SyntheticData, device: torch.device, args: argparse.Namespace
) -> dict:
    """Trainer.fit against the plain loop: ``args.windows`` pairs of windows, interleaved in one run
    on one module; the ratio of each pair's times, Lightning's over the plain loop's."""
    module = build_module(build, data.num_classes, module_setup)
    lightning, plain = interleaved_windows(
        module, data, module_setup, _accelerator(device), args.warmup, args.windows, args.window
    )
    return {
        "setup": asdict(module_setup),
        "ms_per_step": {
            "Trainer.fit": results.spread([1000 * t / args.window for t in lightning]),
            "plain loop": results.spread([1000 * t / args.window for t in plain]),
        },
        "lightning_over_plain": results.spread([a / b for a, b in zip(lightning, plain)]),
        "windows_s": {"Trainer.fit": lightning, "plain loop": plain},
    }


def _overhead_markdown(result: dict) -> str:
    ratio = result["overhead"]["lightning_over_plain"]
    rows = [[loop, _range(stats, 2)] for loop, stats in result["overhead"]["ms_per_step"].items()]
    return (
        markdown_table(["Loop", "ms/step median [min-max] over windows"], rows)
        + f"\nTrainer.fit / plain loop, per pair of adjacent windows: median {ratio['median']:.4f} "
        f"(quartiles {ratio['q1']:.4f}-{ratio['q3']:.4f}, min-max {ratio['min']:.4f}-{ratio['max']:.4f}, "
        f"{ratio['n']} pairs): Lightning overhead {100 * (ratio['median'] - 1):+.2f} %\n"
    )


def _ladder_markdown(rows: list[dict]) -> str:
    cells = []
    for row in rows:
        ratio = row.get("ratio_to_previous")
        ratio_text = f"{ratio['median']:.2f}x [{ratio['min']:.2f}-{ratio['max']:.2f}]" if ratio else ""
        cells.append(_row(row["label"], row) + [ratio_text])
    return markdown_table(_columns() + ["x previous, per round median [min-max]"], cells)


def main(argv: list[str] | None = None) -> None:
    """Runs the benchmark, prints the Markdown table and writes JSON + Markdown under ``--output-dir``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser()
    args = parser.parse_args(argv)
    mode = next((name for name in ("ladder", "overhead", "inference") if getattr(args, name)), "benchmark")
    for key, value in DEFAULTS[mode].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if len(args.size) > 2:
        parser.error("--size takes HEIGHT [WIDTH]")
    image_size = (args.size[0], args.size[-1])
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    device = torch.device("cuda" if args.device != "cpu" and torch.cuda.is_available() else "cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        model_options = parse_options(
            args.model_option + ([f"backbone={args.backbone}"] if args.backbone else []),
            inspect.signature(get_model_class(args.model)), f"{args.model} model",
        )
        data_options = parse_options(args.data_option, inspect.signature(SegmentationDataModule), "data")
    except ValueError as error:
        parser.error(str(error))
    if (args.overhead or args.inference) and args.data_root:
        parser.error("--overhead and --inference run on synthetic data; leave out --data-root")
    if args.overhead and args.precision not in ("32-true", "bf16-mixed"):
        parser.error("--overhead: the plain loop has no gradient scaler; use precision 32-true or bf16-mixed")
    if args.data_root:
        root = Path(args.data_root)
        if args.make_data and not (root / "classes.txt").is_file():
            write_folder_dataset(root, args.make_data, tuple(args.data_size), args.classes)
        datamodule = FolderDataModule(str(root), **{"batch_size": args.batch, "crop_size": image_size, **data_options})
        data_text = f"image folder {root}, {data_options or 'default options'}"
    else:
        datamodule = SyntheticData(args.batch, image_size, args.classes)
        data_text = "synthetic: one random batch kept on the device"
    build = partial(create_model, args.model, datamodule.num_classes, **model_options)
    training = mode != "inference"
    with torch.device("meta"):  # training counts auxiliary heads; a batch of 2 for batch norms on pooled 1x1 maps
        flops = forward_flops(build(), image_size, batch=2, training=training) // 2
    setup = Setup(args.precision, args.channels_last, args.compile, args.cudnn_benchmark, args.optimizer)
    result = {
        "mode": mode,
        "command": "lit-seg benchmark " + shlex.join(argv),
        "time": datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": results.machine(device),
        "model": args.model,
        "model_options": model_options,
        "image_size": image_size,
        "batch": args.batch,
        "classes": datamodule.num_classes,
        "data": data_text,
        "forward_gflop_per_image": flops / 1e9,
        "forward_mode": "training" if training else "inference",
        "peak_tflops": args.peak_tflops,
        "timing": _timing_text(mode, args),
    }
    lightning_logger = logging.getLogger("lightning.pytorch")
    level = lightning_logger.level
    lightning_logger.setLevel(logging.WARNING)
    try:
        if mode == "overhead":
            result["overhead"] = overhead(setup, build, datamodule, device, args)
            body = _overhead_markdown(result)
        elif mode == "ladder":
            rungs, skipped = _ladder(device)
            rows = run_setups(rungs, build, datamodule, device, args, flops)
            result["rows"] = sorted(rows + skipped, key=lambda row: [label for label, _ in LADDER].index(row["label"]))
            body = _ladder_markdown(result["rows"])
        elif mode == "inference":
            module = build_module(build, datamodule.num_classes, setup)
            counters.clear()
            times = inference_windows(
                module, datamodule.batch(torch.device("cpu"))["image"], setup, device, args.warmup, args.windows, args.window
            )
            result["rows"] = [{
                "label": "inference", "setup": asdict(setup),
                **_figures(times, args.batch, args.window, flops, args.peak_tflops, peak_memory_mb(device), passes=1),
                **_compile_counts(),
            }]
            body = markdown_table(
                _columns(inference=True), [_row(_setup_text(setup, optimizer=False), result["rows"][0])]
            )
        else:
            result["rows"] = run_setups([("this setup", setup)], build, datamodule, device, args, flops)
            body = markdown_table(_columns(), [_row(_setup_text(setup), result["rows"][0])])
    finally:
        lightning_logger.setLevel(level)
    forward = f"{result['forward_mode']} forward: {flops / 1e9:.1f} GFLOP per image ({flops / 2e9:.1f} GMAC)"
    markdown = results.header(result) + forward + "\n\n" + body
    print(markdown)
    paths = results.write(result, markdown, Path(args.output_dir), args.model, mode)
    print("wrote " + " and ".join(str(path) for path in paths))


def _timing_text(mode: str, args: argparse.Namespace) -> str:
    if mode == "overhead":
        text = (f"{args.windows} pairs of windows of {args.window} steps (Trainer.fit, then the plain loop) "
                f"after {args.warmup} warm-up steps, in one fit")
    elif mode == "inference":
        text = f"{args.windows} windows of {args.window} batches after {args.warmup} warm-up batches"
    else:
        text = (f"{args.rounds} round(s) x {args.windows} window(s) of {args.window} steps after {args.warmup} "
                "warm-up steps per fit")
    if mode == "inference":
        forward, cost = "eval", "inference = 1x forward"
    else:
        forward, cost = "training", "training step = 3x forward"
    return (f"{text}; torch CPU threads: {torch.get_num_threads()}; "
            f"FLOPs: {forward}-mode forward on the meta device, {cost}")


def _setup_text(setup: Setup, optimizer: bool = True) -> str:
    parts = [setup.precision, "channels_last" if setup.channels_last else "NCHW", "compiled" if setup.compile else "eager"]
    if setup.cudnn_benchmark:
        parts.append("cudnn.benchmark")
    if optimizer:
        parts.append(f"{setup.optimizer} SGD")
    return ", ".join(parts)
