"""The launchers of experiments/launch: DDP on two CPU processes, the SLURM script, torchrun."""

import os
import signal
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import torch
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from lit_seg.commands.cli import SegmentationCLI, run_cli
from tests.helpers.experiment_runs import EXPERIMENTS
from tests.helpers.tiny_runs import REPO, tiny_fit_args

pytestmark = pytest.mark.filterwarnings("ignore:LightningCLI.s args parameter")

LAUNCH = EXPERIMENTS / "launch"
TRAIN_IMAGES = 16  # in the shapes dataset of conftest


def test_ddp_overlay_two_processes(shapes_root: Path, tmp_path: Path) -> None:
    cli = run_cli(tiny_fit_args(
        shapes_root, tmp_path, "--config", str(LAUNCH / "ddp.yaml"),
        "--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp_fork",
        "--trainer.sync_batchnorm", "false",  # SyncBatchNorm needs GPUs
        "--trainer.max_epochs", "1", "--total_batch_size", "16",
    ))
    trainer = cli.trainer
    assert trainer.world_size == 2 and trainer.accumulate_grad_batches == 2
    assert torch.isfinite(trainer.callback_metrics["val/mIoU"])
    # 16 samples per step = 2 processes x batch 4 x 2 accumulated: one optimizer step per epoch. (The
    # forked processes trained; the checkpoint holds their step count.)
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == TRAIN_IMAGES // 16


def render_sbatch(tmp_path: Path, *options: str) -> tuple[list[str], dict[str, str]]:
    """Runs the batch script as SLURM would on the first node, with an ``srun`` that records its
    arguments and environment instead of starting tasks."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    srun = bin_dir / "srun"
    srun.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$RECORD.args"\nenv > "$RECORD.env"\n')
    srun.chmod(0o755)
    record = tmp_path / "srun"
    slurm = {"SLURM_JOB_ID": "4242", "SLURM_NNODES": "2", "SLURM_NTASKS_PER_NODE": "4", "SLURM_CPUS_PER_TASK": "8"}
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "RECORD": str(record), **slurm}
    subprocess.run(["bash", str(LAUNCH / "slurm.sbatch"), *options], env=env, check=True, timeout=60)
    lines = (record.with_suffix(".env")).read_text().splitlines()
    return record.with_suffix(".args").read_text().splitlines(), dict(line.split("=", 1) for line in lines if "=" in line)


def test_slurm_script_directives() -> None:
    script = (LAUNCH / "slurm.sbatch").read_text()
    for directive in ("--signal=SIGUSR1@90", "--requeue", "--ntasks-per-node=4", "--gpus-per-node=4"):
        assert f"#SBATCH {directive}\n" in script
    assert "--ckpt_path" not in script.split("#SBATCH --output")[1]  # Lightning resumes from its hpc checkpoint


def test_slurm_rendered_for_one_task(shapes_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    options = tiny_fit_args(shapes_root, tmp_path / "run", "--total_batch_size", "16")[1:]
    command, env = render_sbatch(tmp_path, *options)
    assert command[:4] == ["lit-seg", "fit", "--trainer.sync_batchnorm", "true"] and command[4 : 4 + len(options)] == options
    assert command[-4:] == ["--trainer.num_nodes", "2", "--trainer.devices", "4"]
    assert env["WANDB_RUN_ID"] == "slurm-4242" and env["OMP_NUM_THREADS"] == "8"
    # What srun gives the sixth task (second node, second GPU) of the 8.
    task = {"SLURM_NTASKS": "8", "SLURM_PROCID": "5", "SLURM_LOCALID": "1", "SLURM_NODEID": "1",
            "SLURM_NODELIST": "gpu[07-08]", "SLURM_JOB_NAME": "lit-seg", "SLURM_NNODES": "2",
            "SLURM_NTASKS_PER_NODE": "4", "SLURM_JOB_ID": "4242"}
    # Building the trainer writes rank and world variables into os.environ and sets the process-wide
    # rank_zero_only.rank to 5; restore both, or later tests in this process would wait for the 8
    # processes of this fake job (ddp_fork) or log nothing (not rank 0).
    monkeypatch.setattr(rank_zero_only, "rank", rank_zero_only.rank)
    with mock.patch.dict(os.environ, task):
        for name in ("MASTER_ADDR", "MASTER_PORT"):
            os.environ.pop(name, None)
        assert SLURMEnvironment.detect()
        cli = SegmentationCLI(args=command[2:], run=False)  # sync_batchnorm applies at fit
        trainer = cli.trainer
        environment = trainer._accelerator_connector.cluster_environment
        assert isinstance(environment, SLURMEnvironment) and environment.auto_requeue
        assert environment.requeue_signal == signal.SIGUSR1 and environment.main_address == "gpu07"
        assert (trainer.world_size, trainer.global_rank, trainer.local_rank, trainer.node_rank) == (8, 5, 1, 1)
        assert (cli.datamodule.batch_size, trainer.accumulate_grad_batches) == (2, 1)  # 16 samples over 8 tasks


def test_torchrun_two_processes(shapes_root: Path, tmp_path: Path) -> None:
    env = {
        **os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "PYTHONPATH": str(REPO),
        "NPROC_PER_NODE": "2", "WANDB_MODE": "disabled",
    }
    options = tiny_fit_args(shapes_root, tmp_path, "--trainer.max_epochs", "1", "--trainer.sync_batchnorm", "false")[1:]
    result = subprocess.run(
        ["bash", str(LAUNCH / "torchrun.sh"), *options], env=env, cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == TRAIN_IMAGES // (2 * 4)  # 2 processes x batch 4
