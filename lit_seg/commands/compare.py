"""``lit-seg compare``: what differed between runs (their configs) and what it did (validation metrics,
loss, learning rate, throughput, wall time), as tables and plots; evaluations of checkpoints apart."""

import argparse
import csv
import json
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jsonargparse import dict_to_namespace

from lit_seg.commands.run_names import EVALUATIONS, experiment_tags
from lit_seg.evaluation.tables import markdown_table, rich_table
from lit_seg.training.checkpoints import checkpoint_folder
from lit_seg.training.loggers import has_wandb_api_key, steps_done

MIOU, PIXEL_ACC, CLASS_ACC, BF, CLASS_IOU = "val/mIoU", "val/pixel_acc", "val/class_acc", "val/BF", "val/IoU/"
LOSS, LR, VAL_LOSS = "train/loss", "train/lr", "val/loss"
WALL, THROUGHPUT = "time/wall_s", "time/train_images_per_s"
DEFAULT_PLOTS = Path("runs/compare")

# Config keys never shown as differences: those that name a run rather than say how it was made, and
# the dataset's facts that the logged config adds to the model's options (data.* says them).
NOT_COMPARED = (
    "subcommand", "ckpt_path", "trainer.default_root_dir", "trainer.logger", "checkpoint.dirpath",
    "last_checkpoint.dirpath", "wandb.name", "wandb.id", "model.num_classes", "model.class_names",
    "model.ignore_index",
)


class RunError(ValueError):
    """A run folder that cannot be read: missing, without metrics, or corrupt."""


@dataclass
class Evaluation:
    """A ``validate`` or ``test`` of a checkpoint.

    Args:
        run: the name of the run it belongs to (local) or its own W&B run's name.
        kind: "validate" or "test".
        step: the training step of the checkpoint evaluated (NaN where unknown).
        metrics: the metrics logged, by name, without their ``val/`` or ``test/`` prefix.
    """

    run: str
    kind: str
    step: float
    metrics: dict[str, float]


@dataclass
class Run:
    """One training run: a label for it, its validation rows and training rows (``step`` plus the values
    logged with it, in step order), its config and the evaluations of its checkpoints.

    Args:
        name: the run's name (its folder, or its W&B name).
        model: the network, e.g. ``"pspnet-resnet50"``.
        dataset: the dataset, e.g. ``"camvid"``.
        rows: one dict per validation during training, with ``"step"`` (optimizer steps done) and the
            metrics logged with it.
        classes: the class names in the dataset's order, where known.
        training: one dict per logged training step, with ``"step"``, and ``train/loss`` and ``train/lr``.
        config: the run's config as flat ``a.b.c`` keys (``init_args`` levels left out).
        evaluations: the ``validate`` and ``test`` runs of its checkpoints.
    """

    name: str
    model: str
    dataset: str
    rows: list[dict[str, float]]
    classes: tuple[str, ...] = ()
    training: list[dict[str, float]] = field(default_factory=list)
    config: dict[str, str] = field(default_factory=dict)
    evaluations: list[Evaluation] = field(default_factory=list)

    @property
    def final(self) -> dict[str, float]:
        return self.rows[-1]

    @property
    def best(self) -> dict[str, float]:
        return max(self.rows, key=lambda row: row[MIOU])

    @property
    def steps(self) -> float:
        """Optimizer steps trained: the last step that logged training values or a validation."""
        return max(row["step"] for row in [*self.rows, *self.training])

    @property
    def class_names(self) -> list[str]:
        logged = [key.removeprefix(CLASS_IOU) for key in self.final if key.startswith(CLASS_IOU)]
        return [name for name in self.classes if name in logged] + [name for name in logged if name not in self.classes]


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _csv_rows(path: Path) -> list[dict[str, float]]:
    """The rows of a CSVLogger ``metrics.csv`` as numbers, with ``step`` as optimizer steps done.

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
            rows.append(values | {"step": steps_done(values["step"])})
    return rows


def _class_text(value: Any) -> str:
    """A config value as text; a ``class_path`` with its ``init_args`` as ``Name(a=1)``."""
    if isinstance(value, Mapping) and "class_path" in value:
        options = ", ".join(f"{key}={option}" for key, option in (value.get("init_args") or {}).items())
        return f"{str(value['class_path']).rsplit('.', 1)[-1]}({options})"
    return json.dumps(value, default=str) if isinstance(value, Mapping | list | tuple) else str(value)


def flat_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """A config as ``{"model.net.width": "8", ...}``: nested keys joined by dots, the ``init_args``
    level left out (the form of command-line options), a ``class_path`` shown by its class name and
    lists item by item (``[EpochSeed(), RunClock()]``)."""
    flat = {}
    for key, value in config.items():
        if key == "init_args" and isinstance(value, Mapping):
            flat |= flat_config(value, prefix)
            continue
        name = prefix[:-1] if key == "class_path" else f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat |= flat_config(value, f"{name}.")
        elif key == "class_path" and isinstance(value, str):
            flat[name] = value.rsplit(".", 1)[-1]
        elif isinstance(value, list | tuple):
            flat[name] = "[" + ", ".join(_class_text(item) for item in value) + "]"
        else:
            flat[name] = str(value)
    return flat


def config_differences(runs: Sequence[Run]) -> list[str]:
    """The config keys whose values differ between ``runs`` (or that some runs lack), in config order."""
    keys = [key for key in dict.fromkeys(key for run in runs for key in run.config)
            if not any(key == name or key.startswith(name + ".") for name in NOT_COMPARED)]
    return [key for key in keys if len({run.config.get(key) for run in runs}) > 1]


def _experiment(config: Mapping[str, Any]) -> tuple[str, str]:
    """The network (``<model>[-<backbone>]``) and dataset of a saved config."""
    model, backbone, dataset = experiment_tags(dict_to_namespace(dict(config)))
    return f"{model}-{backbone}" if backbone else model, dataset


def _read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping, or an empty one where the file is missing or not plain YAML (Lightning's
    ``hparams.yaml`` of older runs holds Python tags)."""
    try:
        loaded = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def session_kind(record: Mapping[str, Any], rows: Iterable[Mapping[str, float]]) -> str:
    """"fit", "validate" or "test": as the session's logged config says, else from its metrics (older runs)."""
    if record.get("subcommand"):
        return record["subcommand"]
    keys = {key for row in rows for key in row}
    if LOSS in keys:
        return "fit"
    return "test" if any(key.startswith("test/") for key in keys) else "validate"


def _evaluation(run: str, kind: str, rows: Sequence[Mapping[str, float]]) -> Evaluation | None:
    """The evaluation of one ``validate`` or ``test`` session: its last row of ``val/`` or ``test/`` metrics."""
    prefix = "val/" if kind == "validate" else "test/"
    scored = [row for row in rows if any(key.startswith(prefix) for key in row)]
    if not scored:
        return None
    row = scored[-1]
    metrics = {key.removeprefix(prefix): value for key, value in row.items() if key.startswith(prefix)}
    return Evaluation(run, kind, row["step"], metrics)


def read_local_run(folder: Path) -> Run:
    """Reads a run folder (a fit's ``trainer.default_root_dir``): every session's
    ``version_*/metrics.csv``, the sessions of ``fit`` as one run (a resumed run has several; a later
    one wins on a repeated step), those of ``validate`` and ``test`` as evaluations; the config as
    logged by the first fit session (its ``hparams.yaml``, else its ``config.yaml``).

    Raises:
        RunError: the folder is missing, holds no validation of a fit, or its metrics are corrupt.
    """
    if not folder.is_dir():
        raise RunError("no such folder")
    versions = sorted(folder.glob("version_*/metrics.csv"), key=lambda path: int(path.parent.name.split("_")[-1]))
    if not versions:
        raise RunError("no version_*/metrics.csv in it (not the folder of a lit-seg fit?)")
    validations: dict[float, dict[str, float]] = {}
    training: dict[float, dict[str, float]] = {}
    evaluations, config = [], {}
    for path in versions:
        try:
            rows = _csv_rows(path)
        except (csv.Error, UnicodeDecodeError) as error:
            raise RunError(f"{path}: {error}") from error
        record = _read_yaml(path.parent / "hparams.yaml")
        kind = session_kind(record, rows)
        if kind in EVALUATIONS:
            evaluation = _evaluation(folder.name, kind, rows)
            evaluations += [evaluation] if evaluation else []
            continue
        config = config or record or _read_yaml(path.parent / "config.yaml")
        validations |= {row["step"]: row for row in rows if MIOU in row}
        training |= {row["step"]: row for row in rows if LOSS in row or LR in row}
    if not validations:
        raise RunError(f"no validation results ({MIOU}) of a fit logged yet")
    model = dataset = "?"
    if config:
        try:
            model, dataset = _experiment(config)
        except (AttributeError, KeyError, TypeError) as error:
            raise RunError(f"{folder}: unreadable config ({error})") from error
    classes = tuple((config.get("model") or {}).get("class_names") or ())
    rows = [validations[step] for step in sorted(validations)]
    return Run(folder.name, model, dataset, rows, classes, [training[step] for step in sorted(training)],
               flat_config(config), evaluations)


def _history_rows(history: Iterable[Mapping[str, Any]]) -> list[dict[str, float]]:
    """W&B history rows as numbers, with ``step`` as optimizer steps done (from Lightning's
    ``trainer/global_step``; W&B's own ``_step`` for runs not logged by Lightning)."""
    rows = []
    for row in history:
        values = {key: float(value) for key, value in row.items() if isinstance(value, int | float)}
        logged = values.get("trainer/global_step")
        values["step"] = values.get("_step", 0.0) if logged is None else steps_done(logged)
        rows.append(values)
    return rows


def read_wandb_runs(path: str, filters: dict | None = None) -> list[Run]:
    """Runs of the W&B project ``path`` (``entity/project``) matching ``filters`` (W&B's MongoDB-style
    run filters, e.g. ``{"group": "pspnet-resnet50"}``), read as local runs are: the training runs
    with their configs, and the evaluation runs (``job_type`` "eval") as evaluations of the training
    run of their group. Needs a configured API key and the network.

    Raises:
        RunError: no API key is configured.
    """
    if not has_wandb_api_key():
        raise RunError("W&B runs need an API key (WANDB_API_KEY or `wandb login`); offline, pass local run folders")
    import wandb

    runs, evaluations = [], []
    for remote in wandb.Api().runs(path, filters=filters or {}):
        rows = _history_rows(remote.scan_history())
        config = dict(remote.config)
        if remote.job_type == "eval" or config.get("subcommand") in EVALUATIONS:
            kind = config.get("subcommand") if config.get("subcommand") in EVALUATIONS else session_kind({}, rows)
            evaluation = _evaluation(remote.name, kind, rows)
            if evaluation:
                evaluations.append((remote.group, _checkpoint_folder(config.get("ckpt_path")), evaluation))
            continue
        validations = [row for row in rows if row.get(MIOU) is not None]
        if not validations:
            print(f"lit-seg compare: skipping W&B run {remote.name}: no {MIOU} logged", file=sys.stderr)
            continue
        for row in validations:
            row.setdefault(WALL, row.get("_runtime", math.nan))
        try:
            model, dataset = _experiment(config)
        except (AttributeError, KeyError, TypeError):  # not logged by lit-seg
            model, dataset = remote.group or "?", "?"
        classes = tuple((config.get("model") or {}).get("class_names") or ())
        training = [row for row in rows if LOSS in row or LR in row]
        run = Run(remote.name, model, dataset, validations, classes, training, flat_config(config))
        root = (config.get("trainer") or {}).get("default_root_dir")
        runs.append((remote.group, checkpoint_folder(root) if root else None, run))
    for group, folder, evaluation in evaluations:
        # The training run whose checkpoint folder holds the evaluated checkpoint, else the group's last.
        owners = [run for run_group, _, run in runs if run_group == group]
        owners = [run for _, run_folder, run in runs if folder and run_folder == folder] or owners[-1:]
        for run in owners[:1]:
            run.evaluations.append(evaluation)
    return [run for _, _, run in runs]


def _checkpoint_folder(path: str | None) -> str | None:
    """The folder of the checkpoint file ``path`` (None for none)."""
    return str(Path(path).parent) if path else None


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
            run.name, run.model, run.dataset, f"{run.steps:.0f}", _percent(final[MIOU]),
            f"{_percent(best[MIOU])} ({best['step']:.0f})", _percent(final.get(PIXEL_ACC)),
            "-" if throughput is None else f"{throughput:.1f}", _duration(final.get(WALL)),
        ])
    return header, rows


def evaluation_rows(runs: Sequence[Run]) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the evaluations table: each ``validate`` and ``test`` of a checkpoint."""
    header = ["Run", "Evaluation", "Checkpoint step", "mIoU", "Pixel acc", "Class acc", "BF"]
    rows = [
        [evaluation.run, evaluation.kind, "-" if math.isnan(evaluation.step) else f"{evaluation.step:.0f}",
         *(_percent(evaluation.metrics.get(name)) for name in ("mIoU", "pixel_acc", "class_acc", "BF"))]
        for run in runs for evaluation in run.evaluations
    ]
    return header, rows


def difference_rows(runs: Sequence[Run]) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the config table: one column per config value that differs between runs."""
    keys = config_differences(runs)
    return ["Run", *keys], [[run.name, *(run.config.get(key, "-") for key in keys)] for run in runs]


def class_rows(runs: Sequence[Run]) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the per-class IoU table (final validation, one column per run)."""
    names = list(dict.fromkeys(name for run in runs for name in run.class_names))
    return ["Class", *(run.name for run in runs)], [
        [name, *(_percent(run.final.get(CLASS_IOU + name)) for run in runs)] for name in names
    ]


def write_plots(runs: Sequence[Run], folder: Path) -> list[Path]:
    """Writes ``curves_vs_step.png`` (validation mIoU, evaluations marked; training and validation
    loss; learning rate, side by side), ``miou_vs_time.png`` and ``miou_vs_throughput.png`` to ``folder``.

    Returns:
        The paths written (the time and throughput plots only where runs logged timing).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    folder.mkdir(parents=True, exist_ok=True)
    written = []

    def save(figure: "plt.Figure", name: str) -> None:
        figure.tight_layout()
        figure.savefig(folder / name, dpi=120)
        plt.close(figure)
        written.append(folder / name)

    figure, (miou_axes, loss_axes, lr_axes) = plt.subplots(1, 3, figsize=(16, 4.5))
    for index, run in enumerate(runs):
        colour = f"C{index % 10}"
        miou_axes.plot([row["step"] for row in run.rows], [100 * row[MIOU] for row in run.rows],
                       marker="o", ms=3, color=colour, label=run.name)
        evaluated = [evaluation for evaluation in run.evaluations if "mIoU" in evaluation.metrics]
        if evaluated:
            miou_axes.scatter([evaluation.step for evaluation in evaluated],
                              [100 * evaluation.metrics["mIoU"] for evaluation in evaluated],
                              marker="x", s=50, color=colour, label=f"{run.name} (evaluations)")
        for key, style in ((LOSS, "-"), (VAL_LOSS, "--")):
            points = [(row["step"], row[key]) for row in [*run.training, *run.rows] if key in row]
            if points:
                loss_axes.plot(*zip(*sorted(points)), style, color=colour, label=f"{run.name} {key}")
        points = [(row["step"], row[LR]) for row in run.training if LR in row]
        if points:
            lr_axes.plot(*zip(*points), color=colour, label=run.name)
    miou_axes.set(xlabel="training step", ylabel="val mIoU (%)", title="Validation mIoU")
    loss_axes.set(xlabel="training step", ylabel="loss", title="Loss (training solid, validation dashed)")
    lr_axes.set(xlabel="training step", ylabel="learning rate", title="Learning rate")
    for axes in (miou_axes, loss_axes, lr_axes):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        if axes.has_data():
            axes.legend(fontsize="small")
    save(figure, "curves_vs_step.png")

    timed = [run for run in runs if any(not math.isnan(row.get(WALL, math.nan)) for row in run.rows)]
    if timed:
        longest = max(row.get(WALL, 0.0) for run in timed for row in run.rows)
        unit, scale = ("hours", 3600) if longest > 3 * 3600 else ("minutes", 60) if longest > 120 else ("seconds", 1)
        figure, axes = plt.subplots(figsize=(7, 4.5))
        for run in timed:
            points = [(row[WALL] / scale, 100 * row[MIOU]) for row in run.rows if not math.isnan(row.get(WALL, math.nan))]
            axes.plot(*zip(*points), marker="o", ms=3, label=run.name)
        axes.set(xlabel=f"wall time ({unit})", ylabel="val mIoU (%)", title="Validation mIoU by wall time")
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
        save(figure, "miou_vs_time.png")

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
        axes.grid(alpha=0.3)
        save(figure, "miou_vs_throughput.png")
    return written


def main(argv: list[str] | None = None) -> None:
    """``lit-seg compare``: tables (rich, or Markdown) and plots of several runs."""
    parser = argparse.ArgumentParser(
        prog="lit-seg compare",
        description="Tables of runs (validation during training, evaluations of checkpoints, the config values "
        "that differ, per-class IoU) and plots of their curves (mIoU, loss and learning rate by step; mIoU by "
        "wall time and against throughput).",
    )
    parser.add_argument("runs", nargs="*", type=Path, help="run folders (the trainer.default_root_dir of each fit)")
    parser.add_argument("--wandb", metavar="ENTITY/PROJECT", help="compare the runs of this W&B project (online)")
    parser.add_argument("--filters", type=json.loads, default=None,
                        help='W&B run filters as JSON, e.g. \'{"group": "pspnet-resnet50"}\'')
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables instead of rich ones")
    parser.add_argument("--plots", type=Path, default=DEFAULT_PLOTS, metavar="FOLDER",
                        help=f"folder the PNG plots are written to (default: {DEFAULT_PLOTS})")
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

    tables = [("Validation during training (final = last validation; mIoU and accuracy in %)", *summary_rows(runs), 3)]
    header, rows = evaluation_rows(runs)
    if rows:
        tables.append(("Evaluations of checkpoints (validate, test; in %)", header, rows, 3))
    header, rows = difference_rows(runs)
    if len(header) > 1:
        tables.append(("Config values that differ", header, rows, len(header)))
    tables.append(("Per-class IoU (%) at the last validation", *class_rows(runs), 1))
    if args.markdown:
        print("\n".join(markdown_table(header, rows, text) for _, header, rows, text in tables), end="")
    else:
        from rich.console import Console

        console = Console()
        for title, header, rows, text in tables:
            console.print(rich_table(title, header, rows, text))
    for path in write_plots(runs, args.plots):
        print(f"plot: {path}")
