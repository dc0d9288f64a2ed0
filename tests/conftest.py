"""Test set-up: no network, no W&B, small generated data."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["WANDB_MODE"] = "disabled"
os.environ.setdefault("WANDB_SILENT", "true")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tests.helpers.tiny_runs import tiny_fit_args  # noqa: E402


@pytest.fixture(scope="session")
def shapes_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated shapes dataset in the image-folder layout (written once per session)."""
    from lit_seg.data.datasets.shapes import write_shapes_dataset

    root = tmp_path_factory.mktemp("shapes")
    write_shapes_dataset(root, {"train": 16, "val": 5, "test": 5}, size=48, seed=0)
    return root


@pytest.fixture(scope="session")
def trained_run(shapes_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A briefly trained tiny network (read only): its folder holds config.yaml and checkpoints/last.ckpt."""
    from lit_seg.commands.cli import run_cli

    run = tmp_path_factory.mktemp("run")
    run_cli(tiny_fit_args(shapes_root, run, "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
                          "--trainer.limit_val_batches", "1"))
    return run
