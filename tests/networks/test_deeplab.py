"""DeepLabV2, V3 and V3+: parameter counts, output contract, ASPP, multi-grid and the V3+ decoder."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lit_seg.networks import create_model, get_model_class
from lit_seg.networks.costs import count_parameters
from lit_seg.networks.deeplabv2 import DeepLabV2
from lit_seg.networks.deeplabv3 import ASPP, DeepLabV3, SeparableConv
from lit_seg.networks.deeplabv3plus import DeepLabV3Plus
from tests.helpers.model_checks import assert_every_parameter_gets_a_gradient

IMAGES = (2, 3, 97, 131)
RESNET101 = 42_500_160  # without fc


def convs_3x3(module: nn.Module) -> list[nn.Conv2d]:
    return [m for m in module.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]


@pytest.mark.parametrize(
    ("name", "cls"), [("deeplabv2", DeepLabV2), ("deeplabv3", DeepLabV3), ("deeplabv3plus", DeepLabV3Plus)]
)
def test_registered(name: str, cls: type) -> None:
    assert get_model_class(name) is cls


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda: DeepLabV2(21, aspp="S"), 44_048_532),
        (lambda: DeepLabV2(21, aspp="LargeFOV"), RESNET101 + 2048 * 9 * 21 + 21),
        (lambda: DeepLabV3(21, output_stride=8), 58_040_661),
    ],
)
def test_parameter_count_of_other_configurations(build, expected: int) -> None:
    with torch.device("meta"):
        model = build()
    assert count_parameters(model) == pytest.approx(expected, rel=0.005)


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("deeplabv2", {}),
        ("deeplabv3", {"multi_grid": None}),
        ("deeplabv3plus", {"multi_grid": None}),
        ("deeplabv3plus", {"multi_grid": None, "output_stride": 8}),
    ],
)
def test_training_forward_at_odd_size_uses_every_parameter(name: str, options: dict) -> None:
    torch.manual_seed(0)
    model = create_model(name, 5, backbone="resnet18", **options).train()
    outputs = model(torch.randn(IMAGES))
    assert set(outputs) == {"out"} and outputs["out"].shape == (2, 5, 97, 131)
    assert_every_parameter_gets_a_gradient(model, outputs)


# DeepLabV2


@pytest.mark.parametrize(("aspp", "rates"), [("L", [6, 12, 18, 24]), ("S", [2, 4, 8, 12]), ("LargeFOV", [12])])
def test_deeplabv2_aspp_rates(aspp: str, rates: list[int]) -> None:
    with torch.device("meta"):
        model = DeepLabV2(21, aspp=aspp)
    convs = convs_3x3(model.head)
    assert [c.dilation[0] for c in convs] == [c.padding[0] for c in convs] == rates
    assert all(c.in_channels == 2048 and c.out_channels == 21 and c.bias is not None for c in convs)


def test_deeplabv2_sums_its_branches() -> None:
    model = DeepLabV2(5, backbone="resnet18").eval()
    branch_outputs, head_outputs = [], []
    for conv in convs_3x3(model.head):
        conv.register_forward_hook(lambda m, i, o: branch_outputs.append(o))
    model.head.register_forward_hook(lambda m, i, o: head_outputs.append(o))
    with torch.no_grad():
        model(torch.randn(1, 3, 97, 131))
    assert len(branch_outputs) == 4
    torch.testing.assert_close(head_outputs[0], torch.stack(branch_outputs).sum(0))


def test_deeplabv2_default_backbone_is_the_released_one() -> None:
    """kazuto1011/deeplab-pytorch: MSRA/Caffe ResNet-101 (stride in the first 1x1 conv, ceil-mode
    stem pool), every block of layer3 at rate 2 and of layer4 at rate 4."""
    with torch.device("meta"):
        model = DeepLabV2(21)
    backbone = model.backbone
    assert backbone.maxpool.ceil_mode
    assert (backbone.layer2[0].conv1.stride, backbone.layer2[0].conv2.stride) == ((2, 2), (1, 1))
    for stage, rate in ((backbone.layer3, 2), (backbone.layer4, 4)):
        assert {(block.conv2.dilation[0], block.conv2.padding[0]) for block in stage} == {(rate, rate)}
        assert {block.conv1.stride for block in stage} == {block.conv2.stride for block in stage} == {(1, 1)}


def test_deeplabv2_multi_scale_inputs_max_fused() -> None:
    """The release's multi-scale inputs: the input resized by each factor (bilinear, no corner
    alignment, on the factor's grid), the logits resized to those of scale 1 and max-fused, then
    upsampled; in training the logits of each scale too, at the input size."""
    torch.manual_seed(0)
    model = DeepLabV2(5, backbone="resnet18", multi_scale_inputs=(1.0, 0.75, 0.5)).train()
    inputs, pyramid = [], []
    model.backbone.register_forward_hook(lambda m, i, o: inputs.append(i[0]))
    model.head.register_forward_hook(lambda m, i, o: pyramid.append(o))
    size = (65, 97)
    images = torch.randn(1, 3, *size)
    outputs = model(images)

    assert [tuple(x.shape[-2:]) for x in inputs] == [(65, 97), (48, 72), (32, 48)]
    torch.testing.assert_close(inputs[1], F.interpolate(images, scale_factor=0.75, mode="bilinear"))
    assert not torch.allclose(inputs[1], F.interpolate(images, size=(48, 72), mode="bilinear"))
    full = pyramid[0].shape[-2:]
    fused = torch.stack([F.interpolate(p, size=full, mode="bilinear") if p.shape[-2:] != full else p for p in pyramid])
    torch.testing.assert_close(outputs["out"], F.interpolate(fused.amax(0), size=size, mode="bilinear"))
    assert set(outputs) == {"out", "scales"} and len(outputs["scales"]) == 3
    for logits, scale_logits in zip(pyramid, outputs["scales"]):
        torch.testing.assert_close(scale_logits, F.interpolate(logits, size=size, mode="bilinear"))

    sum(logits.mean() for logits in [outputs["out"], *outputs["scales"]]).backward()
    assert all(p.grad is not None for p in model.parameters())
    with torch.no_grad():
        assert set(model.eval()(images)) == {"out"}
    assert len(inputs) == 6  # evaluation runs the three scales too


def test_deeplabv2_multi_scale_inputs_need_scale_1() -> None:
    with pytest.raises(ValueError, match=r"multi_scale_inputs is \(0.75, 0.5\); it must include 1.0"):
        DeepLabV2(5, backbone="resnet18", multi_scale_inputs=(0.75, 0.5))


# DeepLabV3


@pytest.mark.parametrize("cls", [DeepLabV3, DeepLabV3Plus])
@pytest.mark.parametrize(
    ("output_stride", "layer3_rates", "layer4_rates"), [(16, [1] * 23, [2, 4, 8]), (8, [2] * 23, [4, 8, 16])]
)
def test_deeplab_resnet_rates_as_released(
    cls: type, output_stride: int, layer3_rates: list[int], layer4_rates: list[int]
) -> None:
    """Multi-grid (1, 2, 4) in layer4, and every block of a dilated stage at its rate, the first
    included (timm alone would give layer3's first block rate 1 at output stride 8)."""
    with torch.device("meta"):
        model = cls(21, output_stride=output_stride)
    for stage, rates in ((model.backbone.layer3, layer3_rates), (model.backbone.layer4, layer4_rates)):
        assert [block.conv2.dilation[0] for block in stage] == [block.conv2.padding[0] for block in stage] == rates


def test_deeplabv3_without_multi_grid_runs_every_unit_at_the_stage_rate() -> None:
    with torch.device("meta"):
        model = DeepLabV3(21, multi_grid=None)
    assert [block.conv2.dilation[0] for block in model.backbone.layer4] == [2, 2, 2]


def test_multi_grid_needs_one_rate_per_conv() -> None:
    with pytest.raises(ValueError, match="multi_grid"):
        DeepLabV3(5, backbone="resnet18")  # BasicBlocks: four 3x3 convs in layer4


def test_multi_grid_keeps_feature_size() -> None:
    model = DeepLabV3(5, backbone="resnet50", output_stride=8, atrous_rates=(1, 2, 3)).eval()
    with torch.no_grad():
        (features,) = model.backbone(torch.randn(1, 3, 65, 65))
        outputs = model(torch.randn(1, 3, 65, 65))
    assert features.shape == (1, 2048, 9, 9)
    assert outputs["out"].shape == (1, 5, 65, 65)


@pytest.mark.parametrize(("output_stride", "rates"), [(16, [6, 12, 18]), (8, [12, 24, 36])])
def test_deeplabv3_aspp_rates_follow_output_stride(output_stride: int, rates: list[int]) -> None:
    with torch.device("meta"):
        model = DeepLabV3(21, output_stride=output_stride)
    assert [c.dilation[0] for c in convs_3x3(model.head.aspp)] == rates
    with torch.device("meta"):
        model = DeepLabV3(21, output_stride=output_stride, atrous_rates=(3, 5))
    assert [c.dilation[0] for c in convs_3x3(model.head.aspp)] == [3, 5]


def test_aspp_has_image_pooling_branch() -> None:
    aspp = ASPP(64, (2, 3, 4), out_channels=16).eval()
    pooled, branch_outputs = [], []
    for module in aspp.modules():
        if isinstance(module, nn.AdaptiveAvgPool2d):
            module.register_forward_hook(lambda m, i, o: pooled.append(o.shape))
    for branch in aspp.branches:
        branch.register_forward_hook(lambda m, i, o: branch_outputs.append(o))
    with torch.no_grad():
        out = aspp(torch.randn(2, 64, 9, 11))
    assert pooled == [(2, 64, 1, 1)]
    assert [o.shape for o in branch_outputs] == [(2, 16, 9, 11)] * 5
    image_level = branch_outputs[-1]
    torch.testing.assert_close(image_level, image_level[..., :1, :1].expand_as(image_level))
    assert aspp.project[0].in_channels == 5 * 16
    assert out.shape == (2, 16, 9, 11)


@pytest.mark.parametrize(("output_stride", "size"), [(8, (13, 17)), (16, (7, 9))])
def test_deeplabv3_output_stride_sets_feature_map_size(output_stride: int, size: tuple[int, int]) -> None:
    model = DeepLabV3(5, backbone="resnet18", output_stride=output_stride, multi_grid=None).eval()
    with torch.no_grad():
        (features,) = model.backbone(torch.randn(1, 3, 97, 131))
    assert tuple(features.shape[-2:]) == size


def test_output_stride_32_has_no_paper_rates() -> None:
    with pytest.raises(ValueError, match="output stride"):
        DeepLabV3(5, backbone="resnet18", output_stride=32, multi_grid=None)


# DeepLabV3+


@pytest.mark.parametrize(("output_stride", "last_size"), [(16, (7, 9)), (8, (13, 17))])
def test_deeplabv3plus_fuses_stride_4_features_reduced_to_48(
    output_stride: int, last_size: tuple[int, int]
) -> None:
    model = DeepLabV3Plus(5, backbone="resnet18", output_stride=output_stride, multi_grid=None).eval()
    shapes = {}
    model.backbone.register_forward_hook(lambda m, i, o: shapes.update(backbone=[f.shape for f in o]))
    model.head.reduce.register_forward_hook(lambda m, i, o: shapes.update(reduced=o.shape))
    model.head.fuse.register_forward_hook(lambda m, i, o: shapes.update(fused_in=i[0].shape))
    with torch.no_grad():
        model(torch.randn(1, 3, 97, 131))
    assert shapes["backbone"] == [(1, 64, 25, 33), (1, 512, *last_size)]
    assert shapes["reduced"] == (1, 48, 25, 33)
    assert shapes["fused_in"] == (1, 256 + 48, 25, 33)
    assert [c.out_channels for c in convs_3x3(model.head.fuse)] == [256, 256]


def test_deeplabv3plus_paper_configuration() -> None:
    with torch.device("meta"):
        model = DeepLabV3Plus(21)
    assert model.backbone.feature_info.channels() == [256, 2048]
    assert model.backbone.feature_info.reduction() == [4, 16]
    assert model.head.reduce[0].in_channels == 256
    assert [block.conv2.dilation[0] for block in model.backbone.layer4] == [2, 4, 8]
    assert not any(isinstance(m, SeparableConv) for m in model.head.modules())


def test_deeplabv3plus_on_aligned_xception65() -> None:
    model = DeepLabV3Plus(5, backbone="xception65").train()
    assert model.backbone.feature_info.channels() == [256, 2048]
    assert model.backbone.feature_info.reduction() == [4, 16]
    last_block = list(model.backbone.children())[-1]
    assert [c.dilation[0] for c in convs_3x3(last_block)] == [2, 2, 2]  # no multi-grid, as released
    outputs = model(torch.randn(IMAGES))
    assert outputs["out"].shape == (2, 5, 97, 131)
    assert_every_parameter_gets_a_gradient(model, outputs)


def separable_convs(head: nn.Module) -> list[SeparableConv]:
    return [m for m in head.modules() if isinstance(m, SeparableConv)]


@pytest.mark.parametrize(
    ("backbone", "options", "separable"),
    [("xception65", {}, True), ("resnet101", {}, False), ("resnet101", {"separable_convs": True}, True),
     ("xception65", {"separable_convs": False}, False)],
)
def test_separable_convs_in_aspp_and_decoder_as_released_per_backbone(
    backbone: str, options: dict, separable: bool
) -> None:
    with torch.device("meta"):
        v3, v3plus = DeepLabV3(21, backbone=backbone, **options), DeepLabV3Plus(21, backbone=backbone, **options)
    assert [c[0][0].dilation[0] for c in separable_convs(v3.head.aspp)] == ([6, 12, 18] if separable else [])
    assert len(separable_convs(v3plus.head.aspp)) == (3 if separable else 0)
    assert len(separable_convs(v3plus.head.fuse)) == (2 if separable else 0)
    standard = [c for c in convs_3x3(v3plus.head) if c.groups == 1]
    assert len(standard) == (0 if separable else 5)  # three ASPP branches and two decoder convs


def test_separable_conv_is_depthwise_bn_relu_then_pointwise_bn_relu() -> None:
    block = SeparableConv(304, 256, rate=12)
    assert [type(m) for m in block.modules() if not isinstance(m, nn.Sequential)] == [
        nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.Conv2d, nn.BatchNorm2d, nn.ReLU
    ]
    depthwise, pointwise = block[0][0], block[1][0]
    assert (depthwise.in_channels, depthwise.out_channels, depthwise.groups) == (304, 304, 304)
    assert depthwise.kernel_size == (3, 3) and depthwise.dilation == depthwise.padding == (12, 12)
    assert (pointwise.in_channels, pointwise.out_channels, pointwise.kernel_size) == (304, 256, (1, 1))
    assert depthwise.bias is None and pointwise.bias is None
    # truncated normals of std 0.33 and 0.06, cut at two deviations
    assert depthwise.weight.abs().max() <= 0.66 and pointwise.weight.abs().max() <= 0.12
    assert pointwise.weight.std().item() == pytest.approx(0.06 * 0.88, rel=0.05)


@pytest.mark.parametrize("cls", [DeepLabV3, DeepLabV3Plus])
def test_classifier_starts_from_a_truncated_normal_of_std_001(cls: type) -> None:
    torch.manual_seed(0)
    classifier = cls(21, backbone="resnet18", multi_grid=None).head.classifier
    assert classifier.weight.abs().max() <= 0.02 and not classifier.bias.any()
    # a normal truncated at two deviations has 0.88 times the deviation
    assert classifier.weight.std().item() == pytest.approx(0.01 * 0.88, rel=0.05)


def test_aspp_and_decoder_convs_start_glorot_uniform_as_tf_slim() -> None:
    torch.manual_seed(0)
    head = DeepLabV3Plus(5, backbone="resnet18", multi_grid=None).head
    for conv in [head.aspp.branches[1][0], head.aspp.project[0], head.fuse[0][0], head.reduce[0]]:
        bound = (6 / ((conv.in_channels + conv.out_channels) * conv.kernel_size[0] ** 2)) ** 0.5
        assert conv.weight.abs().max() <= bound
        assert conv.weight.std().item() == pytest.approx(bound / 3**0.5, rel=0.05)  # uniform on [-bound, bound]


@pytest.mark.parametrize("cls", [DeepLabV3, DeepLabV3Plus])
def test_final_upsampling_aligns_corners(cls: type) -> None:
    torch.manual_seed(0)
    model = cls(5, backbone="resnet18", multi_grid=None).eval()
    images = torch.randn(1, 3, 65, 97)
    with torch.no_grad():
        logits = model.head(model.backbone(images))
        out = model(images)["out"]
    torch.testing.assert_close(out, F.interpolate(logits, size=(65, 97), mode="bilinear", align_corners=True))
    assert not torch.allclose(out, F.interpolate(logits, size=(65, 97), mode="bilinear"))


def test_deeplabv3plus_decoder_upsampling_aligns_corners() -> None:
    torch.manual_seed(0)
    model = DeepLabV3Plus(5, backbone="resnet18", multi_grid=None).eval()
    captured = {}
    model.head.aspp.register_forward_hook(lambda m, i, o: captured.update(aspp=o))
    model.head.fuse.register_forward_hook(lambda m, i, o: captured.update(fused_in=i[0]))
    with torch.no_grad():
        model(torch.randn(1, 3, 65, 97))
    encoded = captured["fused_in"][:, :256]
    expected = F.interpolate(captured["aspp"], size=encoded.shape[-2:], mode="bilinear", align_corners=True)
    torch.testing.assert_close(encoded, expected)
    assert not torch.allclose(encoded, F.interpolate(captured["aspp"], size=encoded.shape[-2:], mode="bilinear"))
