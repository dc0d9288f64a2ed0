"""PSPNet: the released configuration (deep stem, dilation of every block, align_corners), output
contract, pyramid and aux head."""

import pytest
import torch
from torch import nn

from lit_seg.networks import create_model, get_model_class
from lit_seg.networks.pspnet import PSPNet
from tests.helpers.model_checks import assert_every_parameter_gets_a_gradient, record_resizes

IMAGES = (2, 3, 97, 131)


def test_registered() -> None:
    assert get_model_class("pspnet") is PSPNet


def test_paper_configuration() -> None:
    with torch.device("meta"):
        model = PSPNet(21)
    assert model.backbone.feature_info.reduction() == [8, 8]
    assert model.backbone.feature_info.channels() == [1024, 2048]
    assert model.aux_head.conv[0].in_channels == 1024 and model.aux_head.conv[0].out_channels == 256
    assert model.head.bottleneck[0].in_channels == 4096 and model.head.bottleneck[0].out_channels == 512


def test_default_backbone_is_the_released_deep_stem_resnet_with_every_block_dilated() -> None:
    with torch.device("meta"):
        backbone = PSPNet(21).backbone
    stem = [m for m in backbone.conv1.modules() if isinstance(m, nn.Conv2d)]
    assert [(conv.kernel_size, conv.out_channels) for conv in stem] == [((3, 3), 64), ((3, 3), 64), ((3, 3), 128)]
    for stage, rate in ((backbone.layer3, 2), (backbone.layer4, 4)):
        assert {(block.conv2.dilation, block.conv2.padding) for block in stage} == {((rate, rate), (rate, rate))}


def test_first_blocks_take_the_previous_rate_without_dilate_first_blocks() -> None:
    with torch.device("meta"):
        backbone = PSPNet(21, dilate_first_blocks=False).backbone
    assert (backbone.layer3[0].conv2.dilation, backbone.layer4[0].conv2.dilation) == ((1, 1), (2, 2))


@pytest.mark.parametrize("align_corners", [True, False])
def test_every_bilinear_resize_follows_align_corners(monkeypatch, align_corners: bool) -> None:
    """The pyramid's four upsamplings and the final upsampling of the logits and aux logits."""
    calls = record_resizes(monkeypatch)
    options = {} if align_corners else {"align_corners": False}
    model = PSPNet(5, backbone="resnet18", **options).train()
    with torch.no_grad():
        model(torch.randn(2, 3, 33, 33))
    assert calls == [("bilinear", align_corners)] * 6


def test_forward_training_returns_out_and_aux_at_input_size() -> None:
    torch.manual_seed(0)
    model = create_model("pspnet", 5, backbone="resnet18").train()
    outputs = model(torch.randn(IMAGES))
    assert set(outputs) == {"out", "aux"}
    assert outputs["out"].shape == outputs["aux"].shape == (2, 5, 97, 131)
    assert_every_parameter_gets_a_gradient(model, outputs)


def test_eval_returns_only_out() -> None:
    model = PSPNet(5, backbone="resnet18").eval()
    with torch.no_grad():
        outputs = model(torch.randn(1, 3, 64, 80))
    assert set(outputs) == {"out"} and outputs["out"].shape == (1, 5, 64, 80)


def test_without_aux_head_every_parameter_is_used() -> None:
    model = PSPNet(5, backbone="resnet18", aux_head=False).train()
    assert model.aux_head is None
    outputs = model(torch.randn(IMAGES))
    assert set(outputs) == {"out"}
    assert_every_parameter_gets_a_gradient(model, outputs)


def test_pyramid_pools_to_bins_and_concatenates_with_input() -> None:
    model = PSPNet(5, backbone="resnet18", aux_head=False).eval()
    pooled_sizes = []
    for module in model.head.modules():
        if isinstance(module, nn.AdaptiveAvgPool2d):
            module.register_forward_hook(lambda m, i, o: pooled_sizes.append(tuple(o.shape[-2:])))
    bottleneck_inputs = []
    model.head.bottleneck.register_forward_hook(lambda m, i, o: bottleneck_inputs.append(i[0].shape))
    with torch.no_grad():
        model(torch.randn(1, 3, 97, 131))
    assert pooled_sizes == [(1, 1), (2, 2), (3, 3), (6, 6)]
    # 512 input channels of ResNet-18's layer4 plus four branches of 512 / 4, at stride 8
    assert bottleneck_inputs == [(1, 512 + 4 * 128, 13, 17)]


@pytest.mark.parametrize(("output_stride", "size"), [(8, (13, 17)), (16, (7, 9))])
def test_output_stride_sets_feature_map_size(output_stride: int, size: tuple[int, int]) -> None:
    model = PSPNet(5, backbone="resnet18", output_stride=output_stride).eval()
    with torch.no_grad():
        features = model.backbone(torch.randn(1, 3, 97, 131))
    assert [tuple(f.shape[-2:]) for f in features] == [size, size]
