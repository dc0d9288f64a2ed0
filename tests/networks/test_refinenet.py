"""RefineNet: reference parameter counts and the structure of the cascaded RefineNet blocks."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lit_seg.networks import get_model_class
from lit_seg.networks.costs import count_parameters
from lit_seg.networks.refinenet import RefineNet


def test_registered() -> None:
    assert get_model_class("refinenet") is RefineNet


def test_crp_blocks_add_one_3x3_conv_per_path_each() -> None:
    with torch.device("meta"):
        released, drawn = RefineNet(21), RefineNet(21, crp_blocks=2)
    assert count_parameters(released) - count_parameters(drawn) == 2 * (512 * 512 * 9 + 3 * 256 * 256 * 9)


def test_paper_configuration() -> None:
    with torch.device("meta"):
        model = RefineNet(21)
        logits = model.head(model.backbone(torch.zeros(1, 3, 64, 96)))
    assert logits.shape == (1, 21, 16, 24)  # stride 4 before the final upsampling
    head = model.head
    assert [adapter[0].out_channels for adapter in head.adapters] == [256, 256, 256, 512]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in head.modules())
    assert head.blocks[3].fuse is None
    assert [conv.in_channels for conv in head.blocks[2].fuse] == [256, 512]
    assert all(len(block.pool.convs) == 4 and len(block.out) == 3 for block in head.blocks)
    assert head.blocks[0].pool.pool.kernel_size == 5 and head.blocks[0].pool.pool.stride == 1
    assert head.classifier.kernel_size == (3, 3) and head.dropout.p == 0.5


def test_dropout_only_in_training() -> None:
    torch.manual_seed(0)
    model = RefineNet(3, backbone="resnet18")
    images = torch.randn(1, 3, 40, 48)
    with torch.no_grad():
        model.eval()
        torch.testing.assert_close(model(images)["out"], model(images)["out"])
        model.train()
        assert not torch.allclose(model(images)["out"], model(images)["out"])


@pytest.mark.parametrize("conv_before_pool", [True, False])
def test_chained_residual_pooling_order(conv_before_pool: bool) -> None:
    """Released "improved" block: path = pool(conv(path)); the paper's and the VOC model's: conv(pool(path))."""
    torch.manual_seed(0)
    options = {} if conv_before_pool else {"crp_conv_before_pool": False}
    crp = RefineNet(3, backbone="resnet18", **options).head.blocks[0].pool
    x = torch.randn(1, 256, 9, 11)
    pool = nn.MaxPool2d(5, stride=1, padding=2)
    expected = path = F.relu(x)
    for conv in crp.convs:
        path = pool(conv(path)) if conv_before_pool else conv(pool(path))
        expected = expected + path
    with torch.no_grad():
        torch.testing.assert_close(crp(x), expected)


def test_input_scale_resizes_the_image_and_returns_logits_at_input_size() -> None:
    torch.manual_seed(0)
    model = RefineNet(3, backbone="resnet18", input_scale=1.2).eval()
    seen = []
    model.backbone.register_forward_pre_hook(lambda m, inputs: seen.append(inputs[0].shape[-2:]))
    images = torch.randn(1, 3, 45, 66)
    with torch.no_grad():
        out = model(images)["out"]
        scaled = F.interpolate(images, size=(54, 79), mode="bicubic")  # MATLAB's round(45 * 1.2), round(66 * 1.2)
        expected = F.interpolate(model.head(model.backbone(scaled)), size=(45, 66), mode="bilinear")
    assert seen[0] == (54, 79) and out.shape == (1, 3, 45, 66)
    torch.testing.assert_close(out, expected)


def test_head_convolutions_start_from_a_normal_of_std_001() -> None:
    torch.manual_seed(0)
    convs = [m for m in RefineNet(21, backbone="resnet18").head.modules() if isinstance(m, nn.Conv2d)]
    weights = torch.cat([conv.weight.flatten() for conv in convs])
    assert weights.std().item() == pytest.approx(0.01, rel=0.01)
    assert all(not conv.bias.any() for conv in convs if conv.bias is not None)
