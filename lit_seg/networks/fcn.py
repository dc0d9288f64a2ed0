"""FCN-32s, FCN-16s and FCN-8s: VGG16 made fully convolutional, with skip fusion of pool4 and pool3."""

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_seg.networks.backbones import load_pretrained
from lit_seg.networks.base import SegmentationNet
from lit_seg.networks.registry import ReferenceCount, register_model
from lit_seg.networks.vgg import VGG16_STAGES

_VGG16_HUB_REPO = "timm/vgg16.tv_in1k"

# The fused pool layers, deepest first: channels, official crop offset of their scores, and the
# fixed scale of the "at-once" FCN-8s.
_SKIPS = ((512, 5, 1e-2), (256, 9, 1e-4))
# Per number of fused pool layers: stride of the fixed final upsampler and its official crop offset.
_FINAL_UPSAMPLING = ((32, 19), (16, 27), (8, 31))


def _bilinear_kernel(size: int) -> Tensor:
    """The ``size`` x ``size`` kernel with which a transposed convolution of stride ``size // 2``
    interpolates bilinearly."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    ramp = 1 - (torch.arange(size, dtype=torch.float32) - center).abs() / factor
    return ramp[:, None] * ramp[None, :]


def _score_layer(in_channels: int, num_classes: int) -> nn.Conv2d:
    """A zero-initialised 1x1 convolution to class scores."""
    score = nn.Conv2d(in_channels, num_classes, 1)
    nn.init.zeros_(score.weight)
    nn.init.zeros_(score.bias)
    return score


def _crop(x: Tensor, offset: int, size: torch.Size | tuple[int, int]) -> Tensor:
    """The ``size`` window of ``x`` starting ``offset`` pixels from the top and from the left."""
    return x[..., offset : offset + size[0], offset : offset + size[1]]


class _VGG16(nn.Module):
    """VGG16 as FCN uses it: conv1_1 pads by 100, max-pools round up (ceil mode, as Caffe does), and
    fc6/fc7 are convolutions (7x7 without padding, then 1x1), each followed by ReLU and Dropout 0.5.

    Parameter names follow timm's ``vgg16`` (``features.<i>``, and ``pre_logits.fc1``/``fc2`` for
    fc6/fc7), so timm's ImageNet weights load unchanged, fully connected layers included, as the
    paper initialises them.

    Returns ``[pool3, pool4, fc7]`` (strides 8, 16 and 32 relative to the padded input).
    """

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 3
        for widths in VGG16_STAGES:
            for width in widths:
                padding = 1 if layers else 100
                layers += [nn.Conv2d(in_channels, width, 3, padding=padding), nn.ReLU(inplace=True)]
                in_channels = width
            layers.append(nn.MaxPool2d(2, stride=2, ceil_mode=True))
        self.features = nn.Sequential(*layers)
        self.pre_logits = nn.Sequential(
            OrderedDict(
                fc1=nn.Conv2d(in_channels, 4096, 7),
                act1=nn.ReLU(inplace=True),
                drop1=nn.Dropout(0.5),
                fc2=nn.Conv2d(4096, 4096, 1),
                act2=nn.ReLU(inplace=True),
                drop2=nn.Dropout(0.5),
            )
        )

    def forward(self, images: Tensor) -> list[Tensor]:
        pools = []
        x = images
        for layer in self.features:
            x = layer(x)
            if isinstance(layer, nn.MaxPool2d):
                pools.append(x)
        return [pools[2], pools[3], self.pre_logits(x)]


class _SkipFusion(nn.Module):
    """Upsamples class scores 2x with a transposed convolution (kernel 4, no bias, bilinear weights)
    and adds the scores of a pool layer, cropped at the official offset.

    Args:
        num_classes: number of classes.
        pool_channels: channels of the pool layer.
        offset: where the pool scores are cropped.
        scale: fixed factor applied to the pool layer before scoring (1 except in "at-once" FCN-8s).
        learnable: train the upsampler's weights from their bilinear start; False keeps them fixed
            (``requires_grad`` off), as the released nets do (``lr_mult: 0``).
    """

    def __init__(self, num_classes: int, pool_channels: int, offset: int, scale: float, learnable: bool) -> None:
        super().__init__()
        self.upscore = nn.ConvTranspose2d(num_classes, num_classes, 4, stride=2, bias=False)
        with torch.no_grad():
            self.upscore.weight.copy_(torch.eye(num_classes)[:, :, None, None] * _bilinear_kernel(4))
        self.upscore.weight.requires_grad_(learnable)
        self.score_pool = _score_layer(pool_channels, num_classes)
        self.offset = offset
        self.scale = scale

    def forward(self, scores: Tensor, pool: Tensor) -> Tensor:
        scores = self.upscore(scores)
        return scores + _crop(self.score_pool(pool * self.scale), self.offset, scores.shape[-2:])


class _FCNHead(nn.Module):
    """Scores fc7, fuses in the scores of pool4 and then pool3 (the first ``num_skips`` of them), and
    upsamples the sum with a fixed bilinear transposed convolution, cropped to the input size.

    The final kernel is a buffer, not a parameter: the official nets never learn it.

    Args:
        num_classes: number of classes.
        num_skips: 0 for FCN-32s, 1 for FCN-16s (pool4), 2 for FCN-8s (pool4 and pool3).
        at_once: scale pool4 by 0.01 and pool3 by 1e-4 before scoring, as in "at-once" FCN-8s.
        learnable_upsampling: train the 2x upsamplers of the skip fusions (see :class:`_SkipFusion`).
    """

    def __init__(self, num_classes: int, num_skips: int, at_once: bool, learnable_upsampling: bool) -> None:
        super().__init__()
        self.score_fr = _score_layer(4096, num_classes)
        self.fusions = nn.ModuleList(
            _SkipFusion(num_classes, channels, offset, scale if at_once else 1.0, learnable_upsampling)
            for channels, offset, scale in _SKIPS[:num_skips]
        )
        self.stride, self.offset = _FINAL_UPSAMPLING[num_skips]
        kernel = _bilinear_kernel(2 * self.stride).expand(num_classes, 1, -1, -1).clone()
        self.register_buffer("final_kernel", kernel, persistent=False)

    def forward(self, features: list[Tensor], size: torch.Size) -> Tensor:
        pool3, pool4, fc7 = features
        scores = self.score_fr(fc7)
        for fusion, pool in zip(self.fusions, (pool4, pool3)):
            scores = fusion(scores, pool)
        num_classes = len(self.final_kernel)
        scores = F.conv_transpose2d(scores, self.final_kernel, stride=self.stride, groups=num_classes)
        return _crop(scores, self.offset, size)


class _FCN(SegmentationNet):
    """The FCN family: VGG16 backbone (fc6/fc7 included) and a head fusing ``num_skips`` pool layers.

    The input is padded by 100 in conv1_1 and the output cropped back at the official offsets, so the
    logits have the input's size for any input size.
    """

    def __init__(
        self, num_classes: int, num_skips: int, at_once: bool, learnable_upsampling: bool, pretrained: str | None
    ) -> None:
        backbone = _VGG16()
        if pretrained is not None:
            load_pretrained(backbone, pretrained, _VGG16_HUB_REPO)
        super().__init__(backbone, _FCNHead(num_classes, num_skips, at_once, learnable_upsampling))

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        return {"out": self.head(self.backbone(images), images.shape[-2:])}


@register_model(
    "fcn32s",
    paper="https://arxiv.org/abs/1411.4038",
    references=(ReferenceCount(134_346_581, 21, "21 classes, fixed final upsampler not counted", exact=True),),
)
class FCN32s(_FCN):
    """FCN-32s from "Fully Convolutional Networks for Semantic Segmentation" (Long, Shelhamer and
    Darrell, CVPR 2015), https://arxiv.org/abs/1411.4038: fc7 scores upsampled 32x.

    Args:
        num_classes: number of classes.
        pretrained: weights of VGG16 (convolutions and fc6/fc7): ``None`` for random initialisation,
            ``"hub"`` for timm's ImageNet weights, or the path of a file with timm's ``vgg16`` keys.
    """

    def __init__(self, num_classes: int, *, pretrained: str | None = None) -> None:
        super().__init__(num_classes, num_skips=0, at_once=False, learnable_upsampling=False, pretrained=pretrained)


@register_model(
    "fcn16s",
    paper="https://arxiv.org/abs/1411.4038",
    # The learnable 2x upsampler adds 21 x 21 x 4 x 4 = 7,056 weights.
    references=(
        ReferenceCount(134_357_354, 21, "21 classes, no upsampler trained (as released)", exact=True),
        ReferenceCount(
            134_364_410, 21, "21 classes, learnable 2x upsampler", {"learnable_upsampling": True}, exact=True
        ),
    ),
)
class FCN16s(_FCN):
    """FCN-16s from "Fully Convolutional Networks for Semantic Segmentation" (Long, Shelhamer and
    Darrell, CVPR 2015), https://arxiv.org/abs/1411.4038: fc7 scores upsampled 2x, plus pool4
    scores, upsampled 16x.

    Every upsampler is a bilinear transposed convolution that is never trained, as in the released
    net (shelhamer/fcn.berkeleyvision.org voc-fcn16s/net.py: ``lr_mult: 0`` on every deconvolution).

    Args:
        num_classes: number of classes.
        learnable_upsampling: train the 2x upsampler from its bilinear start, as the paper describes.
        pretrained: weights of VGG16 (convolutions and fc6/fc7): ``None`` for random initialisation,
            ``"hub"`` for timm's ImageNet weights, or the path of a file with timm's ``vgg16`` keys.
    """

    def __init__(
        self, num_classes: int, *, learnable_upsampling: bool = False, pretrained: str | None = None
    ) -> None:
        super().__init__(
            num_classes, num_skips=1, at_once=False, learnable_upsampling=learnable_upsampling, pretrained=pretrained
        )


@register_model(
    "fcn8s",
    paper="https://arxiv.org/abs/1411.4038",
    # PAPERS.md's 134,362,751 (no upsampler trained); the two learnable 2x upsamplers add 14,112 weights.
    references=(
        ReferenceCount(134_362_751, 21, "21 classes, no upsampler trained (as released)", exact=True),
        ReferenceCount(134_362_751, 21, "at-once, as above", {"at_once": True}, exact=True),
        ReferenceCount(
            134_376_863, 21, "21 classes, learnable 2x upsamplers", {"learnable_upsampling": True}, exact=True
        ),
    ),
)
class FCN8s(_FCN):
    """FCN-8s from "Fully Convolutional Networks for Semantic Segmentation" (Long, Shelhamer and
    Darrell, CVPR 2015), https://arxiv.org/abs/1411.4038: FCN-16s's fused scores upsampled 2x,
    plus pool3 scores, upsampled 8x.

    Every upsampler is a bilinear transposed convolution that is never trained, as in the released
    nets (shelhamer/fcn.berkeleyvision.org voc-fcn8s/net.py and voc-fcn8s-atonce/net.py: ``lr_mult: 0``
    on every deconvolution).

    Args:
        num_classes: number of classes.
        at_once: the "at-once" variant trained in one stage, which scales pool4 by 0.01 and pool3 by
            1e-4 before scoring them.
        learnable_upsampling: train the two 2x upsamplers from their bilinear start, as the paper
            describes.
        pretrained: weights of VGG16 (convolutions and fc6/fc7): ``None`` for random initialisation,
            ``"hub"`` for timm's ImageNet weights, or the path of a file with timm's ``vgg16`` keys.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        at_once: bool = False,
        learnable_upsampling: bool = False,
        pretrained: str | None = None,
    ) -> None:
        super().__init__(
            num_classes, num_skips=2, at_once=at_once, learnable_upsampling=learnable_upsampling, pretrained=pretrained
        )
