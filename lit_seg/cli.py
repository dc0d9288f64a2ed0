"""The ``lit-seg`` command: LightningCLI for fit/validate/test/predict, plus lit_seg's own tools."""

import importlib
import sys
from pathlib import Path
from typing import Any

from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, RichModelSummary, RichProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import CSVLogger

from lit_seg.callbacks import EpochSeed, LineProgressBar, PredictionSamples
from lit_seg.data.base import SegmentationDataModule
from lit_seg.data.io import DatasetError
from lit_seg.loggers import WandbLogger
from lit_seg.module import ClassCountMismatch, SegmentationModule

# Subcommands besides Lightning's, each a module with ``main(argv)``.
TOOLS = {
    "quickstart": "lit_seg.quickstart",
    "models": "lit_seg.models.summary",
    "data-stats": "lit_seg.data.stats",
    "loader-benchmark": "lit_seg.data.throughput",
}
# Errors from bad input that are reported as one line, without a traceback.
USER_ERRORS = (DatasetError, ClassCountMismatch, FloatingPointError, FileNotFoundError)


def _checkpoint_dir(root: str) -> str:
    return str(Path(root) / "checkpoints")


class LogConfigCallback(SaveConfigCallback):
    """Saves the merged config next to the run's logs and sends it to every logger."""

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        for logger in trainer.loggers:
            logger.log_hyperparams(self.config.as_dict())


class SegmentationCLI(LightningCLI):
    """LightningCLI with the dataset's class metadata linked into the model, checkpoints (best by
    ``val/mIoU``, and ``last``) under ``<default_root_dir>/checkpoints``, CSV + W&B logging
    by default, and progress that suits the output (a rich bar in a terminal, lines elsewhere)."""

    def __init__(self, args: list[str] | None = None, run: bool = True) -> None:
        super().__init__(
            SegmentationModule,
            SegmentationDataModule,
            subclass_mode_data=True,
            save_config_callback=LogConfigCallback,
            save_config_kwargs={"overwrite": True},
            seed_everything_default=0,
            trainer_defaults={"default_root_dir": "runs/default"},
            args=args,
            run=run,
            auto_configure_optimizers=False,
        )

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        for name in ("num_classes", "class_names", "ignore_index"):
            parser.link_arguments(f"data.{name}", f"model.{name}", apply_on="instantiate")
        # Two checkpoint callbacks: the best by val/mIoU, and "last", which needs no metric and so
        # can also be written mid-epoch (last_checkpoint.every_n_train_steps) before any validation.
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.add_lightning_class_args(ModelCheckpoint, "last_checkpoint")
        parser.set_defaults({
            "checkpoint.monitor": "val/mIoU",
            "checkpoint.mode": "max",
            "checkpoint.filename": "best-epoch{epoch}-step{step}",
            "checkpoint.auto_insert_metric_name": False,
            "last_checkpoint.filename": "latest-epoch{epoch}-step{step}",
            "last_checkpoint.auto_insert_metric_name": False,
            "last_checkpoint.save_top_k": 1,  # no monitor: keeps only the newest
            "last_checkpoint.save_last": "link",  # last.ckpt links to it
        })
        for group in ("checkpoint", "last_checkpoint"):
            parser.link_arguments("trainer.default_root_dir", f"{group}.dirpath", compute_fn=_checkpoint_dir)

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Callback]) -> Trainer:
        root = config.get("default_root_dir") or "runs/default"
        if config.get("logger") in (None, True):
            config["logger"] = [CSVLogger(save_dir=root, name=""), WandbLogger(save_dir=root)]
        callbacks = list(callbacks) + [PredictionSamples(), EpochSeed()]
        if config.get("enable_progress_bar", True) is not False:
            callbacks.append(RichProgressBar() if sys.stdout.isatty() else LineProgressBar())
            if sys.stdout.isatty() and config.get("enable_model_summary", True) is not False:
                callbacks.append(RichModelSummary(max_depth=2))
        return super()._instantiate_trainer(config, callbacks)


def _one_line(error: BaseException) -> str:
    """The error's own message, without a DataLoader worker's embedded traceback."""
    text = str(error).strip()
    if "Original Traceback" in text:
        text = text.splitlines()[-1].split(": ", 1)[-1]
    return text


def run_cli(args: list[str] | None = None) -> SegmentationCLI:
    """Runs a Lightning subcommand (fit, validate, test, predict) and returns the CLI, whose
    ``trainer`` and ``model`` can then be inspected. Bad input exits with a one-line error."""
    try:
        return SegmentationCLI(args=args)
    except USER_ERRORS as error:
        print(f"lit-seg: error: {_one_line(error)}", file=sys.stderr)
        raise SystemExit(1) from None


def main(args: list[str] | None = None) -> None:
    """The ``lit-seg`` entry point; ``args`` default to the command line."""
    argv = sys.argv[1:] if args is None else list(args)
    if argv and argv[0] in TOOLS:
        importlib.import_module(TOOLS[argv[0]]).main(argv[1:])
    else:
        run_cli(args)


if __name__ == "__main__":
    main()
