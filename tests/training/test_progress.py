"""What a run prints: the loss from the first progress line, a line at the last step, a summary after each
validation and where the run's files are at the end; none of the dependencies' notices users cannot act on."""

import logging
import re
import sys
import warnings
from pathlib import Path

import pytest
from lightning.fabric.utilities.warnings import PossibleUserWarning

from lit_seg.commands.cli import hide_dependency_notices, run_cli
from tests.helpers.tiny_runs import tiny_fit_args

SCHEDULE = ["--trainer.max_steps", "6", "--trainer.val_check_interval", "3", "--trainer.check_val_every_n_epoch",
            "null", "--trainer.enable_progress_bar", "true"]


def test_log_lines(shapes_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        run_cli(tiny_fit_args(shapes_root, tmp_path, *SCHEDULE))  # stdout is not a terminal: LineProgressBar
    out = capsys.readouterr().out.splitlines()
    steps = [line for line in out if line.startswith("step ")]
    assert steps[0].startswith("step 1/6 (epoch 0)  loss ") and "loss ?" not in "\n".join(steps)
    assert steps[-1].startswith("step 6/6 ")
    validations = [line for line in out if line.startswith("validation after step")]
    assert [line.split(":")[0] for line in validations] == ["validation after step 3", "validation after step 6"]
    assert validations[0].split(": ")[1].startswith("val/mIoU ")
    assert any(line.startswith("best checkpoint: ") for line in out)
    assert f"config: {tmp_path / 'config.yaml'}" in out  # no logger: the config is in the run folder
    assert not any("litlogger" in record.getMessage() for record in caplog.records)


def test_last_checkpoint_is_named_without_a_validation(shapes_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run_cli(tiny_fit_args(shapes_root, tmp_path, "--trainer.max_steps", "2", "--trainer.limit_val_batches", "0",
                          "--trainer.enable_progress_bar", "true"))
    out = capsys.readouterr().out.splitlines()
    assert not any(line.startswith("best checkpoint: ") for line in out)
    assert f"last checkpoint: {tmp_path / 'checkpoints' / 'last.ckpt'} (resume with --ckpt_path last)" in out


def test_terminal_bar(
    shapes_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)  # as in a terminal: RichStepProgressBar
    cli = run_cli(tiny_fit_args(shapes_root, tmp_path, *SCHEDULE))
    assert type(cli.trainer.progress_bar_callback).__name__ == "RichStepProgressBar"
    out = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", capsys.readouterr().out)  # without the terminal's control codes
    assert "Epoch" not in out
    bar = [line for line in re.split(r"[\r\n]", out) if line.startswith("train ")][-1]
    assert "step 6/6" in bar and "loss " in bar and "loss ?" not in bar and "val/mIoU " in bar
    assert out.count("validation after step") == 2


def test_dependency_notices_are_hidden() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hide_dependency_notices()
        for stage in ("val", "test"):
            warnings.warn(f"It is recommended to use `self.log('{stage}/mIoU', ..., sync_dist=True)` when logging "
                          "on epoch level in distributed setting", PossibleUserWarning)
        warnings.warn_explicit("`isinstance(treespec, LeafSpec)` is deprecated", FutureWarning, "_pytree.py", 21,
                               module="lightning.pytorch.utilities._pytree")
        warnings.warn_explicit("old", DeprecationWarning, "x.py", 1, module="wandb.sdk.wandb_settings")
        warnings.warn("kept: a notice of our own", FutureWarning)
        warnings.warn("It is recommended to use `self.log('train/loss', ..., sync_dist=True)`", PossibleUserWarning)
    assert [str(warning.message) for warning in caught] == [
        "kept: a notice of our own", "It is recommended to use `self.log('train/loss', ..., sync_dist=True)`",
    ]
