"""In-memory datasets for tests of metrics and evaluation."""

import torch
from torch import Tensor
from torch.utils.data import Dataset

from lit_seg.data.datamodule import SegmentationDataModule


class ListDataset(Dataset):
    def __init__(self, images: list[Tensor], masks: list[Tensor]) -> None:
        self.images, self.masks = images, masks

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        return {"image": self.images[index], "mask": self.masks[index], "name": str(index)}


class ArrayDataModule(SegmentationDataModule):
    """Validation/test data given as tensors; goes through the real loaders and DDP sampler."""

    def __init__(self, images: list[Tensor], masks: list[Tensor], num_classes: int, eval_batch_size: int = 1) -> None:
        super().__init__(root=".", eval_batch_size=eval_batch_size, num_workers=0)
        self.class_names = tuple(f"class{i}" for i in range(num_classes))
        dataset = ListDataset(images, masks)
        self.datasets = {"train": dataset, "val": dataset, "test": dataset}

    def setup(self, stage: str) -> None:
        pass


def one_hot_predictions(num_classes: int, predictions: Tensor) -> Tensor:
    """``[C, H, W]`` logits whose argmax is ``predictions``."""
    return torch.nn.functional.one_hot(predictions, num_classes).permute(2, 0, 1).float()
