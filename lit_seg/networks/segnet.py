"""SegNet and SegNet-Basic: encoder-decoder networks that upsample with the encoder's max-pooling indices."""

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from lit_seg.networks.backbones import load_pretrained
from lit_seg.networks.base import SegmentationNet
from lit_seg.networks.registry import ReferenceCount, register_model
from lit_seg.networks.vgg import VGG16_STAGES

_VGG16_BN_HUB_REPO = "timm/vgg16_bn.tv_in1k"

# SegNet's decoder, deepest stage first; a 3x3 convolution to the classes follows.
_VGG16_DECODER_STAGES = ((512, 512, 512), (512, 512, 256), (256, 256, 128), (128, 64), (64,))
_BASIC_STAGES = ((64,), (64,), (64,), (64,))


def _conv_bn_layers(
    in_channels: int, widths: Sequence[int], kernel_size: int, bias: bool, relu: bool
) -> list[nn.Module]:
    """A chain of convolutions to ``widths`` ("same" padding), each followed by BN and, if ``relu``, ReLU."""
    layers: list[nn.Module] = []
    for width in widths:
        conv = nn.Conv2d(in_channels, width, kernel_size, padding=kernel_size // 2, bias=bias)
        layers += [conv, nn.BatchNorm2d(width)]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        in_channels = width
    return layers


class _IndexedEncoder(nn.Module):
    """Stages of conv -> BN -> ReLU, each ending in a 2x2 max-pool of stride 2 (ceil mode) that keeps
    its argmax indices; optionally after a local response normalisation of the input.

    timm's VGG cannot serve here: its pools neither return indices nor round up. With VGG16's stages
    the parameter names are those of timm's ``vgg16_bn`` (``features.<i>``), so its ImageNet weights
    load unchanged.

    Args:
        stages: output channels of the convolutions of each stage.
        kernel_size: kernel size of every convolution.
        bias: whether the convolutions have a bias (redundant before BN).
        input_lrn: normalise the input first, as Caffe's ``LRN`` layer with ``local_size: 5``,
            ``alpha: 0.0001``, ``beta: 0.75`` (across channels, k = 1) does.
    """

    def __init__(
        self, stages: Sequence[Sequence[int]], kernel_size: int, bias: bool, input_lrn: bool = False
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)] if input_lrn else []
        in_channels = 3
        for widths in stages:
            layers += _conv_bn_layers(in_channels, widths, kernel_size, bias, relu=True)
            layers.append(nn.MaxPool2d(2, stride=2, ceil_mode=True, return_indices=True))
            in_channels = widths[-1]
        self.features = nn.Sequential(*layers)

    def forward(self, images: Tensor) -> tuple[Tensor, list[Tensor], list[torch.Size]]:
        """Returns the deepest pooled map, and the indices of every pool and the size of its input,
        shallowest first."""
        indices, sizes = [], []
        x = images
        for layer in self.features:
            if isinstance(layer, nn.MaxPool2d):
                sizes.append(x.shape[-2:])
                x, pool_indices = layer(x)
                indices.append(pool_indices)
            else:
                x = layer(x)
        return x, indices, sizes


class _UnpoolingDecoder(nn.Module):
    """Mirrors the encoder: each stage max-unpools with the indices of the matching encoder pool to
    that pool's input size, then applies conv -> BN [-> ReLU] blocks; a final convolution (no BN, no
    ReLU) gives the class scores.

    Args:
        in_channels: channels of the deepest encoder map.
        stages: output channels of the convolutions of each stage, deepest stage first.
        kernel_size: kernel size of the stages' convolutions.
        bias: whether the stages' convolutions have a bias (redundant before BN).
        relu: whether a ReLU follows each BN.
        num_classes: number of classes.
        classifier_kernel_size: kernel size of the final convolution.
    """

    def __init__(
        self,
        in_channels: int,
        stages: Sequence[Sequence[int]],
        kernel_size: int,
        bias: bool,
        relu: bool,
        num_classes: int,
        classifier_kernel_size: int,
    ) -> None:
        super().__init__()
        self.unpool = nn.MaxUnpool2d(2, stride=2)
        self.stages = nn.ModuleList()
        for widths in stages:
            self.stages.append(nn.Sequential(*_conv_bn_layers(in_channels, widths, kernel_size, bias, relu)))
            in_channels = widths[-1]
        self.classifier = nn.Conv2d(
            in_channels, num_classes, classifier_kernel_size, padding=classifier_kernel_size // 2
        )

    def forward(self, x: Tensor, indices: list[Tensor], sizes: list[torch.Size]) -> Tensor:
        for stage, pool_indices, size in zip(self.stages, reversed(indices), reversed(sizes), strict=True):
            x = stage(self.unpool(x, pool_indices, output_size=size))
        return self.classifier(x)


class _EncoderDecoder(SegmentationNet):
    """SegNet's anatomy: the encoder is the backbone, the decoder the head, and the forward pass hands
    the pooling indices and pre-pool sizes from one to the other, so the logits come out at the
    input's size. Every convolution starts from He initialisation, as in the paper, and every BN
    from scale 1 and shift 0.001, as in the released prototxts (alexgkendall/SegNet-Tutorial
    ``Models/segnet_train.prototxt``, ``segnet_basic_train.prototxt``: ``msra`` weight filler,
    ``shift_filler`` 0.001).
    """

    def __init__(self, encoder: _IndexedEncoder, decoder: _UnpoolingDecoder) -> None:
        super().__init__(encoder, decoder)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.constant_(module.bias, 1e-3)

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        return {"out": self.head(*self.backbone(images))}


@register_model(
    "segnet",
    paper="https://arxiv.org/abs/1511.00561",
    references=(ReferenceCount(29_449_355, 11, "11 classes", exact=True),),
)
class SegNet(_EncoderDecoder):
    """SegNet from "SegNet: A Deep Convolutional Encoder-Decoder Architecture for Image Segmentation"
    (Badrinarayanan, Kendall and Cipolla, TPAMI 2017), https://arxiv.org/abs/1511.00561.

    The encoder is VGG16's 13 convolutions, each followed by BN and ReLU; it is SegNet's own, not
    timm's, because it keeps the max-pooling indices. The decoder mirrors it (channels 512, 512, 512 |
    512, 512, 256 | 256, 256, 128 | 128, 64 | 64, classes) and upsamples with those indices. For the
    lighter SegNet-Basic see :class:`SegNetBasic`.

    Args:
        num_classes: number of classes.
        pretrained: weights of the encoder: ``None`` for random (He) initialisation, ``"hub"`` for
            timm's ImageNet ``vgg16_bn`` weights, or the path of a file with timm's ``vgg16_bn`` keys.
    """

    def __init__(self, num_classes: int, *, pretrained: str | None = None) -> None:
        super().__init__(
            _IndexedEncoder(VGG16_STAGES, kernel_size=3, bias=True),
            _UnpoolingDecoder(
                512,
                _VGG16_DECODER_STAGES,
                kernel_size=3,
                bias=True,
                relu=True,
                num_classes=num_classes,
                classifier_kernel_size=3,
            ),
        )
        if pretrained is not None:
            load_pretrained(self.backbone, pretrained, _VGG16_BN_HUB_REPO)


@register_model("segnet_basic")
class SegNetBasic(_EncoderDecoder):
    """SegNet-Basic, the small SegNet of the paper's analysis, from "SegNet: A Deep Convolutional
    Encoder-Decoder Architecture for Image Segmentation" (Badrinarayanan, Kendall and Cipolla, TPAMI
    2017), https://arxiv.org/abs/1511.00561.

    Four encoder stages (7x7 conv to 64 channels -> BN -> ReLU -> max-pool keeping indices) and four
    decoder stages (max-unpool -> 7x7 conv to 64 -> BN, no ReLU), then a 1x1 convolution to the
    classes; trained from scratch. As in the released model (alexgkendall/SegNet-Tutorial
    ``Models/segnet_basic_train.prototxt``), the input first passes a local response normalisation
    and the convolutions before BN carry a bias.

    Args:
        num_classes: number of classes.
        input_lrn: normalise the input across channels (Caffe's ``LRN``: ``local_size`` 5, ``alpha``
            1e-4, ``beta`` 0.75) as released. On the raw 0-255 pixels the release feeds it, it divides
            bright pixels by up to about 3.3; on mean/std-normalised images it is close to the identity.
        conv_bias: give the convolutions before BN a bias, as released; the paper's text, and
            PyTorch habit, leave it out (BN cancels it, so only the parameter count changes).
    """

    def __init__(self, num_classes: int, *, input_lrn: bool = True, conv_bias: bool = True) -> None:
        super().__init__(
            _IndexedEncoder(_BASIC_STAGES, kernel_size=7, bias=conv_bias, input_lrn=input_lrn),
            _UnpoolingDecoder(
                64,
                _BASIC_STAGES,
                kernel_size=7,
                bias=conv_bias,
                relu=False,
                num_classes=num_classes,
                classifier_kernel_size=1,
            ),
        )
