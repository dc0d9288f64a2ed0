"""Training-loader throughput: samples per second through the training transforms, per worker count."""

import argparse
import time
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader

from lit_seg.commands.data_stats import datamodule_class
from lit_seg.data.datamodule import SegmentationDataModule


def _forever(loader: DataLoader) -> Iterator[dict]:
    while True:
        yield from loader


def samples_per_second(datamodule: SegmentationDataModule, batches: int, warmup: int) -> float:
    """Iterates the training loader for ``warmup`` batches (worker start-up), then times ``batches``."""
    datamodule.datasets["train"] = datamodule.dataset("train", train=True)
    stream = _forever(datamodule.train_dataloader())
    for _ in range(warmup):
        next(stream)
    start = time.perf_counter()
    samples = sum(len(next(stream)["image"]) for _ in range(batches))
    return samples / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    """Prints samples/s, and samples/s per worker, for each worker count."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="DataModule class path, e.g. lit_seg.data.CamVidDataModule")
    parser.add_argument("--root", help="the dataset folder (default: the DataModule's)")
    parser.add_argument("--crop", type=int, nargs=2, default=(512, 512), metavar=("HEIGHT", "WIDTH"))
    parser.add_argument("--scale", type=float, nargs=2, default=(0.5, 2.0), metavar=("MIN", "MAX"))
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--batches", type=int, default=20, help="batches timed per worker count")
    parser.add_argument("--warmup", type=int, default=2, help="batches read before timing")
    args = parser.parse_args(argv)
    cls = datamodule_class(args.data)
    print(
        f"{cls.__name__}, crop {args.crop[0]}x{args.crop[1]}, scale {args.scale[0]}-{args.scale[1]}, "
        f"batch {args.batch_size}; workers=0 runs in this process with {torch.get_num_threads()} torch threads"
    )
    print(f"{'workers':>7}  {'samples/s':>9}  {'per worker':>10}")
    for workers in args.workers:
        options = {"root": args.root} if args.root else {}
        datamodule = cls(
            **options, batch_size=args.batch_size, num_workers=workers, crop_size=tuple(args.crop),
            scale_range=tuple(args.scale),
        )
        rate = samples_per_second(datamodule, args.batches, args.warmup)
        print(f"{workers:>7}  {rate:>9.1f}  {rate / max(workers, 1):>10.1f}")


if __name__ == "__main__":
    main()
