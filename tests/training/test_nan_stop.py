"""A NaN or Inf stop keeps the newest checkpoint whose weights and training loss were finite, says which
step that is, and ``--ckpt_path last`` resumes from it."""

import re
from pathlib import Path

import pytest
import torch
from lightning import Callback, LightningModule, Trainer

from lit_seg.commands.cli import run_cli
from lit_seg.training.checkpoint_io import checkpoint_step
from lit_seg.training.checkpoints import LAST, NonFiniteError, resume_checkpoint
from tests.helpers.nets import StopAtStep
from tests.helpers.tiny_runs import tiny_fit_args
from tests.training.test_checkpoints import fit, one_thread  # noqa: F401 (a fixture)


class WeightSpike(Callback):
    """Multiplies every parameter by ``factor`` right after optimizer step ``step``, as a learning rate of
    1e30 would, before that step's checkpoint is saved."""

    def __init__(self, step: int, factor: float = 1e30) -> None:
        self.step = step
        self.factor = factor

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: object, batch: object, batch_idx: int
    ) -> None:
        if trainer.global_step == self.step:
            with torch.no_grad():
                for parameter in pl_module.parameters():
                    parameter.mul_(self.factor)


def test_exploded_weights_stop_with_the_kept_step_and_resume_finite(
    capsys: pytest.CaptureFixture, shapes_root: Path, tmp_path: Path
) -> None:
    """Weights of 1e30 after step 4 are finite and saved; the loss at step 4 is not: last.ckpt goes back
    to step 2, and the resumed run trains on from there."""
    options = ("--last_checkpoint.every_n_train_steps", "2", "--trainer.max_steps", "6")
    spike = ("--trainer.callbacks+=tests.training.test_nan_stop.WeightSpike", "--trainer.callbacks.step", "4")
    with pytest.raises(SystemExit) as exit_info:
        run_cli(tiny_fit_args(shapes_root, tmp_path, *options, *spike))
    assert exit_info.value.code == 1
    error = capsys.readouterr().err
    assert re.fullmatch(
        r"lit-seg: error: training loss is (nan|inf) at step 4 \(epoch 1, batch 0\); last\.ckpt holds step 2 "
        r"\(latest-epoch0-step2\.ckpt\), the newest state with a finite loss and finite weights\n", error
    ), error
    folder = tmp_path / "checkpoints"
    assert [path.name for path in folder.glob("latest-*")] == ["latest-epoch0-step2.ckpt"]
    resumed = run_cli(tiny_fit_args(shapes_root, tmp_path, *options, "--ckpt_path", "last"))
    assert Path(resumed.trainer.ckpt_path).name == "latest-epoch0-step2.ckpt" and resumed.trainer.global_step == 6
    assert checkpoint_step(folder / LAST) == 6


def test_non_finite_weights_are_not_saved(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    with pytest.raises(NonFiniteError) as error:
        fit(folder, max_steps=6, every=2, callbacks=(WeightSpike(4, float("nan")),))
    assert str(error.value) == (
        "weights are not finite after step 4 (net.backbone.0.weight, net.backbone.0.bias, net.backbone.1.weight and 5 more); "
        "last.ckpt holds step 2 (latest-epoch0-step2.ckpt), the newest state with a finite loss and finite weights"
    )
    assert [path.name for path in folder.glob("latest-*")] == ["latest-epoch0-step2.ckpt"]


def test_resumed_state_that_fails_gives_way_to_the_one_before(tmp_path: Path) -> None:
    """Stopped (Ctrl-C) before any batch ran on the exploded state of step 4, the run keeps step 2 beside
    it; the resumed run's first loss is not finite, and it goes back to step 2."""
    folder = tmp_path / "checkpoints"
    with pytest.raises(SystemExit):
        fit(folder, max_steps=6, every=2, callbacks=(WeightSpike(4), StopAtStep(4)))
    assert checkpoint_step(Path(resume_checkpoint(folder))) == 4
    with pytest.raises(NonFiniteError, match=r"at step 4 .*; last\.ckpt holds step 2 \(latest-epoch0-step2\.ckpt\)"):
        fit(folder, max_steps=6, every=2, ckpt_path=resume_checkpoint(folder))
    assert fit(folder, max_steps=6, every=2, ckpt_path=resume_checkpoint(folder)).global_step == 6


def test_stop_before_any_checkpoint_says_so(tmp_path: Path) -> None:
    with pytest.raises(NonFiniteError, match=r"at step 1 .*; no checkpoint holds an earlier state$"):
        fit(tmp_path / "checkpoints", max_steps=6, every=2, callbacks=(WeightSpike(1),))
