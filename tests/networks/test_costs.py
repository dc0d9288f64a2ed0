"""The benchmark's FLOP counts of real lit_seg networks against counts by hand from their layer shapes."""

import math

import torch
from torch import Tensor, nn

from lit_seg.networks import create_model
from lit_seg.networks.costs import forward_flops
from lit_seg.networks.deeplabv3 import ASPP


def conv_macs(in_channels: int, out_channels: int, kernel: int, height: int, width: int, groups: int = 1) -> int:
    """Multiply-accumulates of a convolution with a ``height`` x ``width`` output: every output
    element reads ``in_channels / groups`` channels over the kernel (dilation changes only where)."""
    return height * width * out_channels * (in_channels // groups) * kernel * kernel


def transposed_macs(in_channels: int, out_channels: int, kernel: int, height: int, width: int, groups: int = 1) -> int:
    """Multiply-accumulates of a transposed convolution with a ``height`` x ``width`` input: every
    input element is scattered to ``out_channels / groups`` channels over the kernel."""
    return height * width * in_channels * (out_channels // groups) * kernel * kernel


class _RGBToASPP(nn.Module):
    """A 1x1 conv from RGB to ``channels``, then DeepLabV3's ASPP."""

    def __init__(self, channels: int, rates: tuple[int, ...], out_channels: int) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, channels, 1)
        self.aspp = ASPP(channels, rates, out_channels)

    def forward(self, images: Tensor) -> Tensor:
        return self.aspp(self.stem(images))


def test_aspp_dilated_branches_and_image_pooling() -> None:
    """Rates up to 4.5x the map's side: the padded dilated 3x3s cost a plain 3x3 each."""
    channels, out, rates, (height, width), batch = 32, 16, (6, 12, 36), (8, 10), 2
    with torch.device("meta"):
        model = _RGBToASPP(channels, rates, out)
    macs = (
        conv_macs(3, channels, 1, height, width)  # stem
        + conv_macs(channels, out, 1, height, width)  # 1x1 branch
        + len(rates) * conv_macs(channels, out, 3, height, width)  # dilated 3x3 branches
        + conv_macs(channels, out, 1, 1, 1)  # image pooling: 1x1 conv on the pooled 1x1 map
        + conv_macs(out * (len(rates) + 2), out, 1, height, width)  # projection of the concatenation
    )
    assert forward_flops(model, (height, width), batch) == 2 * batch * macs


def test_fcn8s_with_its_transposed_and_grouped_upsampling() -> None:
    """FCN-8s, VGG16 padded by 100 with ceil-mode pooling, learned 2x transposed convs and a fixed
    8x upsampler that is a grouped transposed conv (one group per class)."""
    classes, side = 5, 32
    with torch.device("meta"):
        model = create_model("fcn8s", classes)
    macs, size, channels, pools = 0, side + 200, 3, []
    for widths in ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)):
        if not pools:
            size -= 2  # conv1_1: 3x3 with padding 100
        for width in widths:
            macs += conv_macs(channels, width, 3, size, size)
            channels = width
        size = math.ceil(size / 2)
        pools.append(size)
    fc = size - 6  # fc6: 7x7 without padding
    macs += conv_macs(512, 4096, 7, fc, fc) + conv_macs(4096, 4096, 1, fc, fc) + conv_macs(4096, classes, 1, fc, fc)
    scores = fc
    for pool, pool_channels in ((pools[3], 512), (pools[2], 256)):  # pool4 then pool3
        macs += transposed_macs(classes, classes, 4, scores, scores)  # 2x upscore
        scores = (scores - 1) * 2 + 4
        macs += conv_macs(pool_channels, classes, 1, pool, pool)  # scored over the whole pool map
    macs += transposed_macs(classes, classes, 16, scores, scores, groups=classes)  # fixed bilinear 8x
    assert forward_flops(model, (side, side)) == 2 * macs
