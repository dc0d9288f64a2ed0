"""Image files to segment with ``predict``: listing them, loading them, batching them."""

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset
from torchvision import tv_tensors

from lit_seg.data.batch import PredictBatch
from lit_seg.data.dataset import pad_stack
from lit_seg.data.io import DatasetError, read_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def list_images(inputs: Sequence[str | Path]) -> list[Path]:
    """The image files named by ``inputs``: a file as given, a folder's files with an image suffix
    (not recursive), in name order per folder."""
    paths = []
    for entry in map(Path, inputs):
        if entry.is_dir():
            paths += sorted(p for p in entry.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif entry.is_file():
            paths.append(entry)
        else:
            raise FileNotFoundError(f"predict input {entry} is neither a file nor a folder")
    if not paths:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {', '.join(map(str, inputs))}")
    return paths



class ImageFiles(Dataset):
    """Images to predict, read from files of any size and mode (grayscale and RGBA become RGB).

    A file that cannot be read gives ``{"path", "error"}`` instead of failing the loader, so the
    other files are still predicted.

    Args:
        paths: the image files.
        transform: the evaluation transform (to float, normalised) of a ``tv_tensors.Image``.
    """

    def __init__(self, paths: Sequence[Path], transform: Callable[[Tensor], Tensor]) -> None:
        self.paths = list(paths)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Tensor | str]:
        path = self.paths[index]
        try:
            image = read_image(path)
        except DatasetError as error:
            return {"path": str(path), "error": str(error)}
        tensor = self.transform(tv_tensors.Image(torch.from_numpy(image).permute(2, 0, 1)))
        return {"image": tensor.as_subclass(Tensor), "path": str(path)}


def predict_collate(samples: list[dict[str, Tensor | str]]) -> PredictBatch:
    """Stacks the readable images, zero-padded to the largest size when sizes differ (``"sizes"``
    then holds each one's ``(height, width)``), with their ``"path"``s; unreadable files go to
    ``"failed"`` as ``(path, error)`` pairs. ``"image"`` is empty when none was readable."""
    readable = [s for s in samples if "error" not in s]
    failed = [(s["path"], s["error"]) for s in samples if "error" in s]
    if not readable:
        return {"image": torch.zeros(0, 3, 1, 1), "path": [], "failed": failed}
    shapes = [tuple(s["image"].shape[-2:]) for s in readable]
    batch: PredictBatch = {
        "image": pad_stack([s["image"] for s in readable]), "path": [s["path"] for s in readable], "failed": failed,
    }
    if len(set(shapes)) > 1:
        batch["sizes"] = torch.tensor(shapes)
    return batch
