"""``lit-seg quickstart``: trains a small model on the generated shapes dataset and says where
everything landed."""

import time
from importlib.resources import files
from pathlib import Path

from lit_seg.commands.cli import run_cli

CONFIG = files("lit_seg") / "configs" / "quickstart.yaml"


def main(argv: list[str] | None = None) -> None:
    """Runs ``lit-seg fit`` with the packaged quickstart config; extra arguments override it."""
    start = time.perf_counter()
    cli = run_cli(["fit", "--config", str(CONFIG), *(argv or [])])
    minutes = (time.perf_counter() - start) / 60
    trainer = cli.trainer
    metrics = trainer.callback_metrics
    checkpoint = trainer.checkpoint_callback
    log_dir = Path(trainer.log_dir)
    wandb_dirs = sorted(Path(trainer.default_root_dir, "wandb").glob("*run-*"))
    print(f"\nquickstart finished in {minutes:.1f} min")
    print(f"  final val/mIoU      {metrics['val/mIoU'].item():.4f}  (best {checkpoint.best_model_score.item():.4f})")
    print(f"  pixel accuracy      {metrics['val/pixel_acc'].item():.4f}")
    print(f"  best checkpoint     {checkpoint.best_model_path}")
    print(f"  last checkpoint     {Path(checkpoint.dirpath) / 'last.ckpt'}")
    print(f"  config              {log_dir / 'config.yaml'}")
    print(f"  metrics (CSV)       {log_dir / 'metrics.csv'}")
    print(f"  predictions (PNG)   {log_dir / 'predictions.png'}")
    if wandb_dirs:
        print(f"  W&B run             {wandb_dirs[-1]}")
