"""The evaluation report: scores from the confusion matrix as a terminal table, JSON, CSV, a plot and W&B."""

import csv
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.loggers import Logger, WandbLogger
from matplotlib.figure import Figure
from rich.table import Table

from lit_seg.evaluation.metrics import per_class_scores, summary_scores
from lit_seg.evaluation.tables import rich_table

# Annotate the cells of confusion-matrix plots up to this many classes.
_ANNOTATED_CLASSES = 25
# The per-class scores of the terminal table, in percent.
_SHOWN = ("IoU", "accuracy", "precision")


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Calls ``write`` on a temporary file next to ``path``, then renames it to ``path``: a reader
    or a crash mid-way never sees a half-written file."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _finite_or_none(value: float) -> float | None:
    return None if math.isnan(value) else value


def _percent(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.2f}"


@dataclass
class EvaluationReport:
    """The scores of one evaluation, as defined in PAPERS.md ("Metrics"), from its confusion matrix.

    Attributes:
        stage: "val" or "test"; names the files and W&B keys.
        class_names: one name per class.
        confusion: ``[C, C]`` pixel counts over the whole set, rows ground truth, columns prediction.
        boundary_f1: SegNet's boundary F1 score, or None when it was not computed.
    """

    stage: str
    class_names: Sequence[str]
    confusion: np.ndarray
    boundary_f1: float | None = None

    def per_class(self) -> dict[str, np.ndarray]:
        """IoU, accuracy (recall), precision and pixel counts per class; NaN where undefined."""
        return {name: values.numpy() for name, values in per_class_scores(torch.from_numpy(self.confusion)).items()}

    def summary(self) -> dict[str, float]:
        """mIoU (over classes in ground truth or predictions), pixel accuracy, class-average
        accuracy, frequency-weighted IoU and, if computed, boundary F1 (``BF``)."""
        summary = {name: value.item() for name, value in summary_scores(torch.from_numpy(self.confusion)).items()}
        if self.boundary_f1 is not None:
            summary["BF"] = self.boundary_f1
        return summary

    def tables(self) -> tuple[Table, Table]:
        """A rich table of the summary and one of the per-class scores."""
        summary, scores = self.summary(), self.per_class()
        rows = [
            [name, *(_percent(scores[key][i]) for key in _SHOWN), f"{int(scores['ground_truth_pixels'][i]):,}"]
            for i, name in enumerate(self.class_names)
        ]
        return (
            rich_table(f"{self.stage} scores (%)", list(summary), [[f"{100 * v:.2f}" for v in summary.values()]], 0),
            rich_table(f"{self.stage} per class (%)", ["class", *_SHOWN, "pixels"], rows),
        )

    def as_dict(self) -> dict:
        """The report as JSON-ready data (undefined scores as null)."""
        scores = self.per_class()
        return {
            "stage": self.stage,
            "summary": {name: _finite_or_none(value) for name, value in self.summary().items()},
            "per_class": {
                name: {key: _finite_or_none(float(values[i])) for key, values in scores.items()}
                for i, name in enumerate(self.class_names)
            },
            "class_names": list(self.class_names),
            "confusion_matrix": self.confusion.astype(np.int64).tolist(),
        }

    def plot(self) -> Figure:
        """The confusion matrix normalised per ground-truth class (rows sum to 1)."""
        count = len(self.class_names)
        rows = self.confusion.astype(np.float64)
        rows = rows / np.maximum(rows.sum(1, keepdims=True), 1)
        size = min(4 + 0.4 * count, 40)
        figure = Figure(figsize=(size, size * 0.9), layout="constrained")
        axes = figure.add_subplot()
        image = axes.imshow(rows, cmap="Blues", vmin=0, vmax=1)
        figure.colorbar(image, ax=axes, shrink=0.8, label="share of the ground-truth class")
        axes.set_xticks(range(count), self.class_names, rotation=90, fontsize=8)
        axes.set_yticks(range(count), self.class_names, fontsize=8)
        axes.set_xlabel("prediction")
        axes.set_ylabel("ground truth")
        axes.set_title(f"{self.stage} confusion matrix (mIoU {100 * self.summary()['mIoU']:.2f})")
        if count <= _ANNOTATED_CLASSES:
            for (row, column), value in np.ndenumerate(rows):
                if value >= 0.005:
                    colour = "white" if value > 0.5 else "black"
                    axes.text(column, row, f"{100 * value:.0f}", ha="center", va="center", fontsize=7, color=colour)
        return figure

    def write(self, directory: Path) -> dict[str, Path]:
        """Writes ``<stage>_report.json``, ``<stage>_per_class.csv`` and ``<stage>_confusion.png``
        into ``directory``; returns their paths by kind ("json", "csv", "plot")."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = {
            "json": directory / f"{self.stage}_report.json",
            "csv": directory / f"{self.stage}_per_class.csv",
            "plot": directory / f"{self.stage}_confusion.png",
        }
        write_atomically(paths["json"], lambda path: path.write_text(json.dumps(self.as_dict(), indent=2)))
        write_atomically(paths["csv"], self._write_csv)
        write_atomically(paths["plot"], lambda path: self.plot().savefig(path, format="png", dpi=100))
        return paths

    def _write_csv(self, path: Path) -> None:
        scores = self.per_class()
        with path.open("w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["class", *scores])
            for i, name in enumerate(self.class_names):
                writer.writerow([name, *(("" if math.isnan(v[i]) else f"{v[i]:.6g}") for v in scores.values())])

    def log_to_wandb(self, loggers: Sequence[Logger], plot: Path) -> None:
        """Logs the per-class table and the confusion-matrix plot to every W&B logger."""
        scores = self.per_class()
        columns = ["class", *scores]
        rows = [
            [name, *(_finite_or_none(float(values[i])) for values in scores.values())]
            for i, name in enumerate(self.class_names)
        ]
        for logger in loggers:
            if isinstance(logger, WandbLogger):
                logger.log_table(key=f"{self.stage}/per_class", columns=columns, data=rows)
                logger.log_image(key=f"{self.stage}/confusion_matrix", images=[str(plot)])
