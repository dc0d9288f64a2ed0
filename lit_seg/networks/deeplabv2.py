"""DeepLabV2: a dilated ResNet whose class scores are the sum of parallel atrous 3x3 convs (ASPP)."""

from typing import Literal

from torch import Tensor, nn

from lit_seg.networks.backbones import timm_backbone
from lit_seg.networks.base import SegmentationNet
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
    several atrous rates, summed. The paper's fully connected CRF is post-processing and not part
    of the network.

    Args:
        num_classes: number of output classes.
        backbone: a timm model name with ``features_only`` support and at least five stages.
        output_stride: 8 (the paper) or 16; the later stages are dilated instead of strided.
        pretrained: ``None`` for random initialisation, ``"hub"`` for timm's pretrained weights, or
            a path to a weights file for the backbone.
        aspp: ``"L"`` for ASPP-L (rates 6, 12, 18, 24), ``"S"`` for ASPP-S (rates 2, 4, 8, 12), or
            ``"LargeFOV"`` for a single branch at rate 12.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        backbone: str = "resnet101",
        output_stride: int = 8,
        pretrained: str | None = None,
        aspp: Literal["L", "S", "LargeFOV"] = "L",
    ) -> None:
        features = timm_backbone(backbone, out_indices=(4,), output_stride=output_stride, pretrained=pretrained)
        head = _SummedASPP(features.feature_info.channels()[-1], num_classes, _ASPP_RATES[aspp])
        super().__init__(features, head)
