"""DeepLabV2: a dilated ResNet whose class scores are the sum of parallel atrous 3x3 convs (ASPP),
run on several scales of the input and fused by an element-wise max."""

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_seg.networks.backbones import timm_backbone
from lit_seg.networks.base import SegmentationNet, resize_to
from lit_seg.networks.registry import ReferenceCount, register_model

_ASPP_RATES: dict[str, tuple[int, ...]] = {"L": (6, 12, 18, 24), "S": (2, 4, 8, 12), "LargeFOV": (12,)}


class _SummedASPP(nn.Module):
    """DeepLabV2's ASPP: one 3x3 conv with bias straight to class scores per atrous rate, applied to
    the last feature map in parallel; the branch outputs are summed. The branches are initialised
    as in the official code (weights normal with std 0.01, biases zero).
    """

    def __init__(self, in_channels: int, num_classes: int, rates: tuple[int, ...]) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Conv2d(in_channels, num_classes, 3, padding=rate, dilation=rate) for rate in rates
        )
        for branch in self.branches:
            nn.init.normal_(branch.weight, std=0.01)
            nn.init.zeros_(branch.bias)

    def forward(self, features: list[Tensor]) -> Tensor:
        x = features[-1]
        return sum(branch(x) for branch in self.branches)


@register_model(
    "deeplabv2",
    paper="https://arxiv.org/abs/1606.00915",
    references=(ReferenceCount(44_048_532, 21, "ResNet-101, ASPP-L"),),
)
class DeepLabV2(SegmentationNet):
    """DeepLabV2 from `DeepLab: Semantic Image Segmentation with Deep Convolutional Nets, Atrous
    Convolution, and Fully Connected CRFs` (Chen et al., TPAMI 2017), https://arxiv.org/abs/1606.00915.

    A dilated ResNet (output stride 8) followed by ASPP: parallel 3x3 convs to class scores at
    several atrous rates, summed. The backbone is by default the released one (Caffe prototxts; the
    PyTorch port kazuto1011/deeplab-pytorch gives the same logits for the same weights): an MSRA/Caffe
    ResNet with every block of a dilated stage at the stage's rate. The release also runs the
    network on the input at scales 1, 0.75 and 0.5 (bilinear, ``align_corners=False``), resizes the
    logits of the smaller scales to those of scale 1 and fuses them by an element-wise max, in
    training and evaluation: ``multi_scale_inputs=(1.0, 0.75, 0.5)``, which the DeepLabV2 recipe
    sets (off by default: it adds a list of logits to the training outputs and costs 1.8x the
    compute of one scale). The paper's fully connected CRF is post-processing and not part of the
    network.

    Output: ``"out"``, the (fused) logits upsampled to the input size; in training with
    ``multi_scale_inputs`` also ``"scales"``, the logits of each input scale (in that order) at the
    input size, each trained with its own loss.

    Args:
        num_classes: number of output classes.
        backbone: a timm ResNet name (``features_only`` support, stages ``layer1``..``layer4``).
        output_stride: 8 (the paper) or 16; the later stages are dilated instead of strided.
        pretrained: ``None`` for random initialisation, ``"hub"`` for timm's pretrained weights, or
            a path to a weights file for the backbone.
        aspp: ``"L"`` for ASPP-L (rates 6, 12, 18, 24), ``"S"`` for ASPP-S (rates 2, 4, 8, 12), or
            ``"LargeFOV"`` for a single branch at rate 12.
        caffe_layout: the MSRA/Caffe ResNet layout of the release (stride in each block's first 1x1
            conv, ceil-mode stem max-pool; see :func:`~lit_seg.networks.backbones.timm_backbone`);
            False for the torchvision/timm layout that timm's pretrained weights expect.
        dilate_first_blocks: the first block of each dilated stage has the stage's rate, as
            released; False gives it the previous stage's rate (timm's and torchvision's dilation).
        multi_scale_inputs: the input scales whose logits are max-fused, 1.0 among them (the release:
            1, 0.75, 0.5, in training and evaluation); None runs the input at its own scale only.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        backbone: str = "resnet101",
        output_stride: int = 8,
        pretrained: str | None = None,
        aspp: Literal["L", "S", "LargeFOV"] = "L",
        caffe_layout: bool = True,
        dilate_first_blocks: bool = True,
        multi_scale_inputs: tuple[float, ...] | None = None,
    ) -> None:
        if multi_scale_inputs is not None and 1.0 not in multi_scale_inputs:
            raise ValueError(f"multi_scale_inputs is {multi_scale_inputs}; it must include 1.0, the scale fused at")
        features = timm_backbone(
            backbone,
            out_indices=(4,),
            output_stride=output_stride,
            pretrained=pretrained,
            dilate_first_blocks=dilate_first_blocks,
            caffe_layout=caffe_layout,
        )
        head = _SummedASPP(features.feature_info.channels()[-1], num_classes, _ASPP_RATES[aspp])
        super().__init__(features, head)
        self.multi_scale_inputs = tuple(multi_scale_inputs) if multi_scale_inputs else None

    def forward(self, images: Tensor) -> dict[str, Tensor | list[Tensor]]:
        if self.multi_scale_inputs is None:
            return super().forward(images)
        pyramid = [
            self.head(self.backbone(images if scale == 1.0 else _rescale(images, scale)))
            for scale in self.multi_scale_inputs
        ]
        full_size = pyramid[self.multi_scale_inputs.index(1.0)].shape[-2:]
        fused = torch.stack([resize_to(logits, full_size) for logits in pyramid]).amax(0)
        outputs = {"out": resize_to(fused, images.shape[-2:])}
        if self.training:
            outputs["scales"] = [resize_to(logits, images.shape[-2:]) for logits in pyramid]
        return outputs


def _rescale(images: Tensor, scale: float) -> Tensor:
    """The images resized by ``scale`` as the release does it: to ``floor(size * scale)``, with the
    sampling grid of that factor (not of the rounded size), bilinear without corner alignment."""
    return F.interpolate(images, scale_factor=scale, mode="bilinear", align_corners=False)
