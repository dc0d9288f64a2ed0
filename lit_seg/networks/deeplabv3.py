"""DeepLabV3: a dilated backbone with multi-grid and ASPP with image pooling (ASPP is shared with V3+)."""

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn
from torchvision.ops import Conv2dNormActivation

from lit_seg.networks.backbones import timm_backbone
from lit_seg.networks.base import SegmentationNet, resize_to
from lit_seg.networks.registry import ReferenceCount, register_model

# The multi-grid of the released ResNet models ("resnet_v1_*_beta" with --multi_grid 1 2 4 in
# tensorflow/models research/deeplab); the released Xception models set none.
_RESNET_MULTI_GRID = (1, 2, 4)


def _is_xception(backbone: str) -> bool:
    return "xception" in backbone


def deeplab_backbone(
    name: str,
    out_indices: tuple[int, ...],
    output_stride: int,
    pretrained: str | None,
    multi_grid: tuple[int, ...] | Literal["released"] | None,
) -> nn.Module:
    """A timm ResNet or aligned Xception dilated as in the released code (tensorflow/models
    research/deeplab, and its PyTorch port jfzhang95/pytorch-deeplab-xception).

    Once the output stride is reached every unit runs at the stage's rate: on a ResNet the first
    block of a dilated stage too (timm would give it the previous stage's rate); on Xception timm's
    rates are already the release's. ``multi_grid="released"`` is (1, 2, 4) on a ResNet and none on
    Xception; a tuple applies :func:`set_multi_grid`.

    Args:
        name: a timm ResNet (stages ``layer1``..``layer4``) or aligned Xception name.
        out_indices: the stages whose feature maps are returned.
        output_stride: 8 or 16.
        pretrained: as in :func:`lit_seg.networks.backbones.timm_backbone`.
        multi_grid: unit rates of the last stage's 3x3 convs, ``"released"`` or ``None`` (none).
    """
    xception = _is_xception(name)
    features = timm_backbone(
        name,
        out_indices=out_indices,
        output_stride=output_stride,
        pretrained=pretrained,
        dilate_first_blocks=not xception,
    )
    if multi_grid == "released":
        multi_grid = None if xception else _RESNET_MULTI_GRID
    if multi_grid is not None:
        set_multi_grid(features, multi_grid)
    return features


def released_separable_convs(backbone: str, separable_convs: bool | None) -> bool:
    """``separable_convs``, or for ``None`` the released setting of ``backbone``: True on aligned
    Xception (``aspp_with_separable_conv`` and ``decoder_use_separable_conv`` default True in
    tensorflow/models research/deeplab/common.py), False on a ResNet, as in the papers' ResNet-101 runs."""
    return _is_xception(backbone) if separable_convs is None else separable_convs


def init_xavier(module: nn.Module) -> None:
    """Glorot-uniform weights and zero biases for every convolution of ``module``: TF-slim's default
    initialisation of DeepLab's ASPP and decoder convolutions."""
    for conv in module.modules():
        if isinstance(conv, nn.Conv2d):
            nn.init.xavier_uniform_(conv.weight)
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)


def init_truncated_normal(conv: nn.Conv2d, std: float) -> None:
    """Weights from a normal of standard deviation ``std`` truncated at two deviations (TensorFlow's
    ``truncated_normal_initializer``), zero bias."""
    nn.init.trunc_normal_(conv.weight, std=std, a=-2 * std, b=2 * std)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def classifier_conv(in_channels: int, num_classes: int) -> nn.Conv2d:
    """The 1x1 convolution to class scores, initialised as released: truncated normal, std 0.01."""
    conv = nn.Conv2d(in_channels, num_classes, 1)
    init_truncated_normal(conv, 0.01)
    return conv


class SeparableConv(nn.Sequential):
    """DeepLab's separable 3x3 convolution: a depthwise 3x3 conv (dilated by ``rate``) + BN + ReLU,
    then a pointwise 1x1 conv + BN + ReLU, neither with bias (``split_separable_conv2d`` in
    tensorflow/models research/deeplab/model.py, weights from truncated normals of std 0.33 and 0.06).
    """

    def __init__(self, in_channels: int, out_channels: int, rate: int = 1) -> None:
        super().__init__(
            Conv2dNormActivation(in_channels, in_channels, 3, dilation=rate, groups=in_channels),
            Conv2dNormActivation(in_channels, out_channels, 1),
        )
        init_truncated_normal(self[0][0], 0.33)
        init_truncated_normal(self[1][0], 0.06)


def conv3x3(in_channels: int, out_channels: int, rate: int, separable: bool) -> nn.Module:
    """A 3x3 conv + BN + ReLU dilated by ``rate``: separable (see :class:`SeparableConv`) or standard
    (Glorot-initialised)."""
    if separable:
        return SeparableConv(in_channels, out_channels, rate)
    conv = Conv2dNormActivation(in_channels, out_channels, 3, dilation=rate)
    init_xavier(conv)
    return conv


class _ImagePooling(nn.Sequential):
    """ASPP's image-level branch: global average pool, 1x1 conv + BN + ReLU, upsampled back."""

    def __init__(self, in_channels: int, out_channels: int, align_corners: bool) -> None:
        super().__init__(nn.AdaptiveAvgPool2d(1), Conv2dNormActivation(in_channels, out_channels, 1))
        self.align_corners = align_corners

    def forward(self, x: Tensor) -> Tensor:
        return resize_to(super().forward(x), x.shape[-2:], self.align_corners)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling as in DeepLabV3: a 1x1 conv, one 3x3 conv per atrous rate and
    image pooling, each to ``out_channels`` + BN + ReLU; concatenated, then a 1x1 conv
    ``out_channels`` + BN + ReLU and, as in the official code, Dropout 0.1 (``keep_prob=0.9`` after the
    concat projection in tensorflow/models, research/deeplab/model.py). Convolutions start from the
    released initialisation (Glorot-uniform; see :class:`SeparableConv` for the separable ones).

    Args:
        in_channels: channels of the input feature map.
        atrous_rates: the rates of the 3x3 branches.
        out_channels: channels of every branch and of the output.
        separable: separable 3x3 branches (``aspp_with_separable_conv``) instead of standard ones.
        align_corners: the corner convention of the image-pooling upsampling (with a 1x1 pooled map
            both conventions give the same constant map).
    """

    def __init__(
        self,
        in_channels: int,
        atrous_rates: Sequence[int],
        out_channels: int = 256,
        *,
        separable: bool = False,
        align_corners: bool = True,
    ) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            [
                Conv2dNormActivation(in_channels, out_channels, 1),
                *(conv3x3(in_channels, out_channels, rate, separable) for rate in atrous_rates),
                _ImagePooling(in_channels, out_channels, align_corners),
            ]
        )
        self.project = Conv2dNormActivation(out_channels * len(self.branches), out_channels, 1)
        self.dropout = nn.Dropout(0.1)
        for module in (self.branches[0], self.branches[-1], self.project):
            init_xavier(module)

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
    largest dilation in that stage); rewriting ``dilation`` and ``padding`` together keeps every
    map's size and leaves the weights (pretrained or not) untouched. On a bottleneck
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
            f"which has {len(convs)}; pass multi_grid=None for none"
        )
    stage_rate = max(conv.dilation[0] for conv in convs)
    for conv, unit_rate in zip(convs, unit_rates, strict=True):
        if conv.stride != (1, 1) or conv.padding != conv.dilation:
            raise ValueError(f"multi-grid needs stride-1 convs padded by their dilation, got {conv}")
        conv.dilation = conv.padding = (stage_rate * unit_rate,) * 2


class _DeepLabV3Head(nn.Module):
    """ASPP on the last feature map, then a 1x1 conv to class scores."""

    def __init__(
        self, in_channels: int, num_classes: int, atrous_rates: Sequence[int], separable: bool, align_corners: bool
    ) -> None:
        super().__init__()
        self.aspp = ASPP(in_channels, atrous_rates, separable=separable, align_corners=align_corners)
        self.classifier = classifier_conv(256, num_classes)

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
    configuration at output stride 16. As in the released code (tensorflow/models research/deeplab;
    same logits as its PyTorch port jfzhang95/pytorch-deeplab-xception for the same weights), every
    block of a dilated stage runs at the stage's rate, every bilinear resize aligns corners, ASPP
    ends in Dropout 0.1 and the classifier starts from a truncated normal of std 0.01; multi-grid
    and separable convolutions default to the release's setting for the backbone.

    Args:
        num_classes: number of output classes.
        backbone: a timm ResNet (stages ``layer1``..``layer4``, e.g. ``"resnet101"``) or aligned
            Xception (``"xception65"``) name.
        output_stride: 16 (the paper's default) or 8; the later stages are dilated instead of
            strided.
        pretrained: ``None`` for random initialisation, ``"hub"`` for timm's pretrained weights, or
            a path to a weights file for the backbone.
        multi_grid: unit rates of the last stage's 3x3 convs, multiplied by the stage's rate (see
            :func:`set_multi_grid`); ``"released"`` for (1, 2, 4) on a ResNet and none on Xception;
            ``None`` for none: every conv at the stage's rate (needed for backbones whose last stage
            does not have three 3x3 convs, e.g. ResNet-18/34).
        atrous_rates: rates of ASPP's 3x3 branches; ``None`` for the paper's rates at this output
            stride (6, 12, 18 at 16; 12, 24, 36 at 8).
        separable_convs: separable 3x3 convs in ASPP (see :class:`SeparableConv`); ``None`` for the
            released setting: True on Xception, False on a ResNet.
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
        features = deeplab_backbone(backbone, (4,), output_stride, pretrained, multi_grid)
        rates = paper_atrous_rates(output_stride) if atrous_rates is None else atrous_rates
        separable = released_separable_convs(backbone, separable_convs)
        head = _DeepLabV3Head(features.feature_info.channels()[-1], num_classes, rates, separable, align_corners)
        super().__init__(features, head, align_corners=align_corners)
