"""lit_seg's networks: ``create_model(name, num_classes, **options)`` and ``list_models()``."""

from lit_seg.models.base import SegmentationNet
from lit_seg.models.registry import create_model, get_model_class, list_models, register_model

# Each model file registers its names on import. (model imports)
from lit_seg.models import denseaspp, refinenet, smp  # noqa: F401
from lit_seg.models import fcn, segnet  # noqa: F401
from lit_seg.models import deeplabv2, deeplabv3, deeplabv3plus, pspnet  # noqa: F401

__all__ = ["SegmentationNet", "create_model", "get_model_class", "list_models", "register_model"]
