"""DeepLabV3+: the DeepLabV3 encoder with a decoder that fuses stride-4 features."""

from typing import Literal

import torch
from torch import Tensor, nn
from torchvision.ops import Conv2dNormActivation

from lit_seg.networks.base import SegmentationNet, resize_to
from lit_seg.networks.deeplabv3 import (
    ASPP,
    classifier_conv,
    conv3x3,
    deeplab_backbone,
    init_xavier,
    paper_atrous_rates,
    released_separable_convs,
)
from lit_seg.networks.registry import ReferenceCount, register_model


class _DeepLabV3PlusHead(nn.Module):
    """ASPP on the last feature map; the stride-4 feature map reduced to 48 channels (1x1 conv + BN +
    ReLU); the ASPP output upsampled to the stride-4 size and concatenated with it; two 3x3 convs
    256 + BN + ReLU (separable or standard) and a 1x1 conv to class scores.
    """

    def __init__(
        self,
        low_level_channels: int,
        in_channels: int,
        num_classes: int,
        atrous_rates: tuple[int, ...],
        separable: bool,
        align_corners: bool,
    ) -> None:
        super().__init__()
        self.aspp = ASPP(in_channels, atrous_rates, separable=separable, align_corners=align_corners)
        self.reduce = Conv2dNormActivation(low_level_channels, 48, 1)
        init_xavier(self.reduce)
        self.fuse = nn.Sequential(conv3x3(256 + 48, 256, 1, separable), conv3x3(256, 256, 1, separable))
        self.classifier = classifier_conv(256, num_classes)
        self.align_corners = align_corners

    def forward(self, features: list[Tensor]) -> Tensor:
        low_level, last = features
        low_level = self.reduce(low_level)
        encoded = resize_to(self.aspp(last), low_level.shape[-2:], self.align_corners)
        return self.classifier(self.fuse(torch.cat([encoded, low_level], dim=1)))


@register_model(
    "deeplabv3plus",
    paper="https://arxiv.org/abs/1802.02611",
    references=(ReferenceCount(59_344_309, 21, "ResNet-101, standard convolutions"),),
)
class DeepLabV3Plus(SegmentationNet):
    """DeepLabV3+ from `Encoder-Decoder with Atrous Separable Convolution for Semantic Image
    Segmentation` (Chen et al., ECCV 2018), https://arxiv.org/abs/1802.02611.

    The DeepLabV3 encoder (dilated backbone with multi-grid, ASPP with image pooling) and a decoder
    that upsamples its output to stride 4, fuses it with the backbone's stride-4 features reduced to
    48 channels, and refines with two 3x3 convs. As in the released code (tensorflow/models
    research/deeplab; same logits as its PyTorch port jfzhang95/pytorch-deeplab-xception for the same
    weights), every block of a dilated stage runs at the stage's rate, every bilinear resize aligns
    corners and the classifier starts from a truncated normal of std 0.01; multi-grid and separable
    convolutions (in ASPP and decoder) default to the release's setting for the backbone: multi-grid
    (1, 2, 4) and standard convs on a ResNet, no multi-grid and separable convs on Xception.

    Args:
        num_classes: number of output classes.
        backbone: a timm ResNet or aligned Xception name whose second feature level has stride 4:
            ``"resnet101"`` (layer1) or ``"xception65"`` (the input of entry-flow block 2's strided
            conv, as in the official code).
        output_stride: 16 (the paper's default) or 8; the later stages are dilated instead of
            strided.
        pretrained: ``None`` for random initialisation, ``"hub"`` for timm's pretrained weights, or
            a path to a weights file for the backbone.
        multi_grid: unit rates of the last stage's 3x3 convs, multiplied by the stage's rate (see
            :func:`lit_seg.networks.deeplabv3.set_multi_grid`); ``"released"`` for (1, 2, 4) on a
            ResNet and none on Xception (the paper's Xception-65 runs); ``None`` for none: every conv
            at the stage's rate.
        atrous_rates: rates of ASPP's 3x3 branches; ``None`` for the paper's rates at this output
            stride (6, 12, 18 at 16; 12, 24, 36 at 8).
        separable_convs: separable 3x3 convs in ASPP and decoder (see
            :class:`lit_seg.networks.deeplabv3.SeparableConv`); ``None`` for the released setting:
            True on Xception, False on a ResNet.
        align_corners: the corner convention of every bilinear resize; True as released.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        backbone: str = "resnet101",
        output_stride: int = 16,
        pretrained: str | None = None,
        multi_grid: tuple[int, ...] | Literal["released"] | None = "released",
        atrous_rates: tuple[int, ...] | None = None,
        separable_convs: bool | None = None,
        align_corners: bool = True,
    ) -> None:
        features = deeplab_backbone(backbone, (1, 4), output_stride, pretrained, multi_grid)
        if features.feature_info.reduction()[0] != 4:
            raise ValueError(f"{backbone}'s feature level 1 has stride {features.feature_info.reduction()[0]}, not 4")
        rates = paper_atrous_rates(output_stride) if atrous_rates is None else atrous_rates
        separable = released_separable_convs(backbone, separable_convs)
        low_level_channels, channels = features.feature_info.channels()
        head = _DeepLabV3PlusHead(low_level_channels, channels, num_classes, rates, separable, align_corners)
        super().__init__(features, head, align_corners=align_corners)
