"""DeepLabV3+: the DeepLabV3 encoder with a decoder that fuses stride-4 features."""

import torch
from torch import Tensor, nn
from torchvision.ops import Conv2dNormActivation

from lit_seg.networks.backbones import timm_backbone
from lit_seg.networks.base import SegmentationNet, resize_to
from lit_seg.networks.deeplabv3 import ASPP, paper_atrous_rates, set_multi_grid
from lit_seg.networks.registry import ReferenceCount, register_model


class _DeepLabV3PlusHead(nn.Module):
    """ASPP on the last feature map; the stride-4 feature map reduced to 48 channels (1x1 conv + BN +
    ReLU); the ASPP output upsampled to the stride-4 size and concatenated with it; two 3x3 convs
    256 + BN + ReLU and a 1x1 conv to class scores.
    """

    def __init__(
        self, low_level_channels: int, in_channels: int, num_classes: int, atrous_rates: tuple[int, ...]
    ) -> None:
        super().__init__()
        self.aspp = ASPP(in_channels, atrous_rates)
        self.reduce = Conv2dNormActivation(low_level_channels, 48, 1)
        self.fuse = nn.Sequential(Conv2dNormActivation(256 + 48, 256, 3), Conv2dNormActivation(256, 256, 3))
        self.classifier = nn.Conv2d(256, num_classes, 1)

    def forward(self, features: list[Tensor]) -> Tensor:
        low_level, last = features
        low_level = self.reduce(low_level)
        encoded = resize_to(self.aspp(last), low_level.shape[-2:])
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
    48 channels, and refines with two 3x3 convs. Convs are standard, not separable (the paper's
    separable convs in ASPP and decoder are optional).

    Args:
        num_classes: number of output classes.
        backbone: a timm model name with ``features_only`` support whose second feature level has
            stride 4, e.g. ``"resnet101"`` (layer1) or ``"xception65"`` (aligned Xception-65, the
            input of entry-flow block 2's strided conv, as in the official code).
        output_stride: 16 (the paper's default) or 8; the later stages are dilated instead of
            strided.
        pretrained: ``None`` for random initialisation, ``"hub"`` for timm's pretrained weights, or
            a path to a weights file for the backbone.
        multi_grid: unit rates of the last stage's 3x3 convs, multiplied by the stage's rate (see
            :func:`lit_seg.networks.deeplabv3.set_multi_grid`); ``None`` keeps timm's rates (the
            paper's Xception-65 runs use none).
        atrous_rates: rates of ASPP's 3x3 branches; ``None`` for the paper's rates at this output
            stride (6, 12, 18 at 16; 12, 24, 36 at 8).
    """

    def __init__(
        self,
        num_classes: int,
        *,
        backbone: str = "resnet101",
        output_stride: int = 16,
        pretrained: str | None = None,
        multi_grid: tuple[int, ...] | None = (1, 2, 4),
        atrous_rates: tuple[int, ...] | None = None,
    ) -> None:
        features = timm_backbone(backbone, out_indices=(1, 4), output_stride=output_stride, pretrained=pretrained)
        if features.feature_info.reduction()[0] != 4:
            raise ValueError(f"{backbone}'s feature level 1 has stride {features.feature_info.reduction()[0]}, not 4")
        if multi_grid is not None:
            set_multi_grid(features, multi_grid)
        rates = paper_atrous_rates(output_stride) if atrous_rates is None else atrous_rates
        low_level_channels, channels = features.feature_info.channels()
        super().__init__(features, _DeepLabV3PlusHead(low_level_channels, channels, num_classes, rates))
