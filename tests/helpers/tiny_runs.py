"""Paths of the repository and ``lit-seg fit`` arguments for the tiny test network."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
TINY_MODEL = REPO / "tests" / "helpers" / "configs" / "tiny_model.yaml"


def tiny_fit_args(root: Path, run_dir: Path, *extra: str) -> list[str]:
    """``lit-seg fit`` arguments for the tiny network on a shapes dataset at ``root``."""
    return [
        "fit", "--config", str(TINY_MODEL),
        "--data", "lit_seg.data.FolderDataModule", "--data.root", str(root),
        "--data.crop_size", "[32, 32]", "--data.batch_size", "4", "--data.num_workers", "0",
        "--trainer.default_root_dir", str(run_dir), *extra,
    ]
