"""lit_seg's networks: ``create_model(name, num_classes, **options)`` and ``list_models()``."""

from lit_seg.models.base import SegmentationNet
from lit_seg.models.registry import create_model, get_model_class, list_models, register_model

# Each model file registers its names on import. (model imports)

__all__ = ["SegmentationNet", "create_model", "get_model_class", "list_models", "register_model"]
