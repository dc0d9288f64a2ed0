"""timm backbones: the dilation of the first block of each dilated ResNet stage."""

import pytest
import torch
from torch import nn

from lit_seg.networks.backbones import timm_backbone


def spatial_convs(stage: nn.Module) -> list[nn.Conv2d]:
    return [m for m in stage.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]


@pytest.mark.parametrize("name", ["resnet18", "resnet50s"])  # basic blocks; bottlenecks with the deep stem
def test_dilate_first_blocks_gives_every_block_the_stage_rate(name: str) -> None:
    with torch.device("meta"):
        features = timm_backbone(name, out_indices=(3, 4), output_stride=8, dilate_first_blocks=True)
        maps = features(torch.zeros(1, 3, 65, 97))
    for stage, rate in (("layer3", 2), ("layer4", 4)):
        convs = spatial_convs(features.get_submodule(stage))
        assert {(conv.dilation, conv.padding, conv.stride) for conv in convs} == {((rate, rate), (rate, rate), (1, 1))}
    assert [tuple(m.shape[-2:]) for m in maps] == [(9, 13), (9, 13)]


def test_timm_gives_the_first_block_the_previous_rate() -> None:
    with torch.device("meta"):
        features = timm_backbone("resnet50", out_indices=(4,), output_stride=8)
    assert [conv.dilation[0] for conv in spatial_convs(features.layer3)][:2] == [1, 2]
    assert [conv.dilation[0] for conv in spatial_convs(features.layer4)][:2] == [2, 4]


def test_dilate_first_blocks_at_output_stride_16() -> None:
    with torch.device("meta"):
        features = timm_backbone("resnet18", out_indices=(4,), output_stride=16, dilate_first_blocks=True)
    assert {conv.dilation for conv in spatial_convs(features.layer3)} == {(1, 1)}
    assert {conv.dilation for conv in spatial_convs(features.layer4)} == {(2, 2)}


def test_dilate_first_blocks_needs_resnet_stages() -> None:
    with torch.device("meta"), pytest.raises(ValueError, match="mobilenetv3_small_050 has none"):
        timm_backbone("mobilenetv3_small_050", out_indices=(4,), output_stride=8, dilate_first_blocks=True)
