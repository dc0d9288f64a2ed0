"""``lit-seg compare``: validation metrics, throughput and wall time of runs, as tables and plots."""

import argparse
import csv
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from jsonargparse import dict_to_namespace

from lit_seg.commands.cli import experiment_tags
from lit_seg.evaluation.tables import markdown_table, rich_table
from lit_seg.training.loggers import has_wandb_api_key

MIOU, PIXEL_ACC, CLASS_IOU = "val/mIoU", "val/pixel_acc", "val/IoU/"
WALL, THROUGHPUT = "time/wall_s", "time/train_images_per_s"


class RunError(ValueError):
    """A run folder that cannot be read: missing, without metrics, or corrupt."""


@dataclass
class Run:
    """One training run: a label for it and its validation rows (``step`` plus the logged metrics),
    in step order.

    Args:
        name: the run's name (its folder, or its W&B name).
        model: the network, e.g. ``"pspnet-resnet50"``.
        dataset: the dataset, e.g. ``"camvid"``.
        rows: one dict per validation, with ``"step"`` (optimizer steps done) and the metrics logged with it.
        classes: the class names in the dataset's order, where known.
    """

    name: str
    model: str
    dataset: str
    rows: list[dict[str, float]]
    classes: tuple[str, ...] = ()

    @property
    def final(self) -> dict[str, float]:
        return self.rows[-1]

    @property
    def best(self) -> dict[str, float]:
        return max(self.rows, key=lambda row: row[MIOU])

    @property
    def class_names(self) -> list[str]:
        logged = [key.removeprefix(CLASS_IOU) for key in self.final if key.startswith(CLASS_IOU)]
        return [name for name in self.classes if name in logged] + [name for name in logged if name not in self.classes]


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _steps_done(logged_step: float) -> float:
    """Lightning logs a validation under the index of the training batch before it, one less than the
    optimizer steps done (``trainer.global_step``)."""
    return logged_step + 1


def _csv_rows(path: Path) -> list[dict[str, float]]:
    """The rows of a CSVLogger ``metrics.csv`` that hold validation metrics, as numbers.

    Raises:
        RunError: the file has no ``step`` column, a row of another width, or a value that is not a number.
    """
    rows = []
    with path.open(newline="") as file:
        reader = csv.reader(file)
        header = next(reader, [])
        if "step" not in header:
            raise RunError(f"{path}: no 'step' column; not a metrics file of Lightning's CSVLogger")
        for fields in reader:
            if len(fields) != len(header):
                raise RunError(f"{path}: line {reader.line_num} has {len(fields)} fields, the header {len(header)}")
            values = {key: _number(value) for key, value in zip(header, fields) if value != ""}
            if any(value is None for value in values.values()):
                raise RunError(f"{path}: line {reader.line_num} holds a value that is not a number")
            if MIOU in values:
                rows.append(values | {"step": _steps_done(values["step"])})
    return rows


def _experiment(config: dict) -> tuple[str, str]:
    """The network (``<model>[-<backbone>]``) and dataset of a saved ``fit`` config."""
    model, backbone, dataset = experiment_tags(dict_to_namespace(config))
    return f"{model}-{backbone}" if backbone else model, dataset


class _HparamsLoader(yaml.SafeLoader):
    """Reads Lightning's ``hparams.yaml`` without executing anything: Python tuples become lists,
    other Python objects None."""


_HparamsLoader.add_constructor("tag:yaml.org,2002:python/tuple", lambda loader, node: loader.construct_sequence(node))
_HparamsLoader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)


def _class_order(hparams: Path) -> tuple[str, ...]:
    """The ``class_names`` the module saved in ``hparams.yaml``, or none where unreadable."""
    try:
        return tuple(yaml.load(hparams.read_text(), Loader=_HparamsLoader).get("class_names") or ())
    except (OSError, yaml.YAMLError, AttributeError):
        return ()


def read_local_run(folder: Path) -> Run:
    """Reads a run folder (a fit's ``trainer.default_root_dir``): ``version_*/metrics.csv`` of every
    session (a resumed run has several; a later one wins on a repeated step) and the config of the
    first.

    Raises:
        RunError: the folder is missing, holds no metrics, or its metrics are corrupt.
    """
    if not folder.is_dir():
        raise RunError("no such folder")
    versions = sorted(folder.glob("version_*/metrics.csv"), key=lambda path: int(path.parent.name.split("_")[-1]))
    if not versions:
        raise RunError("no version_*/metrics.csv in it (not the folder of a lit-seg fit?)")
    by_step: dict[float, dict[str, float]] = {}
    for path in versions:
        try:
            by_step.update((row["step"], row) for row in _csv_rows(path))
        except (csv.Error, UnicodeDecodeError) as error:
            raise RunError(f"{path}: {error}") from error
    if not by_step:
        raise RunError(f"no validation results ({MIOU}) logged yet")
    config_path = versions[0].parent / "config.yaml"
    model = dataset = "?"
    if config_path.is_file():
        try:
            model, dataset = _experiment(yaml.safe_load(config_path.read_text()))
        except (yaml.YAMLError, AttributeError, KeyError, TypeError) as error:
            raise RunError(f"{config_path}: unreadable config ({error})") from error
    classes = _class_order(versions[0].parent / "hparams.yaml")
    return Run(folder.name, model, dataset, [by_step[step] for step in sorted(by_step)], classes)


def read_wandb_runs(path: str, filters: dict | None = None) -> list[Run]:
    """Runs of the W&B project ``path`` (``entity/project``) matching ``filters`` (W&B's MongoDB-style
    run filters, e.g. ``{"group": "pspnet_camvid"}``); needs a configured API key and the network.

    Raises:
        RunError: no API key is configured.
    """
    if not has_wandb_api_key():
        raise RunError("W&B runs need an API key (WANDB_API_KEY or `wandb login`); offline, pass local run folders")
    import wandb

    runs = []
    for remote in wandb.Api().runs(path, filters=filters or {}):
        rows = []
        for row in remote.scan_history():
            if row.get(MIOU) is None:
                continue
            values = {key: float(value) for key, value in row.items() if isinstance(value, int | float)}
            logged_step = values.get("trainer/global_step")  # absent from runs not logged by Lightning
            values["step"] = values.get("_step", 0.0) if logged_step is None else _steps_done(logged_step)
            values.setdefault(WALL, values.get("_runtime", math.nan))
            rows.append(values)
        if rows:
            try:
                model, dataset = _experiment(remote.config)
            except (AttributeError, KeyError, TypeError):  # not logged by lit-seg
                model, dataset = remote.group or "?", "?"
            runs.append(Run(remote.name, model, dataset, rows))
        else:
            print(f"lit-seg compare: skipping W&B run {remote.name}: no {MIOU} logged", file=sys.stderr)
    return runs


def _percent(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{100 * value:.2f}"


def _duration(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "-"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


def summary_rows(runs: Sequence[Run]) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the summary table (percentages for mIoU and accuracy)."""
    header = ["Run", "Model", "Dataset", "Steps", "Final mIoU", "Best mIoU (step)", "Pixel acc", "Images/s", "Wall time"]
    rows = []
    for run in runs:
        final, best = run.final, run.best
        throughput = final.get(THROUGHPUT)
        rows.append([
            run.name, run.model, run.dataset, f"{final['step']:.0f}", _percent(final[MIOU]),
            f"{_percent(best[MIOU])} ({best['step']:.0f})", _percent(final.get(PIXEL_ACC)),
            "-" if throughput is None else f"{throughput:.1f}", _duration(final.get(WALL)),
        ])
    return header, rows


def class_rows(runs: Sequence[Run]) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the per-class IoU table (final validation, one column per run)."""
    names = list(dict.fromkeys(name for run in runs for name in run.class_names))
    return ["Class", *(run.name for run in runs)], [
        [name, *(_percent(run.final.get(CLASS_IOU + name)) for run in runs)] for name in names
    ]


def write_plots(runs: Sequence[Run], folder: Path) -> list[Path]:
    """Writes ``miou_vs_step.png``, ``miou_vs_time.png`` and ``miou_vs_throughput.png`` to ``folder``.

    Returns:
        The paths written (the time and throughput plots only where runs logged timing).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    folder.mkdir(parents=True, exist_ok=True)
    written = []

    def save(figure: "plt.Figure", axes: "plt.Axes", name: str, legend: bool = True) -> None:
        axes.grid(alpha=0.3)
        if legend:
            axes.legend(fontsize="small")
        figure.tight_layout()
        figure.savefig(folder / name, dpi=120)
        plt.close(figure)
        written.append(folder / name)

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for run in runs:
        steps, mious = [row["step"] for row in run.rows], [100 * row[MIOU] for row in run.rows]
        axes.plot(steps, mious, marker="o", ms=3, label=run.name)
    axes.set(xlabel="training step", ylabel="val mIoU (%)", title="Validation mIoU by training step")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    save(figure, axes, "miou_vs_step.png")

    timed = [run for run in runs if any(not math.isnan(row.get(WALL, math.nan)) for row in run.rows)]
    if timed:
        longest = max(row.get(WALL, 0.0) for run in timed for row in run.rows)
        unit, scale = ("hours", 3600) if longest > 3 * 3600 else ("minutes", 60) if longest > 120 else ("seconds", 1)
        figure, axes = plt.subplots(figsize=(7, 4.5))
        for run in timed:
            points = [(row[WALL] / scale, 100 * row[MIOU]) for row in run.rows if not math.isnan(row.get(WALL, math.nan))]
            axes.plot(*zip(*points), marker="o", ms=3, label=run.name)
        axes.set(xlabel=f"wall time ({unit})", ylabel="val mIoU (%)", title="Validation mIoU by wall time")
        save(figure, axes, "miou_vs_time.png")

    measured = [run for run in runs if run.final.get(THROUGHPUT) is not None]
    if measured:
        figure, axes = plt.subplots(figsize=(7, 4.5))
        for run in measured:
            axes.scatter(run.final[THROUGHPUT], 100 * run.best[MIOU], s=40, label=run.name)
            label = run.name if run.name == run.model else f"{run.name} ({run.model})"
            axes.annotate(label, (run.final[THROUGHPUT], 100 * run.best[MIOU]),
                          fontsize="small", xytext=(5, 4), textcoords="offset points")
        axes.set(xlabel="training throughput (images/s)", ylabel="best val mIoU (%)", title="Accuracy against speed")
        axes.margins(x=0.25, y=0.15)  # room for the labels
        save(figure, axes, "miou_vs_throughput.png", legend=False)
    return written


def main(argv: list[str] | None = None) -> None:
    """``lit-seg compare``: tables (rich, or Markdown) and plots of several runs."""
    parser = argparse.ArgumentParser(prog="lit-seg compare", description=main.__doc__)
    parser.add_argument("runs", nargs="*", type=Path, help="run folders (the trainer.default_root_dir of each fit)")
    parser.add_argument("--wandb", metavar="ENTITY/PROJECT", help="compare the runs of this W&B project (online)")
    parser.add_argument("--filters", type=json.loads, default=None,
                        help='W&B run filters as JSON, e.g. \'{"group": "pspnet_camvid"}\'')
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables instead of rich ones")
    parser.add_argument("--plots", type=Path, default=Path("runs/compare"), help="folder for the PNG plots")
    args = parser.parse_args(argv)
    if not args.runs and not args.wandb:
        parser.error("give run folders, or --wandb ENTITY/PROJECT")

    runs = []
    for folder in args.runs:
        try:
            runs.append(read_local_run(folder))
        except RunError as error:
            print(f"lit-seg compare: skipping {folder}: {error}", file=sys.stderr)
    if args.wandb:
        try:
            runs += read_wandb_runs(args.wandb, args.filters)
        except RunError as error:
            raise SystemExit(f"lit-seg compare: {error}") from None
    if not runs:
        raise SystemExit("lit-seg compare: no readable runs")

    tables = [("Validation (final = last validation; mIoU and accuracy in %)", *summary_rows(runs), 3),
              ("Per-class IoU (%) at the last validation", *class_rows(runs), 1)]
    if args.markdown:
        print("\n".join(markdown_table(header, rows, text) for _, header, rows, text in tables), end="")
    else:
        from rich.console import Console

        console = Console()
        for title, header, rows, text in tables:
            console.print(rich_table(title, header, rows, text))
    for path in write_plots(runs, args.plots):
        print(f"plot: {path}")
