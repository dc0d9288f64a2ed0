"""Each paper architecture, built from its experiments/models/ YAML, overfits a fixed batch in 20 steps."""

import csv
import math
from pathlib import Path

import pytest

from lit_seg.commands.cli import run_cli
from tests.helpers.experiment_runs import PAPER_MODELS, small_run_args, stacked_configs
from tests.helpers.fakes import fake_camvid

pytestmark = pytest.mark.filterwarnings("ignore:There is a wandb run already in progress")

STEPS = 20
# The FCNs (134M parameters, inputs padded by 100 pixels) take about a minute each on two cores.
SLOW = {"fcn32s", "fcn16s", "fcn8s"}
# Without BN in their heads these diverge under AdamW at 1e-3 (RefineNet's loss passes 1000).
LOW_LR = SLOW | {"refinenet"}


@pytest.fixture(scope="module")
def two_frames(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fake CamVid with two 40x56 training frames: one batch of both, unaugmented, is fixed."""
    return fake_camvid(tmp_path_factory.mktemp("camvid"), {"train": 2, "val": 1})


def training_losses(run_dir: Path) -> list[float]:
    """The per-step ``train/loss`` values of the CSV log under ``run_dir``."""
    with (run_dir / "version_0" / "metrics.csv").open() as file:
        return [float(row["train/loss"]) for row in csv.DictReader(file) if row.get("train/loss")]


@pytest.mark.parametrize("model", [pytest.param(m, marks=pytest.mark.slow) if m in SLOW else m for m in PAPER_MODELS])
def test_overfits_fixed_batch(model: str, two_frames: Path, tmp_path: Path) -> None:
    lr = "0.0001" if model in LOW_LR else "0.001"
    run_cli([
        "fit", *stacked_configs(model, "camvid"), *small_run_args(model, two_frames, tmp_path, crop=(40, 56)),
        "--data.init_args.scale_range", "[1.0, 1.0]", "--data.init_args.hflip", "false",
        "--model.optimizer", "torch.optim.AdamW", "--model.optimizer.lr", lr, "--model.poly_power", "0",
        "--trainer.max_steps", str(STEPS), "--trainer.limit_val_batches", "0", "--trainer.log_every_n_steps", "1",
    ])
    losses = training_losses(tmp_path)
    assert len(losses) == STEPS and all(math.isfinite(loss) for loss in losses), losses
    assert sum(losses[-5:]) < sum(losses[:5]) and losses[-1] < losses[0], losses
