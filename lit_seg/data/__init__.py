"""lit_seg's data: one LightningDataModule per dataset (``datasets/``), all on one base, and the
shared reading, augmentation, caching and batching they use."""

from lit_seg.data.datamodule import SegmentationDataModule
from lit_seg.data.datasets.ade20k import ADE20KDataModule
from lit_seg.data.datasets.camvid import CamVidDataModule
from lit_seg.data.datasets.cityscapes import CityscapesDataModule
from lit_seg.data.datasets.folder import FolderDataModule
from lit_seg.data.datasets.nyudv2 import NYUDv2DataModule
from lit_seg.data.datasets.shapes import ShapesDataModule
from lit_seg.data.datasets.voc import VOCDataModule
from lit_seg.data.io import DatasetError

__all__ = [
    "ADE20KDataModule", "CamVidDataModule", "CityscapesDataModule", "DatasetError", "FolderDataModule",
    "NYUDv2DataModule", "SegmentationDataModule", "ShapesDataModule", "VOCDataModule",
]
