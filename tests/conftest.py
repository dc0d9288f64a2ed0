"""Test set-up: no network, no W&B, small generated data."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["WANDB_MODE"] = "disabled"
os.environ.setdefault("WANDB_SILENT", "true")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
TINY_MODEL = REPO / "tests" / "configs" / "tiny_model.yaml"


@pytest.fixture(scope="session")
def shapes_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated shapes dataset in the image-folder layout (written once per session)."""
    from lit_seg.data.shapes import write_shapes_dataset

    root = tmp_path_factory.mktemp("shapes")
    write_shapes_dataset(root, {"train": 16, "val": 5, "test": 5}, size=48, seed=0)
    return root


def tiny_fit_args(root: Path, run_dir: Path, *extra: str) -> list[str]:
    """``lit-seg fit`` arguments for the tiny network on a shapes dataset at ``root``."""
    return [
        "fit", "--config", str(TINY_MODEL),
        "--data", "lit_seg.data.FolderDataModule", "--data.root", str(root),
        "--data.crop_size", "[32, 32]", "--data.batch_size", "4", "--data.num_workers", "0",
        "--trainer.default_root_dir", str(run_dir), *extra,
    ]


@pytest.fixture(scope="session")
def trained_run(shapes_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A briefly trained tiny network (read only): its folder holds config.yaml and checkpoints/last.ckpt."""
    from lit_seg.cli import run_cli

    run = tmp_path_factory.mktemp("run")
    run_cli(tiny_fit_args(shapes_root, run, "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
                          "--trainer.limit_val_batches", "1"))
    return run
