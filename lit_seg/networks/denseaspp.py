"""DenseASPP: a DenseNet at output stride 8 followed by densely connected atrous conv layers."""

from collections import OrderedDict
from typing import Literal

import torch
from timm.layers import BatchNormAct2d
from timm.models.densenet import DenseTransition
from torch import Tensor, nn

from lit_seg.networks.backbones import timm_model
from lit_seg.networks.base import SegmentationNet
from lit_seg.networks.registry import ReferenceCount, register_model

DenseNetName = Literal["densenet121", "densenet161", "densenet169", "densenet201"]

# (d0, d1): the widths of each atrous layer's 1x1 and dilated 3x3 conv in the official configs.
_ASPP_WIDTHS: dict[str, tuple[int, int]] = {
    "densenet121": (128, 64),
    "densenet161": (512, 128),
    "densenet169": (336, 168),
    "densenet201": (480, 240),
}

# The official atrous layers use this BN momentum (PyTorch's convention: the weight of the new batch).
_ASPP_BN_MOMENTUM = 3e-4


def _stride_one_transition(transition: DenseTransition) -> DenseTransition:
    """Removes a transition's 2x2 average pool, leaving BN-ReLU-1x1 conv."""
    del transition.pool
    return transition


def _dilate(block: nn.Module, dilation: int) -> nn.Module:
    """Sets the dilation (and the padding that keeps the size) of every 3x3 conv in a dense block."""
    for module in block.modules():
        if isinstance(module, nn.Conv2d) and module.kernel_size == (3, 3):
            module.dilation, module.padding = (dilation, dilation), (dilation, dilation)
    return block


class _DilatedDenseNet(nn.Sequential):
    """timm's DenseNet features at output stride 8, returned as a one-element list.

    timm's DenseNet has no ``output_stride`` option, so its layers are adapted after construction
    (pretrained weights, if any, are loaded before): transitions 2 and 3 lose their average pool,
    the 3x3 convs of dense blocks 3 and 4 get dilation 2 and 4, and a stride-1 transition
    (BN-ReLU-1x1 conv halving the channels) is appended to block 4, followed by a new ``norm5``
    (plain BN, no ReLU) on the halved channels.
    """

    def __init__(self, name: DenseNetName, pretrained: str | None) -> None:
        densenet = timm_model(name, pretrained, num_classes=0)
        layers = OrderedDict(densenet.features.named_children())
        channels = layers.pop("norm5").num_features
        layers["transition2"] = _stride_one_transition(layers["transition2"])
        layers["transition3"] = _stride_one_transition(layers["transition3"])
        layers["denseblock3"] = _dilate(layers["denseblock3"], 2)
        layers["denseblock4"] = _dilate(layers["denseblock4"], 4)
        transition4 = DenseTransition(channels, channels // 2, BatchNormAct2d)
        layers["transition4"] = _stride_one_transition(transition4)
        layers["norm5"] = nn.BatchNorm2d(channels // 2)
        super().__init__(layers)
        self.out_channels = channels // 2

    def forward(self, images: Tensor) -> list[Tensor]:
        return [super().forward(images)]


class _DenseAtrousLayer(nn.Sequential):
    """[BN-]ReLU-1x1 conv to d0, BN-ReLU-3x3 conv with dilation ``rate`` to d1, Dropout2d 0.1."""

    def __init__(self, in_channels: int, widths: tuple[int, int], rate: int, leading_norm: bool) -> None:
        d0, d1 = widths
        layers: list[nn.Module] = []
        if leading_norm:
            layers.append(nn.BatchNorm2d(in_channels, momentum=_ASPP_BN_MOMENTUM))
        layers += [
            nn.ReLU(),
            nn.Conv2d(in_channels, d0, 1),
            nn.BatchNorm2d(d0, momentum=_ASPP_BN_MOMENTUM),
            nn.ReLU(),
            nn.Conv2d(d0, d1, 3, padding=rate, dilation=rate),
            nn.Dropout2d(0.1),
        ]
        super().__init__(*layers)


class _DenseASPPHead(nn.Module):
    """Densely connected atrous layers: each one reads the concatenation of the backbone output
    (rectified first where ``rectify_input``) and all previous layers' outputs (newest first, as in
    the official code); then Dropout2d 0.1 and a 1x1 conv to class scores. Convs are initialised
    with Kaiming-uniform weights, as officially.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        widths: tuple[int, int],
        rates: tuple[int, ...],
        rectify_input: bool,
    ) -> None:
        super().__init__()
        self.rectify_input = rectify_input
        self.layers = nn.ModuleList()
        for index, rate in enumerate(rates):
            self.layers.append(_DenseAtrousLayer(in_channels, widths, rate, leading_norm=index > 0))
            in_channels += widths[1]
        self.dropout = nn.Dropout2d(0.1)
        self.classifier = nn.Conv2d(in_channels, num_classes, 1)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_uniform_(module.weight)

    def forward(self, features: list[Tensor]) -> Tensor:
        x = features[-1].relu() if self.rectify_input else features[-1]
        for layer in self.layers:
            x = torch.cat([layer(x), x], dim=1)
        return self.classifier(self.dropout(x))


@register_model(
    "denseaspp",
    paper="https://openaccess.thecvf.com/content_cvpr_2018/html/Yang_DenseASPP_for_Semantic_CVPR_2018_paper.html",
    references=(
        ReferenceCount(35_395_427, 19, "DenseNet-161"),
        ReferenceCount(8_280_851, 19, "DenseNet-121", {"backbone": "densenet121"}),
    ),
)
class DenseASPP(SegmentationNet):
    """DenseASPP from `DenseASPP for Semantic Segmentation in Street Scenes` (Yang et al., CVPR 2018),
    http://openaccess.thecvf.com/content_cvpr_2018/html/Yang_DenseASPP_for_Semantic_CVPR_2018_paper.html
    (no arXiv version).

    A DenseNet at output stride 8 (transitions 2 and 3 keep the resolution, blocks 3 and 4 are
    dilated by 2 and 4, a stride-1 transition halves the channels before ``norm5``), followed by
    densely connected atrous conv layers whose outputs are all concatenated for the classifier.

    The defaults compute what the authors' released code computes (DeepMotionAIResearch/DenseASPP
    ``models/DenseASPP.py``): the backbone map enters the dense concatenation, and so every atrous
    layer and the classifier, rectified, because the first atrous layer's in-place ReLU rectifies
    it; and the final x8 upsampling maps corners onto corners (``align_corners=True``, what
    ``nn.Upsample`` did in the PyTorch 0.3 the release was trained with). For input sizes that are a
    multiple of 8 the released network's output has the input size; for other sizes it has 8 times
    the feature map's size, while this one is resized to the input size.

    Args:
        num_classes: number of output classes.
        backbone: the DenseNet, as a timm model name.
        pretrained: ``None`` for random initialisation, ``"hub"`` for timm's pretrained weights, or
            a path to a weights file of timm's DenseNet (its ``state_dict`` keys; a classifier is
            ignored).
        widths: (d0, d1), the widths of each atrous layer's 1x1 and 3x3 convs; ``None`` for the
            official values of the backbone (121: 128/64, 161: 512/128, 169: 336/168, 201: 480/240).
        rates: the dilation rates of the atrous layers, in order.
        rectify_backbone_output: apply ReLU to the backbone's output before the dense
            concatenation, as released; False concatenates the un-rectified ``norm5`` output (only
            the first atrous layer's own input is rectified).
        align_corners: the corner convention of the final upsampling; True as released.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        backbone: DenseNetName = "densenet161",
        pretrained: str | None = None,
        widths: tuple[int, int] | None = None,
        rates: tuple[int, ...] = (3, 6, 12, 18, 24),
        rectify_backbone_output: bool = True,
        align_corners: bool = True,
    ) -> None:
        features = _DilatedDenseNet(backbone, pretrained)
        widths = widths or _ASPP_WIDTHS[backbone]
        head = _DenseASPPHead(features.out_channels, num_classes, widths, rates, rectify_backbone_output)
        super().__init__(features, head, align_corners=align_corners)
