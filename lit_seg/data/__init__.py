"""lit_seg's datasets: one LightningDataModule per dataset, all on one base."""

from lit_seg.data.base import SegmentationDataModule
from lit_seg.data.folder import FolderDataModule
from lit_seg.data.io import DatasetError
from lit_seg.data.shapes import ShapesDataModule

# Dataset modules. (dataset imports)
from lit_seg.data.ade20k import ADE20KDataModule
from lit_seg.data.camvid import CamVidDataModule
from lit_seg.data.cityscapes import CityscapesDataModule
from lit_seg.data.nyudv2 import NYUDv2DataModule
from lit_seg.data.voc import VOCDataModule

__all__ = [
    "ADE20KDataModule", "CamVidDataModule", "CityscapesDataModule", "DatasetError", "FolderDataModule",
    "NYUDv2DataModule", "SegmentationDataModule", "ShapesDataModule", "VOCDataModule",
]
