"""PSPNet: a dilated ResNet with a pyramid pooling module, and an auxiliary head on layer3."""

import torch
from torch import Tensor, nn
from torchvision.ops import Conv2dNormActivation

from lit_seg.networks.backbones import timm_backbone
from lit_seg.networks.base import SegmentationNet, resize_to
from lit_seg.networks.registry import ReferenceCount, register_model


class _PyramidPooling(nn.Module):
    """Average-pools the feature map to each bin size, reduces each pooled map to
    ``in_channels / len(bins)`` channels (1x1 conv + BN + ReLU), upsamples it back bilinearly and
    concatenates all of them with the input.
    """

    def __init__(self, in_channels: int, bins: tuple[int, ...]) -> None:
        super().__init__()
        reduced = in_channels // len(bins)
        self.stages = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(bin_size), Conv2dNormActivation(in_channels, reduced, 1))
            for bin_size in bins
        )
        self.out_channels = in_channels + reduced * len(bins)

    def forward(self, x: Tensor) -> Tensor:
        pooled = [resize_to(stage(x), x.shape[-2:]) for stage in self.stages]
        return torch.cat([x, *pooled], dim=1)


class _PSPHead(nn.Module):
    """Pyramid pooling on the last feature map, then 3x3 conv 512 + BN + ReLU, Dropout2d 0.1 and a
    1x1 conv to class scores.
    """

    def __init__(self, in_channels: int, num_classes: int, bins: tuple[int, ...]) -> None:
        super().__init__()
        self.pyramid = _PyramidPooling(in_channels, bins)
        self.bottleneck = Conv2dNormActivation(self.pyramid.out_channels, 512, 3)
        self.dropout = nn.Dropout2d(0.1)
        self.classifier = nn.Conv2d(512, num_classes, 1)

    def forward(self, features: list[Tensor]) -> Tensor:
        return self.classifier(self.dropout(self.bottleneck(self.pyramid(features[-1]))))


class _AuxHead(nn.Module):
    """The auxiliary classifier on layer3 (the first requested feature map): 3x3 conv 256 + BN +
    ReLU, Dropout2d 0.1 and a 1x1 conv to class scores.
    """

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv = Conv2dNormActivation(in_channels, 256, 3)
        self.dropout = nn.Dropout2d(0.1)
        self.classifier = nn.Conv2d(256, num_classes, 1)

    def forward(self, features: list[Tensor]) -> Tensor:
        return self.classifier(self.dropout(self.conv(features[0])))


@register_model(
    "pspnet",
    paper="https://arxiv.org/abs/1612.01105",
    references=(
        ReferenceCount(67_949_930, 21, "ResNet-101, with aux"),
        ReferenceCount(65_584_725, 21, "ResNet-101, without aux", {"aux_head": False}),
        ReferenceCount(48_960_000, 21, "ResNet-50, with aux", {"backbone": "resnet50"}),
        ReferenceCount(46_590_000, 21, "ResNet-50, without aux", {"backbone": "resnet50", "aux_head": False}),
    ),
)
class PSPNet(SegmentationNet):
    """PSPNet from `Pyramid Scene Parsing Network` (Zhao et al., CVPR 2017),
    https://arxiv.org/abs/1612.01105.

    A dilated ResNet (output stride 8) whose last feature map goes through a pyramid pooling module
    (bins 1, 2, 3, 6) and a 3x3 conv before the classifier. In training an auxiliary head on layer3
    adds ``"aux"`` logits; the paper weighs its loss by 0.4, which the training module applies.
    ``"resnet101"`` has the torchvision-style 7x7 stem of the reference parameter count; timm's
    ``"resnet101s"`` has the paper's deep stem of three 3x3 convs (64, 64, 128 channels).

    Args:
        num_classes: number of output classes.
        backbone: a timm model name with ``features_only`` support and at least five stages.
        output_stride: 8 (the paper) or 16; the later stages are dilated instead of strided.
        pretrained: ``None`` for random initialisation, ``"hub"`` for timm's pretrained weights, or
            a path to a weights file for the backbone.
        bins: the output sizes of the pyramid's average pools.
        aux_head: whether to build the auxiliary head on layer3 (used only in training).
    """

    def __init__(
        self,
        num_classes: int,
        *,
        backbone: str = "resnet101",
        output_stride: int = 8,
        pretrained: str | None = None,
        bins: tuple[int, ...] = (1, 2, 3, 6),
        aux_head: bool = True,
    ) -> None:
        features = timm_backbone(
            backbone,
            out_indices=(3, 4) if aux_head else (4,),
            output_stride=output_stride,
            pretrained=pretrained,
        )
        channels = features.feature_info.channels()
        super().__init__(
            features,
            _PSPHead(channels[-1], num_classes, bins),
            _AuxHead(channels[0], num_classes) if aux_head else None,
        )
