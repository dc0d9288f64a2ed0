"""PSPNet: a dilated ResNet with a pyramid pooling module, and an auxiliary head on layer3."""

import torch
from torch import Tensor, nn
from torchvision.ops import Conv2dNormActivation

from lit_seg.networks.backbones import timm_backbone
from lit_seg.networks.base import SegmentationNet, resize_to
from lit_seg.networks.registry import ReferenceCount, register_model


class _PyramidPooling(nn.Module):
    """Average-pools the feature map to each bin size, reduces each pooled map to
    ``in_channels / len(bins)`` channels (1x1 conv without bias + BN + ReLU), upsamples it back
    bilinearly (with the given corner convention) and concatenates all of them with the input.
    """

    def __init__(self, in_channels: int, bins: tuple[int, ...], align_corners: bool) -> None:
        super().__init__()
        reduced = in_channels // len(bins)
        self.stages = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(bin_size), Conv2dNormActivation(in_channels, reduced, 1))
            for bin_size in bins
        )
        self.out_channels = in_channels + reduced * len(bins)
        self.align_corners = align_corners

    def forward(self, x: Tensor) -> Tensor:
        pooled = [resize_to(stage(x), x.shape[-2:], self.align_corners) for stage in self.stages]
        return torch.cat([x, *pooled], dim=1)


class _PSPHead(nn.Module):
    """Pyramid pooling on the last feature map, then 3x3 conv 512 + BN + ReLU, Dropout2d 0.1 and a
    1x1 conv to class scores.
    """

    def __init__(self, in_channels: int, num_classes: int, bins: tuple[int, ...], align_corners: bool) -> None:
        super().__init__()
        self.pyramid = _PyramidPooling(in_channels, bins, align_corners)
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
        ReferenceCount(67_949_930, 21, "ResNet-101 (7x7 stem), with aux", {"backbone": "resnet101"}),
        ReferenceCount(
            65_584_725, 21, "ResNet-101 (7x7 stem), without aux", {"backbone": "resnet101", "aux_head": False}
        ),
        ReferenceCount(48_960_000, 21, "ResNet-50 (7x7 stem), with aux", {"backbone": "resnet50"}),
        ReferenceCount(
            46_590_000, 21, "ResNet-50 (7x7 stem), without aux", {"backbone": "resnet50", "aux_head": False}
        ),
        # The released network (hszhao/semseg model/pspnet.py, deep-stem ResNet), counted from its code.
        ReferenceCount(68_073_706, 21, "ResNet-101 deep stem (released), with aux", exact=True),
        ReferenceCount(
            49_081_578, 21, "ResNet-50 deep stem (released), with aux", {"backbone": "resnet50s"}, exact=True
        ),
    ),
)
class PSPNet(SegmentationNet):
    """PSPNet from `Pyramid Scene Parsing Network` (Zhao et al., CVPR 2017),
    https://arxiv.org/abs/1612.01105.

    A dilated ResNet (output stride 8) whose last feature map goes through a pyramid pooling module
    (bins 1, 2, 3, 6) and a 3x3 conv before the classifier. In training an auxiliary head on layer3
    adds ``"aux"`` logits; the paper weighs its loss by 0.4, which the training module applies.

    The defaults compute what the authors' released code computes (hszhao/semseg
    ``model/pspnet.py``, ``model/resnet.py``): the deep-stem ResNet-101 (``"resnet101s"``: three 3x3
    convs of 64, 64 and 128 channels instead of one 7x7 conv), every block of layer3 dilated by 2
    and every block of layer4 by 4, first blocks included, and bilinear resizes with
    ``align_corners=True`` (the pyramid's upsampling and the final upsampling of the logits and aux
    logits), made for input sizes of 8k+1 pixels (crops of 473 or 713).

    Args:
        num_classes: number of output classes.
        backbone: a timm ResNet name with ``features_only`` support, e.g. ``"resnet50s"`` (deep stem,
            as released) or ``"resnet101"`` (torchvision's 7x7 stem).
        output_stride: 8 (the paper) or 16; the later stages are dilated instead of strided.
        pretrained: ``None`` for random initialisation, ``"hub"`` for timm's pretrained weights, or
            a path to a weights file for the backbone.
        bins: the output sizes of the pyramid's average pools.
        aux_head: whether to build the auxiliary head on layer3 (used only in training).
        dilate_first_blocks: the first block of each dilated stage has the stage's rate, as released;
            False gives it the previous stage's rate (timm's and torchvision's ``output_stride``).
        align_corners: the corner convention of every bilinear resize; True as released.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        backbone: str = "resnet101s",
        output_stride: int = 8,
        pretrained: str | None = None,
        bins: tuple[int, ...] = (1, 2, 3, 6),
        aux_head: bool = True,
        dilate_first_blocks: bool = True,
        align_corners: bool = True,
    ) -> None:
        features = timm_backbone(
            backbone,
            out_indices=(3, 4) if aux_head else (4,),
            output_stride=output_stride,
            pretrained=pretrained,
            dilate_first_blocks=dilate_first_blocks,
        )
        channels = features.feature_info.channels()
        super().__init__(
            features,
            _PSPHead(channels[-1], num_classes, bins, align_corners),
            _AuxHead(channels[0], num_classes) if aux_head else None,
            align_corners=align_corners,
        )
