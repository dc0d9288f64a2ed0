"""A stopped run resumes from its last checkpoint to the same end as an uninterrupted run."""

from pathlib import Path

import pytest
import torch

from lit_seg.commands.cli import run_cli
from tests.helpers.tiny_runs import tiny_fit_args

EPOCH_STEPS = 4  # 16 training images, batch 4


def fit(root: Path, run_dir: Path, *extra: str):
    return run_cli(tiny_fit_args(root, run_dir, "--trainer.max_epochs", "2", *extra))


def final_state(cli) -> tuple[int, float, dict[str, torch.Tensor]]:
    trainer = cli.trainer
    lr = trainer.optimizers[0].param_groups[0]["lr"]
    return trainer.global_step, lr, {k: v.clone() for k, v in cli.model.state_dict().items()}


def test_resume_mid_epoch_reaches_same_step_and_lr(shapes_root: Path, tmp_path: Path) -> None:
    steps, lr, _ = final_state(fit(shapes_root, tmp_path / "whole"))
    interrupted = tmp_path / "interrupted"
    stop = ["--last_checkpoint.every_n_train_steps", "2", "--trainer.callbacks+=tests.helpers.nets.StopAtStep", "--trainer.callbacks.step", "3"]
    with pytest.raises(SystemExit):  # Lightning ends an interrupted fit with exit code 1
        fit(shapes_root, interrupted, *stop)
    assert torch.load(interrupted / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 2
    resumed = fit(shapes_root, interrupted, "--last_checkpoint.every_n_train_steps", "2", "--ckpt_path", "last")
    assert resumed.trainer.global_step == steps == 2 * EPOCH_STEPS
    assert resumed.trainer.optimizers[0].param_groups[0]["lr"] == lr


def test_resume_at_epoch_boundary_gives_identical_weights(shapes_root: Path, tmp_path: Path) -> None:
    _, _, whole = final_state(fit(shapes_root, tmp_path / "whole"))
    run = tmp_path / "interrupted"
    with pytest.raises(SystemExit):
        fit(shapes_root, run, "--trainer.callbacks+=tests.helpers.nets.StopAtStep", "--trainer.callbacks.step", str(EPOCH_STEPS))
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == EPOCH_STEPS
    _, _, resumed = final_state(fit(shapes_root, run, "--ckpt_path", "last"))
    for name, value in whole.items():
        assert torch.equal(value, resumed[name]), name


def test_last_checkpoint_holds_the_final_step(shapes_root: Path, tmp_path: Path) -> None:
    """The periodic "latest" save every 3 steps misses the final step 5: fit's end saves it too."""
    run = run_cli(tiny_fit_args(shapes_root, tmp_path, "--trainer.max_steps", "5",
                                "--last_checkpoint.every_n_train_steps", "3"))
    checkpoints = tmp_path / "checkpoints"
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["global_step"] == run.trainer.global_step == 5
    assert [path.name.endswith("-step5.ckpt") for path in checkpoints.glob("latest-*")] == [True]  # step 3 removed


def test_checkpoint_names_agree_on_the_epoch(shapes_root: Path, tmp_path: Path) -> None:
    """max_steps 6 stops in epoch 1 (4 steps an epoch): Lightning then counts epoch 2 before the final save,
    yet step 6 was trained in epoch 1, and the best checkpoint of step 4 says epoch 0."""
    run_cli(tiny_fit_args(shapes_root, tmp_path, "--trainer.max_steps", "6", "--last_checkpoint.every_n_train_steps", "5"))
    names = sorted(path.name for path in (tmp_path / "checkpoints").glob("*.ckpt") if not path.is_symlink())
    assert names == ["best-epoch0-step4.ckpt", "latest-epoch1-step6.ckpt"]
