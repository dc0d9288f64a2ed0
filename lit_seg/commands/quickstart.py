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
    log_dir = Path(trainer.log_dir)
    # The progress bar has said where the checkpoints, the config and the W&B run are.
    print(f"\nquickstart finished in {minutes:.1f} min")
    best = trainer.checkpoint_callback.best_model_score.item()
    print(f"  final val/mIoU      {metrics['val/mIoU'].item():.4f}  (best {best:.4f})")
    print(f"  pixel accuracy      {metrics['val/pixel_acc'].item():.4f}")
    print(f"  metrics (CSV)       {log_dir / 'metrics.csv'}")
    print(f"  predictions (PNG)   {log_dir / 'predictions.png'}")
