"""The evaluation report: its scores, the files it writes and what it sends to W&B."""

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning import Trainer
from PIL import Image
from rich.console import Console

from lit_seg.evaluation.report import EvaluationReport
from lit_seg.evaluation.report_writer import EvaluationReportWriter
from lit_seg.training.loggers import WandbLogger
from lit_seg.training.module import SegmentationModule
from tests.helpers.arrays import ArrayDataModule, one_hot_predictions
from tests.helpers.nets import IdentityNet

NUM_CLASSES = 4


def test_scores_of_a_hand_made_confusion_matrix() -> None:
    confusion = np.array([[8, 2, 0, 0], [1, 3, 0, 2], [0, 0, 0, 0], [0, 0, 0, 0]])  # class 2 absent, 3 predicted only
    report = EvaluationReport("test", ["a", "b", "c", "d"], confusion, boundary_f1=0.5)
    scores = report.per_class()
    np.testing.assert_allclose(scores["IoU"], [8 / 11, 3 / 8, np.nan, 0.0])
    np.testing.assert_allclose(scores["accuracy"], [8 / 10, 3 / 6, np.nan, np.nan])
    summary = report.summary()
    assert summary["mIoU"] == pytest.approx((8 / 11 + 3 / 8 + 0) / 3)
    assert summary["pixel_acc"] == pytest.approx(11 / 16)
    assert summary["class_acc"] == pytest.approx((0.8 + 0.5) / 2)
    assert summary["fwIoU"] == pytest.approx(10 / 16 * 8 / 11 + 6 / 16 * 3 / 8)
    assert summary["BF"] == 0.5
    data = report.as_dict()
    assert data["per_class"]["c"]["IoU"] is None and data["confusion_matrix"][1] == [1, 3, 0, 2]


def test_terminal_tables_in_percent_with_dashes_where_undefined() -> None:
    confusion = np.array([[8, 2, 0, 0], [1, 3, 0, 2], [0, 0, 0, 0], [0, 0, 0, 0]])
    console = Console(file=io.StringIO(), width=120)
    for table in EvaluationReport("test", ["a", "b", "c", "d"], confusion, boundary_f1=0.5).tables():
        console.print(table)
    lines = console.file.getvalue().splitlines()
    rows = [[cell.strip() for cell in line.strip("│").split("│")] for line in lines if line.startswith("│")]
    assert "test scores (%)" in lines[0] and any("test per class (%)" in line for line in lines)
    assert rows == [
        ["36.74", "68.75", "65.00", "59.52", "50.00"],  # mIoU, pixel_acc, class_acc, fwIoU, BF
        ["a", "72.73", "80.00", "88.89", "10"],  # class, IoU, accuracy, precision, pixels
        ["b", "37.50", "50.00", "60.00", "6"],
        ["c", "-", "-", "-", "0"],
        ["d", "0.00", "-", "0.00", "0"],
    ]


class RecordingWandbLogger(WandbLogger):
    """A disabled W&B logger that records the tables and images it is given."""

    def __init__(self, save_dir: str) -> None:
        super().__init__(save_dir=save_dir, mode="disabled")
        self.tables: dict[str, tuple[list, list]] = {}
        self.images: dict[str, list] = {}

    def log_table(self, key: str, columns: list, data: list, **options: object) -> None:
        self.tables[key] = (columns, data)

    def log_image(self, key: str, images: list, **options: object) -> None:
        self.images[key] = images


def _data() -> tuple[ArrayDataModule, np.ndarray]:
    generator = torch.Generator().manual_seed(0)
    predictions, targets = [], []
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    for _ in range(5):
        target = torch.randint(0, 3, (12, 14), generator=generator)  # class 3 never in the ground truth
        target[torch.rand(12, 14, generator=generator) < 0.1] = 255
        prediction = torch.where(torch.rand(12, 14, generator=generator) < 0.7, target.clamp(max=3),
                                 torch.randint(0, 4, (12, 14), generator=generator))
        keep = target != 255
        np.add.at(confusion, (target[keep].numpy(), prediction[keep].numpy()), 1)
        predictions.append(one_hot_predictions(NUM_CLASSES, prediction))
        targets.append(target)
    return ArrayDataModule(predictions, targets, NUM_CLASSES, eval_batch_size=2), confusion


def _trainer(root: Path, logger: WandbLogger | bool) -> Trainer:
    return Trainer(
        logger=logger, callbacks=[EvaluationReportWriter()], default_root_dir=root, accelerator="cpu",
        enable_progress_bar=False, enable_model_summary=False, max_epochs=1, limit_train_batches=1,
    )


def test_validate_prints_writes_and_logs_the_report(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data, confusion = _data()
    module = SegmentationModule(IdentityNet, NUM_CLASSES, data.class_names)
    logger = RecordingWandbLogger(str(tmp_path))
    trainer = _trainer(tmp_path, logger)
    trainer.validate(module, datamodule=data, verbose=False)
    logged = {k: v.item() for k, v in trainer.callback_metrics.items()}

    assert "val scores" in capsys.readouterr().out
    report = json.loads((tmp_path / "val_report.json").read_text())
    assert np.array_equal(report["confusion_matrix"], confusion)
    for name in ("mIoU", "pixel_acc", "class_acc", "fwIoU", "BF"):
        assert report["summary"][name] == pytest.approx(logged[f"val/{name}"], abs=1e-6), name
    for name, scores in report["per_class"].items():
        iou = logged[f"val/IoU/{name}"]
        assert scores["IoU"] is None if math.isnan(iou) else scores["IoU"] == pytest.approx(iou, abs=1e-6)
    with (tmp_path / "val_per_class.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [row["class"] for row in rows] == list(data.class_names)
    assert float(rows[0]["IoU"]) == pytest.approx(report["per_class"]["class0"]["IoU"], rel=1e-5)
    with Image.open(tmp_path / "val_confusion.png") as plot:
        assert plot.format == "PNG" and plot.width > 100
    columns, rows = logger.tables["val/per_class"]
    assert columns[0] == "class" and len(rows) == NUM_CLASSES
    assert logger.images["val/confusion_matrix"] == [str(tmp_path / "val_confusion.png")]


def test_fit_writes_no_report(tmp_path: Path) -> None:
    data, _ = _data()
    module = SegmentationModule(IdentityNet, NUM_CLASSES, data.class_names)
    _trainer(tmp_path, logger=False).fit(module, datamodule=data)
    assert not list(tmp_path.glob("val_*"))
    assert module.confusion_matrix is None  # not gathered over processes for a report nobody writes
