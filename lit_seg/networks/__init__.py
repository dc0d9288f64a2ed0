"""lit_seg's networks: ``create_model(name, num_classes, **options)`` and ``list_models()``."""

# Each network file registers its names on import.
from lit_seg.networks import deeplabv2, deeplabv3, deeplabv3plus, denseaspp, fcn, pspnet, refinenet, segnet, smp  # noqa: F401
from lit_seg.networks.base import SegmentationNet
from lit_seg.networks.registry import create_model, get_model_class, list_models, register_model

__all__ = ["SegmentationNet", "create_model", "get_model_class", "list_models", "register_model"]
