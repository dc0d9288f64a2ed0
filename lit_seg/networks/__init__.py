"""lit_seg's networks: ``create_model(name, num_classes, **options)`` and ``list_models()``."""

from lit_seg.networks.base import SegmentationNet
from lit_seg.networks.registry import (
    ReferenceCount,
    create_model,
    get_model_class,
    list_models,
    model_entry,
    register_model,
)

# Each network file registers its names on import; this order is the order of the paper models.
# isort: off
from lit_seg.networks import fcn, segnet, pspnet, deeplabv2, deeplabv3, deeplabv3plus, denseaspp, refinenet  # noqa: F401
from lit_seg.networks import smp  # noqa: F401
# isort: on

__all__ = [
    "ReferenceCount", "SegmentationNet", "create_model", "get_model_class", "list_models", "model_entry", "register_model",
]
