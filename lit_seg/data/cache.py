"""Decoded uint8 images and masks, cached once in memory or in memory-mapped ``.npy`` files on disk."""

import hashlib
import json
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from lit_seg.data.dataset import SegmentationDataset
from lit_seg.data.io import open_image

_FILES = ("images.npy", "masks.npy", "index.npy")


class DecodedCache:
    """Every sample of a dataset decoded once: images and masks are stored back to back in two flat
    uint8 arrays, and ``index`` holds each sample's ``(height, width, image offset, mask offset)``.

    Build one with :meth:`in_memory` or :meth:`on_disk`; ``cache[i]`` returns sample ``i`` as the
    dataset's ``load`` would (validated, label-mapped), as fresh writable arrays.
    """

    def __init__(self, images: np.ndarray, masks: np.ndarray, index: np.ndarray) -> None:
        self.images = images
        self.masks = masks
        self.index = index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        height, width, image_offset, mask_offset = (int(v) for v in self.index[i])
        image = self.images[image_offset : image_offset + height * width * 3].reshape(height, width, 3)
        mask = self.masks[mask_offset : mask_offset + height * width].reshape(height, width)
        return np.array(image), np.array(mask)

    @classmethod
    def in_memory(cls, dataset: SegmentationDataset, threads: int | None = None) -> "DecodedCache":
        """Decodes every sample of ``dataset`` into memory (``threads`` decoders; default: one per core).

        Built before the loader's workers start, the arrays are shared with them copy-on-write.
        """
        index = _layout(dataset)
        cache = cls(np.empty(_total(index, 3), np.uint8), np.empty(_total(index, 1), np.uint8), index)
        cache._fill(dataset, threads)
        return cache

    @classmethod
    def on_disk(cls, dataset: SegmentationDataset, directory: Path, threads: int | None = None) -> "DecodedCache":
        """Memory-maps the cache of ``dataset`` under ``directory``, writing it first if it is absent.

        The folder's name is a digest of the sample files (paths, sizes, modification times) and
        the label mapping, so a changed dataset gets a fresh cache. The files are written to a
        temporary folder and renamed into place, so a reader never sees a half-written cache.
        """
        folder = Path(directory) / _digest(dataset)
        if not all((folder / name).is_file() for name in _FILES):
            folder.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".building-", dir=folder.parent))
            index = _layout(dataset)
            np.save(staging / "index.npy", index)
            images = np.lib.format.open_memmap(staging / "images.npy", "w+", np.uint8, (_total(index, 3),))
            masks = np.lib.format.open_memmap(staging / "masks.npy", "w+", np.uint8, (_total(index, 1),))
            cls(images, masks, index)._fill(dataset, threads)
            images.flush()
            masks.flush()
            del images, masks
            try:
                staging.rename(folder)
            except OSError:  # another process finished the same cache first
                shutil.rmtree(staging)
        return cls(*(np.load(folder / name, mmap_mode="r") for name in _FILES))

    def _fill(self, dataset: SegmentationDataset, threads: int | None) -> None:
        """Decodes the samples in parallel (PIL releases the GIL while decoding) into place."""

        def decode(i: int) -> None:
            image, mask = dataset.load(i)
            height, width, image_offset, mask_offset = (int(v) for v in self.index[i])
            if image.shape[:2] != (height, width):
                raise ValueError(f"{dataset.pairs[i][0]} decoded to {image.shape[:2]}, its header says {(height, width)}")
            self.images[image_offset : image_offset + image.size] = image.ravel()
            self.masks[mask_offset : mask_offset + mask.size] = mask.ravel()

        with ThreadPoolExecutor(threads or os.cpu_count() or 1) as pool:
            list(pool.map(decode, range(len(dataset))))


class CachedDataset(SegmentationDataset):
    """A :class:`SegmentationDataset` that reads decoded samples from a :class:`DecodedCache`
    instead of decoding files; transforms, seeding and names are unchanged.

    Args:
        dataset: the dataset whose samples ``cache`` holds.
        cache: its decoded samples.
    """

    def __init__(self, dataset: SegmentationDataset, cache: DecodedCache) -> None:
        vars(self).update(vars(dataset))  # a shallow copy of the dataset's settings, as copy.copy takes them
        self.cache = cache

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.cache[index]


def _layout(dataset: SegmentationDataset) -> np.ndarray:
    """Each sample's ``(height, width, image offset, mask offset)``, sizes read from image headers."""
    sizes = []
    for image_path, _ in dataset.pairs:
        with open_image(image_path) as image:
            sizes.append((image.height, image.width))
    index = np.zeros((len(sizes), 4), np.int64)
    if sizes:
        index[:, :2] = sizes
        pixels = index[:, 0] * index[:, 1]
        index[1:, 2] = np.cumsum(3 * pixels)[:-1]
        index[1:, 3] = np.cumsum(pixels)[:-1]
    return index


def _total(index: np.ndarray, channels: int) -> int:
    return int((index[:, 0] * index[:, 1]).sum()) * channels


def _digest(dataset: SegmentationDataset) -> str:
    """A name for the cache of ``dataset``: changes with any sample file or the label mapping."""
    stats = [(path, path.stat()) for pair in dataset.pairs for path in pair]
    files = [(str(path), stat.st_size, stat.st_mtime_ns) for path, stat in stats]
    label_map = None if dataset.label_map is None else np.asarray(dataset.label_map).tolist()
    key = json.dumps([files, label_map, dataset.num_classes, dataset.ignore_index])
    return hashlib.sha256(key.encode()).hexdigest()[:16]
