"""LightningCLI for ``lit-seg fit/validate/test/predict``; :mod:`lit_seg.commands.main` runs the tools."""

import importlib
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import yaml
from jsonargparse import ArgumentError, Namespace
from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelSummary, ProgressBar, RichModelSummary
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.utilities import rank_zero_info

from lit_seg.commands.config_files import (
    PARSER_MODE,
    SUBCOMMANDS,
    ConfigError,
    class_path,
    culprit_message,
    expand_arguments,
)
from lit_seg.commands.run_names import EVALUATIONS, add_wandb_arguments, wandb_names, wandb_run_id
from lit_seg.data.datamodule import SegmentationDataModule
from lit_seg.data.io import DatasetError
from lit_seg.data.options import OptionError, check_option
from lit_seg.evaluation.prediction_writer import DISK_ERRNOS, PredictionFailures, SegmentationWriter
from lit_seg.evaluation.report_writer import EvaluationReportWriter
from lit_seg.evaluation.samples import PredictionSamples
from lit_seg.networks.backbones import HubUnreachable
from lit_seg.training.checkpoint_io import AtomicCheckpointIO, CheckpointError, read_checkpoint
from lit_seg.training.checkpoints import BestCheckpoint, LatestCheckpoint, checkpoint_folder, resume_checkpoint
from lit_seg.training.clock import RunClock
from lit_seg.training.loggers import CSVLogger, WandbLogger, save_run_id
from lit_seg.training.module import BatchTooSmallForBatchNorm, ClassCountMismatch, ImageTooLarge, SegmentationModule
from lit_seg.training.progress import LineProgressBar, RichStepProgressBar
from lit_seg.training.seeding import EpochSeed

# DataModule arguments linked into the model's arguments of the same name (CLI and export).
DATA_TO_MODEL = ("num_classes", "class_names", "ignore_index")


class BatchSizeError(ValueError):
    """``total_batch_size`` cannot be split evenly over the processes."""


# Errors from bad input that are reported as one line, without a traceback.
USER_ERRORS = (
    DatasetError, ClassCountMismatch, BatchTooSmallForBatchNorm, FloatingPointError, FileNotFoundError, FileExistsError,
    BatchSizeError, OptionError, ConfigError, CheckpointError, ImageTooLarge, PredictionFailures, HubUnreachable,
)


def check_checkpoint(path: Path, model: LightningModule) -> None:
    """Fails in one line, before any work, where Lightning would fail with torch's traceback: the
    checkpoint at ``path`` unreadable (:func:`read_checkpoint`), or its weights do not fit ``model``
    (another class count or another network).

    Raises:
        CheckpointError: the file cannot be loaded, or its weights do not fit ``model``.
        ClassCountMismatch: it was trained for another number of classes than ``model`` has.
    """
    checkpoint = read_checkpoint(path)
    state = checkpoint["state_dict"]
    trained_for = (checkpoint.get("hyper_parameters") or {}).get("num_classes")
    classes = getattr(model, "num_classes", None)
    if None not in (trained_for, classes) and trained_for != classes:
        raise ClassCountMismatch(f"checkpoint {path} was trained for {trained_for} classes, but the data has {classes}")
    own = model.state_dict()
    differ = sorted(key for key in own.keys() & state.keys() if own[key].shape != getattr(state[key], "shape", None))
    if differ:
        key = differ[0]
        raise CheckpointError(
            f"checkpoint {path} does not fit the network: {len(differ)} tensor(s) differ in shape, e.g. {key} "
            f"is {list(state[key].shape)} there and {list(own[key].shape)} here"
        )
    missing, unexpected = own.keys() - state.keys(), state.keys() - own.keys()
    if model.strict_loading and (missing or unexpected):
        raise CheckpointError(
            f"checkpoint {path} holds the weights of another network: {len(missing)} of this network's tensors "
            f"are missing from it and {len(unexpected)} of its tensors are not in this network, e.g. "
            f"{min(missing or unexpected)}"
        )


def link_data_to_model(parser: LightningArgumentParser) -> None:
    """Links the DataModule's class count, class names and ignore index into the model's arguments
    of the same name, so that each is stated once, on the dataset."""
    for name in DATA_TO_MODEL:
        parser.link_arguments(f"data.{name}", f"model.{name}", apply_on="instantiate")


def default_callbacks(terminal: bool) -> list[dict[str, str]]:
    """The ``trainer.callbacks`` of every run (the checkpoint, sample and prediction callbacks are
    option groups of their own): per-epoch seeding, the run clock, evaluation reports, and progress
    and model summary that suit the output (rich in a ``terminal``, plain lines elsewhere)."""
    callbacks = [EpochSeed, RunClock, EvaluationReportWriter]
    callbacks += [RichStepProgressBar, RichModelSummary] if terminal else [LineProgressBar]
    return [{"class_path": class_path(callback)} for callback in callbacks]


# The loggers of every run; the CLI sets their save_dir to trainer.default_root_dir and derives the
# W&B project, group, name and tags of the run where they are None.
DEFAULT_LOGGERS = [{"class_path": class_path(CSVLogger)}, {"class_path": class_path(WandbLogger)}]


def split_total_batch(total: int, processes: int, max_per_process: int) -> tuple[int, int]:
    """The per-process batch and the gradient-accumulation steps that make ``total`` samples per
    optimizer step over ``processes`` processes, with the largest per-process batch up to
    ``max_per_process`` that divides each process's share."""
    check_option(total > 0, "total_batch_size", total, "a positive number of samples per optimizer step")
    share, remainder = divmod(total, processes)
    if remainder or share == 0:
        raise BatchSizeError(f"total_batch_size {total} is not divisible by the {processes} processes (devices x nodes)")
    accumulation = -(-share // max(1, max_per_process))
    while share % accumulation:
        accumulation += 1
    return share // accumulation, accumulation


class LogConfigCallback(SaveConfigCallback):
    """Saves the merged config next to the run's logs and logs it once to every logger (Lightning's
    own logging of the module's hyperparameters is off: ``trainer.enable_autolog_hparams``), with the
    ``subcommand`` and the class metadata linked from the DataModule; a fit's W&B run id is kept with
    its checkpoints. ``predict``, which reads a run's config.yaml, leaves it as it is."""

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "predict":
            super().setup(trainer, pl_module, stage)

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        record = yaml.safe_load(self.parser.dump(self.config, skip_none=False))  # as config.yaml holds it
        record["subcommand"] = trainer.state.fn.value  # "fit", "validate", "test"
        if isinstance(pl_module, SegmentationModule):
            record["model"] |= {
                "num_classes": pl_module.num_classes,
                "class_names": list(pl_module.class_names),
                "ignore_index": pl_module.ignore_index,
            }
        for logger in trainer.loggers:
            logger.log_hyperparams(record)
            logger.save()

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Once the checkpoint callbacks have looked at their (so far empty) folder.
        folders = {callback.dirpath for callback in trainer.checkpoint_callbacks if callback.dirpath}
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                if isinstance(logger, WandbLogger):
                    for folder in folders:
                        save_run_id(folder, logger.version)


def parser_kwargs() -> dict[str, Any]:
    """Keyword arguments of the main parser and each subcommand's: YAML with registry names of networks
    (:data:`lit_seg.commands.config_files.PARSER_MODE`), errors raised (for a one-line report), and a
    one-line usage."""
    common = {"parser_mode": PARSER_MODE, "exit_on_error": False}
    usage = "%(prog)s [--config FILE ...] [--KEY VALUE ...]"
    return {**common, **{name: {**common, "usage": usage} for name in SUBCOMMANDS}}


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
            # The config is logged once, by LogConfigCallback, not also as the module's hyperparameters.
            trainer_defaults={"default_root_dir": "runs/default", "enable_autolog_hparams": False},
            args=args,
            run=run,
            auto_configure_optimizers=False,
            parser_kwargs=parser_kwargs(),
        )

    def parse_arguments(self, parser: LightningArgumentParser, args: ArgsType) -> None:
        """Parses ``args`` (default: the command line) with each recipe's parts and registry names of
        networks expanded (:func:`lit_seg.commands.config_files.expand_arguments`), then checks that a
        given checkpoint file can be read.

        Raises:
            ConfigError: a refused option or config file, the file named.
        """
        if isinstance(args, (dict, Namespace)):
            super().parse_arguments(parser, args)
        else:
            argv = expand_arguments(sys.argv[1:] if args is None else list(args))
            try:
                self.config = parser.parse_args(argv)
            except ArgumentError as error:
                raise ConfigError(culprit_message(parser, argv, str(error))) from None
        checkpoint = self.config.get("subcommand") and self.config[self.config.subcommand].get("ckpt_path")
        if checkpoint and Path(checkpoint).is_file():  # before LightningCLI reads its hyperparameters
            read_checkpoint(Path(checkpoint))

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        link_data_to_model(parser)
        parser.set_defaults({"trainer.callbacks": default_callbacks(sys.stdout.isatty()), "trainer.logger": DEFAULT_LOGGERS})
        parser.add_lightning_class_args(PredictionSamples, "samples")
        # Two checkpoint callbacks: the best by val/mIoU, and "latest" (linked from last.ckpt), which
        # needs no metric and so can also be written mid-epoch (last_checkpoint.every_n_train_steps)
        # before any validation, and at the end of fit. Checkpoint files are complete or absent.
        parser.add_lightning_class_args(BestCheckpoint, "checkpoint")
        parser.add_lightning_class_args(LatestCheckpoint, "last_checkpoint")
        parser.set_defaults({"trainer.plugins": [{"class_path": class_path(AtomicCheckpointIO)}]})
        for group in ("checkpoint", "last_checkpoint"):
            parser.link_arguments("trainer.default_root_dir", f"{group}.dirpath", compute_fn=checkpoint_folder)
        parser.add_lightning_class_args(SegmentationWriter, "predictions")  # acts in predict only
        parser.add_argument(
            "--total_batch_size", type=int | None, default=None,
            help="samples per optimizer step over all processes; data.batch_size is then the largest per-process "
            "batch, and trainer.accumulate_grad_batches makes up the rest",
        )
        add_wandb_arguments(parser)

    def _subcommand_config(self) -> Namespace:
        """The parsed config of the subcommand being run."""
        return self.config[self.subcommand] if self.subcommand else self.config

    def before_instantiate_classes(self) -> None:
        config = self._subcommand_config()
        # The runs of a W&B sweep share one command line: each gets its own folder under the root.
        run_id = os.environ.get("WANDB_RUN_ID")
        if os.environ.get("WANDB_SWEEP_ID") and run_id:
            config.trainer.default_root_dir = str(Path(config.trainer.default_root_dir or "runs/default") / run_id)
            for group in ("checkpoint", "last_checkpoint"):
                config[group].dirpath = checkpoint_folder(config.trainer.default_root_dir)
        if self.subcommand == "fit" and config.get("ckpt_path") == "last":  # a complete checkpoint, said in one line
            config.ckpt_path = resume_checkpoint(config.last_checkpoint.dirpath)
        self._complete_loggers(config)
        if self.subcommand in EVALUATIONS:
            config.verbose = False  # EvaluationReportWriter prints the results; Lightning's table would repeat them
        # Honour enable_progress_bar / enable_model_summary false: Lightning refuses a progress bar
        # callback beside the first and would still run a summary callback beside the second.
        disabled = tuple(
            kind for kind, flag in ((ProgressBar, "enable_progress_bar"), (ModelSummary, "enable_model_summary"))
            if config.trainer.get(flag) is False
        )
        if disabled and config.trainer.callbacks:
            config.trainer.callbacks = [
                callback for callback in config.trainer.callbacks
                if not issubclass(_import_class(callback.class_path), disabled)
            ]

    def _complete_loggers(self, config: Namespace) -> None:
        """Writes the loggers' files under ``trainer.default_root_dir`` and names the W&B run
        (:func:`wandb_names`) where the config leaves those options None; ``predict`` logs nothing.

        The W&B run's ``id``, ``job_type`` and ``name`` are set on every run (:func:`wandb_run_id`), as
        a saved config's values name an earlier run: a resumed fit continues its run (and keeps its
        name), any other fit and every evaluation starts one.
        """
        loggers = config.trainer.logger
        if loggers is True:  # "the default loggers", as in Lightning
            loggers = config.trainer.logger = [
                Namespace(class_path=logger["class_path"], init_args=Namespace(save_dir=None)) for logger in DEFAULT_LOGGERS
            ]
        if not isinstance(loggers, list):
            return
        defaults = {logger["class_path"] for logger in DEFAULT_LOGGERS}
        if self.subcommand == "predict" and all(logger.class_path in defaults for logger in loggers):
            config.trainer.logger = False  # predictions go to files: there is no run to log
            return
        root = config.trainer.default_root_dir or "runs/default"
        for logger in loggers:
            options = logger.get("init_args")
            if options is None or "save_dir" not in options:
                continue
            if options.save_dir is None:
                options.save_dir = root
            if issubclass(_import_class(logger.class_path), WandbLogger):
                wandb = config.get("wandb") or Namespace()
                names = wandb_names(config, self.subcommand)
                options.id, resumed = wandb_run_id(config, self.subcommand)
                options.job_type = names.pop("job_type")
                derived_name = names.pop("name")
                options.name = wandb.get("name") if resumed else derived_name  # None keeps the run's name
                for key, value in names.items():
                    if options.get(key) is None:
                        options[key] = value
                if wandb.get("resume"):
                    options.resume = wandb.resume

    def instantiate_classes(self) -> None:
        super().instantiate_classes()
        config = self._subcommand_config()
        checkpoint = config.get("ckpt_path")
        if checkpoint and Path(checkpoint).is_file():  # the file of --ckpt_path, or the one "last" resolved to
            check_checkpoint(Path(checkpoint), self.model)
        trainer = self.trainer
        accumulation = trainer.accumulate_grad_batches
        check_option(accumulation >= 1, "trainer.accumulate_grad_batches", accumulation, "1 (no accumulation) or more")
        total = config.get("total_batch_size")
        if total is None:
            return
        if accumulation != 1:
            raise BatchSizeError("give total_batch_size or trainer.accumulate_grad_batches, not both")
        processes = trainer.num_devices * trainer.num_nodes
        batch, trainer.accumulate_grad_batches = split_total_batch(total, processes, self.datamodule.batch_size)
        self.datamodule.batch_size = batch
        accumulated = trainer.accumulate_grad_batches
        rank_zero_info(f"total batch {total} = {processes} processes x batch {batch} x {accumulated} accumulated")


def _import_class(class_path: str) -> type:
    module, name = class_path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def _user_error(error: BaseException) -> BaseException | None:
    """The error from bad input (``USER_ERRORS``, or an OS error of ``DISK_ERRNOS``) that ``error`` is or
    was raised from (jsonargparse wraps the errors of the constructors it calls), or None."""
    while error is not None:
        if isinstance(error, USER_ERRORS) or (isinstance(error, OSError) and error.errno in DISK_ERRNOS):
            return error
        error = error.__cause__
    return None


def _one_line(error: BaseException) -> str:
    """The error's own message, without a DataLoader worker's embedded traceback; an OS error in the
    system's words with the file it names."""
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror}: {error.filename}" if error.filename else error.strerror
    text = str(error).strip()
    if "Original Traceback" in text:
        text = text.splitlines()[-1].split(": ", 1)[-1]
    return text


# Packages whose deprecation notices concern their own code or each other's, not a user's run.
DEPENDENCIES = r"(lightning|torch|torchvision|torchmetrics|timm|segmentation_models_pytorch|wandb|jsonargparse|onnx\w*)\b"


class _NoLitLoggerTip(logging.Filter):
    """Drops Lightning's advertisement for its LitLogger, printed at the start of every run."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


LITLOGGER_TIP = _NoLitLoggerTip()


def hide_dependency_notices() -> None:
    """Warning filters (for the ``warnings.catch_warnings`` block of a run) and a logging filter for what
    users cannot act on: deprecation notices raised in our dependencies, Lightning's suggestion of
    ``sync_dist=True`` for values that are already reduced over processes (torchmetrics results, the
    run clock, the evaluated checkpoint's step) and its LitLogger tip."""
    for category in (DeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category, module=DEPENDENCIES)
    warnings.filterwarnings("ignore", message=r"It is recommended to use `self\.log\('(val/|test/|time/|step')")
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(LITLOGGER_TIP)


def run_cli(args: list[str] | None = None) -> SegmentationCLI:
    """Runs a Lightning subcommand (fit, validate, test, predict) and returns the CLI, whose
    ``trainer`` and ``model`` can then be inspected. Bad input (``USER_ERRORS``: options, data,
    checkpoints, inputs that predict skipped) and a full or read-only disk (``DISK_ERRNOS``) exit
    with code 1 and one line ``lit-seg: error: <message>``."""
    try:
        with warnings.catch_warnings():
            hide_dependency_notices()
            return SegmentationCLI(args=args)
    except Exception as error:
        cause = _user_error(error)
        if cause is None:
            raise
        print(f"lit-seg: error: {_one_line(cause)}", file=sys.stderr)
        raise SystemExit(1) from None

