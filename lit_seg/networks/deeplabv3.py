"""DeepLabV3: a dilated ResNet with multi-grid and ASPP with image pooling (ASPP is shared with V3+)."""

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torchvision.ops import Conv2dNormActivation

from lit_seg.networks.backbones import timm_backbone
from lit_seg.networks.base import SegmentationNet, resize_to
from lit_seg.networks.registry import ReferenceCount, register_model


class _ImagePooling(nn.Sequential):
    """ASPP's image-level branch: global average pool, 1x1 conv + BN + ReLU, upsampled back."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(nn.AdaptiveAvgPool2d(1), Conv2dNormActivation(in_channels, out_channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        return resize_to(super().forward(x), x.shape[-2:])


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling as in DeepLabV3: a 1x1 conv, one 3x3 conv per atrous rate and
    image pooling, each to ``out_channels`` + BN + ReLU; concatenated, then a 1x1 conv
    ``out_channels`` + BN + ReLU and, as in the official code, Dropout 0.1 (``keep_prob=0.9`` after the
    concat projection in tensorflow/models, research/deeplab/model.py).

    Args:
        in_channels: channels of the input feature map.
        atrous_rates: the rates of the 3x3 branches.
        out_channels: channels of every branch and of the output.
    """

    def __init__(self, in_channels: int, atrous_rates: Sequence[int], out_channels: int = 256) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            [
                Conv2dNormActivation(in_channels, out_channels, 1),
                *(Conv2dNormActivation(in_channels, out_channels, 3, dilation=rate) for rate in atrous_rates),
                _ImagePooling(in_channels, out_channels),
            ]
        )
        self.project = Conv2dNormActivation(out_channels * len(self.branches), out_channels, 1)
        self.dropout = nn.Dropout(0.1)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.project(torch.cat([branch(x) for branch in self.branches], dim=1)))


def paper_atrous_rates(output_stride: int) -> tuple[int, ...]:
    """The paper's ASPP rates: (6, 12, 18) at output stride 16, doubled to (12, 24, 36) at 8."""
    if output_stride not in (8, 16):
        raise ValueError(f"DeepLab's atrous rates are defined for output stride 8 or 16, got {output_stride}")
    return tuple(rate * 16 // output_stride for rate in (6, 12, 18))


def set_multi_grid(backbone: nn.Module, unit_rates: Sequence[int]) -> None:
    """Applies DeepLabV3's multi-grid to a timm ``features_only`` backbone, in place.

    The i-th 3x3 conv of the last stage gets dilation ``unit_rates[i]`` times the stage's rate (the
    largest dilation timm gave that stage). timm dilates every unit of the stage alike, except the
    first, which keeps the previous stage's rate; rewriting ``dilation`` and ``padding`` together
    keeps every map's size and leaves the weights (pretrained or not) untouched. On a bottleneck
    ResNet these convs are ``conv2`` of the three units of ``layer4``; on aligned Xception, the
    three depthwise convs of the last exit-flow block (the official code's ``unit_rate_list``).

    Args:
        backbone: a timm feature extractor whose last child is the last requested stage.
        unit_rates: one rate per 3x3 conv of that stage, e.g. ``(1, 2, 4)``.
    """
    stage = list(backbone.children())[-1]
    convs = [m for m in stage.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    if len(convs) != len(unit_rates):
        raise ValueError(
            f"multi_grid {tuple(unit_rates)} needs one rate per 3x3 conv of the backbone's last stage, "
            f"which has {len(convs)}; pass multi_grid=None to keep the backbone's own rates"
        )
    stage_rate = max(conv.dilation[0] for conv in convs)
    for conv, unit_rate in zip(convs, unit_rates, strict=True):
        if conv.stride != (1, 1) or conv.padding != conv.dilation:
            raise ValueError(f"multi-grid needs stride-1 convs padded by their dilation, got {conv}")
        conv.dilation = conv.padding = (stage_rate * unit_rate,) * 2


class _DeepLabV3Head(nn.Module):
    """ASPP on the last feature map, then a 1x1 conv to class scores."""

    def __init__(self, in_channels: int, num_classes: int, atrous_rates: Sequence[int]) -> None:
        super().__init__()
        self.aspp = ASPP(in_channels, atrous_rates)
        self.classifier = nn.Conv2d(256, num_classes, 1)

    def forward(self, features: list[Tensor]) -> Tensor:
        return self.classifier(self.aspp(features[-1]))


@register_model(
    "deeplabv3",
    paper="https://arxiv.org/abs/1706.05587",
    references=(ReferenceCount(58_040_661, 21, "ResNet-101"),),
)
class DeepLabV3(SegmentationNet):
    """DeepLabV3 from `Rethinking Atrous Convolution for Semantic Image Segmentation` (Chen et al.,
    2017), https://arxiv.org/abs/1706.05587.

    A dilated ResNet with multi-grid rates in its last stage, followed by ASPP with image pooling
    and a 1x1 classifier; the paper's best single model (77.21 mIoU on VOC2012 val) is this
    configuration at output stride 16.

    Args:
        num_classes: number of output classes.
        backbone: a timm model name with ``features_only`` support and at least five stages.
        output_stride: 16 (the paper's default) or 8; the later stages are dilated instead of
            strided.
        pretrained: ``None`` for random initialisation, ``"hub"`` for timm's pretrained weights, or
            a path to a weights file for the backbone.
        multi_grid: unit rates of the last stage's 3x3 convs, multiplied by the stage's rate (see
            :func:`set_multi_grid`); ``None`` keeps timm's rates (needed for backbones whose last
            stage does not have exactly that many 3x3 convs, e.g. ResNet-18/34).
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
        features = timm_backbone(backbone, out_indices=(4,), output_stride=output_stride, pretrained=pretrained)
        if multi_grid is not None:
            set_multi_grid(features, multi_grid)
        rates = paper_atrous_rates(output_stride) if atrous_rates is None else atrous_rates
        super().__init__(features, _DeepLabV3Head(features.feature_info.channels()[-1], num_classes, rates))
