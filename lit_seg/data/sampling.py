"""Training order and augmentation that depend only on (seed, epoch, sample), so that a resumed
run sees exactly the data of an uninterrupted one, whatever the number of loader workers."""

import os
from collections.abc import Iterator

import numpy as np
from torch.utils.data import DistributedSampler


class EpochSampler(DistributedSampler):
    """A shuffling sampler over this process's share that yields ``(epoch, index)``; the dataset
    seeds the sample's augmentation from them (see ``SegmentationDataset.__getitem__``)."""

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        epoch = self.epoch
        return ((epoch, index) for index in super().__iter__())


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A seed for one sample's augmentation in one epoch."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])


def run_seed() -> int | None:
    """The run's seed as ``seed_everything`` (``--seed_everything``) set it, or None when none was set."""
    seed = os.environ.get("PL_GLOBAL_SEED")
    return None if seed is None else int(seed)
