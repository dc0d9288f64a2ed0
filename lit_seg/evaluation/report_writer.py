"""Prints and saves the evaluation report at the end of ``validate`` and ``test`` runs, whose metrics
are logged at the step of the checkpoint evaluated."""

from pathlib import Path
from typing import Any

from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn
from rich.console import Console

from lit_seg.evaluation.report import EvaluationReport
from lit_seg.training.loggers import logged_step


class EvaluationReportWriter(Callback):
    """After a ``validate`` or ``test`` run (not the validations inside ``fit``), prints the scores
    as rich tables, writes ``<stage>_report.json``, ``<stage>_per_class.csv`` and
    ``<stage>_confusion.png`` into the run's log directory and logs the table and plot to W&B.

    Reads the confusion matrix that :class:`lit_seg.training.module.SegmentationModule` keeps from its last
    evaluation epoch (summed over processes) and the logged ``<stage>/BF``. The metrics of an evaluated
    checkpoint are logged at its training step, as the validations of its fit were (Lightning takes a
    logged ``step`` as the step of the metrics logged with it).
    """

    def __init__(self) -> None:
        self.checkpoint_step: int | None = None  # the training step of the checkpoint being evaluated

    def on_load_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        step = checkpoint.get("global_step")
        self.checkpoint_step = step if isinstance(step, int) else None

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._log_checkpoint_step(trainer, pl_module)

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._log_checkpoint_step(trainer, pl_module)

    def _log_checkpoint_step(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.state.fn != TrainerFn.FITTING and trainer.ckpt_path and self.checkpoint_step is not None:
            pl_module.log("step", float(logged_step(self.checkpoint_step)))

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.state.fn == TrainerFn.VALIDATING:
            self._report(trainer, pl_module, "val")

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._report(trainer, pl_module, "test")

    def _report(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        directory = Path(trainer.log_dir or trainer.default_root_dir)  # a collective call: every rank
        if not trainer.is_global_zero or pl_module.confusion_matrix is None:
            return
        boundary_f1 = trainer.callback_metrics.get(f"{stage}/BF")
        report = EvaluationReport(
            stage,
            pl_module.class_names,
            pl_module.confusion_matrix.cpu().numpy(),
            None if boundary_f1 is None else boundary_f1.item(),
        )
        console = Console()
        for table in report.tables():
            console.print(table)
        paths = report.write(directory)
        console.print(f"{stage} report: {paths['json']}, {paths['csv']}, {paths['plot']}", soft_wrap=True)
        report.log_to_wandb(trainer.loggers, paths["plot"])
