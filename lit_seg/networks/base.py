"""The shared anatomy of lit_seg's networks: backbone + head (+ optional auxiliary head).

Output contract of every network in lit_seg: ``forward(images)`` returns a dict with
``"out"``: logits of shape ``[B, num_classes, H, W]`` at the input's height and width, and,
only while training and only where the network has an auxiliary head, ``"aux"``: auxiliary
logits of the same shape; and, only while training DeepLabV2 with ``multi_scale_inputs``,
``"scales"``: a list with the logits of each input scale, each of the same shape.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def resize_to(logits: Tensor, size: torch.Size | tuple[int, int], align_corners: bool = False) -> Tensor:
    """Bilinearly resizes ``logits`` to ``size`` (a no-op when it already has that size).

    ``align_corners=True`` maps corner pixels onto corner pixels, as the released Caffe, TensorFlow
    and early PyTorch code of several papers resizes (with crops of size 8k+1 in mind).
    """
    if logits.shape[-2:] == tuple(size):
        return logits
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=align_corners)


class SegmentationNet(nn.Module):
    """A backbone producing a list of feature maps, a head mapping them to logits, and an optional
    auxiliary head used only in training. Logits are upsampled to the input size.

    Subclasses build ``backbone``, ``head`` and ``aux_head`` in ``__init__`` and call
    ``super().__init__(backbone, head, aux_head)``; they override ``forward`` only where their
    paper needs it (FCN's cropping, SegNet's pooling indices, DeepLabV2's multi-scale inputs,
    RefineNet's input scale). ``align_corners`` is the corner
    convention of the final upsampling (see :func:`resize_to`).
    """

    def __init__(
        self, backbone: nn.Module, head: nn.Module, aux_head: nn.Module | None = None, *, align_corners: bool = False
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.aux_head = aux_head
        self.align_corners = align_corners

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        size = images.shape[-2:]
        features = self.backbone(images)
        outputs = {"out": resize_to(self.head(features), size, self.align_corners)}
        if self.training and self.aux_head is not None:
            outputs["aux"] = resize_to(self.aux_head(features), size, self.align_corners)
        return outputs
