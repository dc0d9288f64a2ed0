"""lit_seg: semantic segmentation with PyTorch Lightning.

The public API, imported on first use (so that ``import lit_seg`` and ``lit-seg --help`` stay
fast): ``SegmentationModule``, ``create_model``, ``list_models`` and the DataModules.
"""

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "SegmentationModule": "lit_seg.training.module",
    "create_model": "lit_seg.networks",
    "list_models": "lit_seg.networks",
    "SegmentationDataModule": "lit_seg.data",
    "ADE20KDataModule": "lit_seg.data",
    "CamVidDataModule": "lit_seg.data",
    "CityscapesDataModule": "lit_seg.data",
    "FolderDataModule": "lit_seg.data",
    "NYUDv2DataModule": "lit_seg.data",
    "ShapesDataModule": "lit_seg.data",
    "VOCDataModule": "lit_seg.data",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lit_seg' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
