"""The MSRA/Caffe ResNet layout of timm backbones (DeepLabV2's released ResNet)."""

import pytest
import torch

from lit_seg.networks.backbones import timm_backbone


def test_bottlenecks_stride_in_their_first_1x1_conv() -> None:
    with torch.device("meta"):
        caffe = timm_backbone("resnet50", out_indices=(4,), caffe_layout=True)
        plain = timm_backbone("resnet50", out_indices=(4,))
    for stage in ("layer2", "layer3", "layer4"):
        caffe_block, plain_block = caffe.get_submodule(stage)[0], plain.get_submodule(stage)[0]
        assert (plain_block.conv1.stride, plain_block.conv2.stride) == ((1, 1), (2, 2))
        assert (caffe_block.conv1.stride, caffe_block.conv2.stride) == ((2, 2), (1, 1))
        assert caffe_block.conv2.padding == plain_block.conv2.padding == (1, 1)
        assert caffe_block.downsample[0].stride == (2, 2)
    assert {b.conv1.stride for s in ("layer2", "layer3", "layer4") for b in caffe.get_submodule(s)[1:]} == {(1, 1)}


@pytest.mark.parametrize(("caffe_layout", "sizes"), [(True, [(17, 21), (9, 11), (5, 6), (3, 3)]),
                                                       (False, [(16, 20), (8, 10), (4, 5), (2, 3)])])
def test_ceil_mode_stem_pool_rounds_even_sizes_up(caffe_layout: bool, sizes: list[tuple[int, int]]) -> None:
    with torch.device("meta"):
        features = timm_backbone("resnet50", out_indices=(1, 2, 3, 4), caffe_layout=caffe_layout)
        maps = features(torch.zeros(1, 3, 64, 80))
    assert features.maxpool.ceil_mode == caffe_layout
    assert [tuple(m.shape[-2:]) for m in maps] == sizes


def test_basic_blocks_already_stride_in_their_first_conv() -> None:
    with torch.device("meta"):
        features = timm_backbone("resnet18", out_indices=(4,), caffe_layout=True)
    assert (features.layer2[0].conv1.stride, features.layer2[0].conv2.stride) == ((2, 2), (1, 1))


def test_caffe_layout_needs_a_resnet() -> None:
    with torch.device("meta"), pytest.raises(ValueError, match="caffe_layout needs a ResNet .*mobilenetv3_small_050"):
        timm_backbone("mobilenetv3_small_050", out_indices=(4,), caffe_layout=True)
