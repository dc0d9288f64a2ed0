"""SegNet and SegNet-Basic: exact parameter count, layout, unpooling with the encoder's own indices, odd sizes."""

import math

import pytest
import timm
import torch
import torch.nn.functional as F
from torch import nn

from lit_seg.networks import create_model, get_model_class
from lit_seg.networks.costs import count_parameters
from lit_seg.networks.segnet import SegNet, SegNetBasic
from tests.helpers.model_checks import assert_every_parameter_has_a_gradient

SMALL = (2, 3, 37, 53)


def conv_widths(stage: nn.Module) -> list[int]:
    return [m.out_channels for m in stage.modules() if isinstance(m, nn.Conv2d)]


@pytest.mark.parametrize(("name", "cls"), [("segnet", SegNet), ("segnet_basic", SegNetBasic)])
def test_registered(name: str, cls: type) -> None:
    assert get_model_class(name) is cls


@pytest.mark.parametrize(("options", "biases"), [({}, 8 * 64), ({"conv_bias": False}, 0)])
def test_segnet_basic_parameter_count(options: dict, biases: int) -> None:
    with torch.device("meta"):
        # 7x7 convs 3->64 and seven 64->64, each with BN (biases as released), then a 1x1 classifier
        basic = 3 * 49 * 64 + 7 * 64 * 49 * 64 + 8 * 2 * 64 + 64 * 11 + 11
        assert count_parameters(SegNetBasic(11, **options)) == basic + biases


def test_segnet_layout() -> None:
    with torch.device("meta"):
        model = SegNet(11)
    pools = [m for m in model.backbone.modules() if isinstance(m, nn.MaxPool2d)]
    assert len(pools) == 5 and all(p.ceil_mode and p.return_indices for p in pools)
    assert conv_widths(model.backbone) == [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    assert [conv_widths(stage) for stage in model.head.stages] + [[model.head.classifier.out_channels]] == [
        [512, 512, 512], [512, 512, 256], [256, 256, 128], [128, 64], [64], [11]
    ]
    for stage in model.head.stages:  # conv -> BN -> ReLU blocks
        assert [type(m) for m in stage] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU] * (len(stage) // 3)
    assert model.head.classifier.kernel_size == (3, 3)  # the last conv, with neither BN nor ReLU


def test_segnet_basic_layout() -> None:
    with torch.device("meta"):
        model = SegNetBasic(11)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 9 and all(c.kernel_size == (7, 7) for c in convs[:-1])
    assert model.head.classifier is convs[-1] and convs[-1].kernel_size == (1, 1)
    assert all(c.bias is not None for c in convs)  # as released, biases before BN
    assert not any(isinstance(m, nn.ReLU) for m in model.head.modules())  # no ReLU in the decoder
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.backbone.modules()) == 4
    assert isinstance(model.backbone.features[0], nn.LocalResponseNorm)
    with torch.device("meta"):
        plain = SegNetBasic(11, input_lrn=False, conv_bias=False)
    assert isinstance(plain.backbone.features[0], nn.Conv2d) and plain.backbone.features[0].bias is None


def test_segnet_basic_input_lrn_is_caffes() -> None:
    """Caffe's LRN across channels: x / (1 + alpha / n * sum of x^2 over n = 5 neighbouring channels)^beta."""
    lrn = SegNetBasic(11).backbone.features[0]
    images = torch.rand(2, 3, 5, 7) * 255  # the release feeds raw pixel values
    window_sum = (images**2).sum(dim=1, keepdim=True)  # 5 channels centred on any of 3 span all 3
    torch.testing.assert_close(lrn(images), images / (1 + 1e-4 / 5 * window_sum) ** 0.75)


@pytest.mark.parametrize("cls", [SegNet, SegNetBasic])
def test_batchnorm_starts_with_shift_0001_as_released(cls: type) -> None:
    norms = [m for m in cls(5).modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(torch.all(n.weight == 1) and torch.all(n.bias == 1e-3) for n in norms)


@pytest.mark.parametrize("name", ["segnet", "segnet_basic"])
def test_output_has_input_size_for_any_size(name: str) -> None:
    sizes = [(1, 1), (2, 3), (31, 33), (97, 131), (360, 480), (361, 479), (500, 375)]
    with torch.device("meta"):
        model = create_model(name, 11).eval()
        for size in sizes:
            assert model(torch.empty(2, 3, *size))["out"].shape == (2, 11, *size), size


def test_camvid_size_360x480() -> None:
    torch.manual_seed(0)
    model = SegNet(11).eval()
    captured = {}
    model.backbone.register_forward_hook(lambda module, inputs, output: captured.update(sizes=output[2]))
    with torch.no_grad():
        out = model(torch.randn(1, 3, 360, 480))["out"]
    assert out.shape == (1, 11, 360, 480) and torch.isfinite(out).all()
    assert [tuple(s) for s in captured["sizes"]] == [(360, 480), (180, 240), (90, 120), (45, 60), (23, 30)]


@pytest.mark.parametrize("cls", [SegNet, SegNetBasic])
def test_decoder_unpools_with_the_encoders_own_indices(cls: type) -> None:
    torch.manual_seed(0)
    model = cls(5).eval()
    images, other_images = torch.randn(SMALL), torch.randn(SMALL)
    captured = {}
    model.backbone.register_forward_hook(lambda module, inputs, output: captured.update(encoded=output))
    model.head.stages[0].register_forward_pre_hook(lambda module, inputs: captured.update(unpooled=inputs[0]))
    with torch.no_grad():
        out = model(images)["out"]
        deepest, indices, sizes = captured["encoded"]
        # the first decoder stage sees the deepest map put back where the deepest pool took its maxima
        expected = F.max_unpool2d(deepest, indices[-1], 2, stride=2, output_size=sizes[-1])
        torch.testing.assert_close(captured["unpooled"], expected)
        # other (valid) indices give another output: the decoder does not just upsample
        _, other_indices, _ = model.backbone(other_images)
        assert not torch.allclose(model.head(deepest, other_indices, sizes), out)


@pytest.mark.parametrize("cls", [SegNet, SegNetBasic])
def test_every_parameter_gets_a_gradient(cls: type) -> None:
    torch.manual_seed(0)
    model = cls(5).train()
    outputs = model(torch.randn(SMALL))
    assert set(outputs) == {"out"} and outputs["out"].shape == (2, 5, 37, 53)
    assert outputs["out"].min() < 0  # logits: no ReLU after the last conv
    F.cross_entropy(outputs["out"], torch.randint(0, 5, (2, 37, 53))).backward()
    assert_every_parameter_has_a_gradient(model)


def test_he_initialisation() -> None:
    torch.manual_seed(0)
    conv = SegNet(11).head.stages[0][0]
    fan_in = conv.in_channels * 9
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.02)
    assert conv.bias.abs().sum() == 0


def test_encoder_has_timm_vgg16_bn_parameter_names() -> None:
    with torch.device("meta"):
        timm_state = timm.create_model("vgg16_bn").state_dict()
        own_state = SegNet(11).backbone.state_dict()
    assert {k: v.shape for k, v in own_state.items()} == {k: timm_state[k].shape for k in own_state}
    assert not {k for k in timm_state if k.startswith("features.")} - set(own_state)


def test_pretrained_fails_clearly_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with torch.device("meta"), pytest.raises(RuntimeError, match="HF_HUB_OFFLINE"):
        SegNet(11, pretrained="hub")

