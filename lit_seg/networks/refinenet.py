"""RefineNet: a ResNet whose four stages are refined from coarse to fine by cascaded RefineNet blocks."""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_seg.networks.backbones import timm_backbone
from lit_seg.networks.base import SegmentationNet, resize_to
from lit_seg.networks.registry import ReferenceCount, register_model

# Widths of the paths from the backbone stages at strides 4, 8, 16 and 32.
_PATH_WIDTHS = (256, 256, 256, 512)

# Every RefineNet block ends in this many RCUs in the released model (and in the reference count).
_OUTPUT_RCUS = 3


def _conv3x3(in_channels: int, out_channels: int, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias)


class _ResidualConvUnit(nn.Module):
    """RCU: ReLU -> 3x3 conv (with bias) -> ReLU -> 3x3 conv (without), plus the input; no BN."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = _conv3x3(channels, channels, bias=True)
        self.conv2 = _conv3x3(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class _ChainedResidualPooling(nn.Module):
    """ReLU, then a chain of blocks of a 5x5 max-pool of stride 1 and a 3x3 conv, each block's output
    added to the running sum; the conv comes before the pool in the released "improved" block.

    Args:
        channels: channels of the input and of every block.
        blocks: number of [pool, conv] blocks.
        conv_before_pool: [conv -> pool] blocks (guosheng/refinenet ``do_gen_block_convbeforepool``)
            instead of [pool -> conv] (the paper's figure and ``do_gen_block``).
    """

    def __init__(self, channels: int, blocks: int, conv_before_pool: bool) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(5, stride=1, padding=2)
        self.convs = nn.ModuleList(_conv3x3(channels, channels) for _ in range(blocks))
        self.conv_before_pool = conv_before_pool

    def forward(self, x: Tensor) -> Tensor:
        x = path = F.relu(x)
        for conv in self.convs:
            path = self.pool(conv(path)) if self.conv_before_pool else conv(self.pool(path))
            x = x + path
        return x


class _RefineNetBlock(nn.Module):
    """Multi-resolution fusion of the stage's path with the coarser block's output (a 3x3 conv on
    each, the coarser one bilinearly upsampled, summed), chained residual pooling, and output RCUs.
    The deepest block has no coarser input and no fusion.
    """

    def __init__(self, width: int, coarser_width: int | None, crp_blocks: int, crp_conv_before_pool: bool) -> None:
        super().__init__()
        self.fuse = None
        if coarser_width is not None:
            self.fuse = nn.ModuleList([_conv3x3(width, width), _conv3x3(coarser_width, width)])
        self.pool = _ChainedResidualPooling(width, crp_blocks, crp_conv_before_pool)
        self.out = nn.Sequential(*(_ResidualConvUnit(width) for _ in range(_OUTPUT_RCUS)))

    def forward(self, path: Tensor, coarser: Tensor | None) -> Tensor:
        if self.fuse is not None:
            coarser = self.fuse[1](coarser)
            coarser = F.interpolate(coarser, size=path.shape[-2:], mode="bilinear", align_corners=True)
            path = self.fuse[0](path) + coarser
        return self.out(self.pool(path))


class _RefineNetHead(nn.Module):
    """Four paths (3x3 conv to the path width, two RCUs) refined from the deepest to the finest,
    then dropout and a 3x3 conv classifier at stride 4. Dropout also acts on the layer3 and layer4
    features, as in the released model (guosheng/refinenet ``main/gen_network_featnet_resnet.m``:
    dropout on the ResNet outputs wider than 512; ``gen_network_loss_group.m``: before the classifier).
    Every convolution starts from a normal of std 0.01 with zero bias, as the release initialises
    them (``My_net_util.m`` and ``gen_network_loss_group.m``: ``0.01 * randn``).
    """

    def __init__(
        self, in_channels: list[int], num_classes: int, crp_blocks: int, crp_conv_before_pool: bool, dropout: float
    ) -> None:
        super().__init__()
        self.adapters = nn.ModuleList(
            nn.Sequential(_conv3x3(channels, width), _ResidualConvUnit(width), _ResidualConvUnit(width))
            for channels, width in zip(in_channels, _PATH_WIDTHS)
        )
        coarser_widths = (*_PATH_WIDTHS[1:], None)
        self.blocks = nn.ModuleList(
            _RefineNetBlock(width, coarser_width, crp_blocks, crp_conv_before_pool)
            for width, coarser_width in zip(_PATH_WIDTHS, coarser_widths)
        )
        self.dropout = nn.Dropout(dropout)
        self.classifier = _conv3x3(_PATH_WIDTHS[0], num_classes, bias=True)
        for conv in self.modules():
            if isinstance(conv, nn.Conv2d):
                nn.init.normal_(conv.weight, std=0.01)
                if conv.bias is not None:
                    nn.init.zeros_(conv.bias)

    def forward(self, features: list[Tensor]) -> Tensor:
        layer1, layer2, layer3, layer4 = features
        features = [layer1, layer2, self.dropout(layer3), self.dropout(layer4)]
        x = None
        for index in reversed(range(len(features))):
            x = self.blocks[index](self.adapters[index](features[index]), x)
        return self.classifier(self.dropout(x))


@register_model(
    "refinenet",
    paper="https://arxiv.org/abs/1611.06612",
    references=(
        ReferenceCount(118_052_437, 21, "ResNet-101"),
        ReferenceCount(99_060_000, 21, "ResNet-50", {"backbone": "resnet50"}),
        ReferenceCount(133_700_000, 21, "ResNet-152", {"backbone": "resnet152"}),
    ),
)
class RefineNet(SegmentationNet):
    """4-cascaded RefineNet from `RefineNet: Multi-Path Refinement Networks for High-Resolution
    Semantic Segmentation` (Lin et al., CVPR 2017), https://arxiv.org/abs/1611.06612.

    The four ResNet stages (strides 4, 8, 16, 32) each get a path of 512 (deepest) or 256 channels;
    RefineNet blocks fuse each path with the coarser block's output, pool it with chained residual
    pooling and end in three RCUs, as in the released model (whose parameter count this matches).
    The logits come at stride 4 and are upsampled to the input size. By default the chained residual
    pooling is the "improved" block of the released training code (guosheng/refinenet
    ``main/gen_network_pool_block.m``: conv before pool); with ``crp_conv_before_pool=False`` the
    network computes the same logits as the PyTorch port of the released VOC model
    (DrSleep/refinenet-pytorch) for the same weights. The released code also feeds the ResNet the
    image upscaled 1.2x; ``input_scale`` does that (default 1, the image as given).

    Args:
        num_classes: number of classes.
        backbone: a timm ResNet name (``"resnet50"``, ``"resnet101"``, ``"resnet152"``, or smaller
            ones for tests) with ``features_only`` support.
        pretrained: ``None`` for random initialisation, ``"hub"`` for timm's pretrained weights, or
            a path to a weights file for the backbone.
        crp_blocks: number of blocks in each chained residual pooling (the paper draws 2, the
            released model has 4).
        crp_conv_before_pool: blocks of [3x3 conv -> 5x5 max-pool] as in the released training code
            and its later models (NYUDv2, PASCAL-Context, SUN RGB-D, ADE20K, Person-Part), or
            [max-pool -> conv] as in the paper and the released VOC and Cityscapes models.
        dropout: dropout probability on layer3, layer4 and before the classifier.
        input_scale: factor by which the image is bicubically resized before the ResNet (1.2 in
            the released code: ``main/gen_net_opts_model_type1.m``, resized by MATLAB's ``imresize``);
            the logits come back at the input's size.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        backbone: str = "resnet101",
        pretrained: str | None = None,
        crp_blocks: int = 4,
        crp_conv_before_pool: bool = True,
        dropout: float = 0.5,
        input_scale: float = 1.0,
    ) -> None:
        features = timm_backbone(backbone, out_indices=(1, 2, 3, 4), pretrained=pretrained)
        head = _RefineNetHead(features.feature_info.channels(), num_classes, crp_blocks, crp_conv_before_pool, dropout)
        super().__init__(features, head)
        self.input_scale = input_scale

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        size = images.shape[-2:]
        if self.input_scale != 1.0:
            # MATLAB's round(size * scale), halves up; torch.sym_int (a floor here) keeps exported sizes symbolic
            scaled = [torch.sym_int(side * self.input_scale + 0.5) for side in size]
            images = F.interpolate(images, size=scaled, mode="bicubic", align_corners=False)
        return {"out": resize_to(self.head(self.backbone(images)), size, self.align_corners)}
