"""DenseASPP: reference parameter counts, the output-stride-8 DenseNet, the dense atrous layers, the
released code's rectified backbone map and corner-aligned upsampling."""

import pytest
import timm
import torch
from safetensors.torch import save_file
from torch import nn

from lit_seg.networks import get_model_class
from lit_seg.networks.denseaspp import DenseASPP
from tests.helpers.model_checks import record_resizes


def test_registered() -> None:
    assert get_model_class("denseaspp") is DenseASPP


@pytest.mark.parametrize(
    ("backbone", "channels", "widths"),
    [("densenet121", 512, (128, 64)), ("densenet161", 1104, (512, 128)),
     ("densenet169", 832, (336, 168)), ("densenet201", 960, (480, 240))],
)
def test_output_stride_8_backbone_and_official_widths(
    backbone: str, channels: int, widths: tuple[int, int]
) -> None:
    with torch.device("meta"):
        model = DenseASPP(19, backbone=backbone)
        (features,) = model.backbone(torch.zeros(1, 3, 64, 96))
    assert features.shape == (1, channels, 8, 12)
    first = model.head.layers[0]
    assert (first[1].out_channels, first[4].out_channels) == widths


def test_paper_configuration() -> None:
    with torch.device("meta"):
        model = DenseASPP(19, backbone="densenet121")
    backbone = model.backbone
    assert not hasattr(backbone.transition2, "pool") and not hasattr(backbone.transition3, "pool")
    assert hasattr(backbone.transition1, "pool")
    assert {layer.conv2.dilation for layer in backbone.denseblock3.children()} == {(2, 2)}
    assert {layer.conv2.dilation for layer in backbone.denseblock4.children()} == {(4, 4)}
    assert backbone.transition4.conv.in_channels == 1024 and backbone.transition4.conv.out_channels == 512
    assert type(backbone.norm5) is nn.BatchNorm2d and backbone.norm5.num_features == 512
    assert [name for name, _ in backbone.named_children()][-2:] == ["transition4", "norm5"]

    layers = model.head.layers
    assert [layer[-2].dilation for layer in layers] == [(r, r) for r in (3, 6, 12, 18, 24)]
    assert isinstance(layers[0][0], nn.ReLU)  # the first atrous layer has no leading BN
    assert [layer[0].num_features for layer in layers[1:]] == [512 + 64 * i for i in range(1, 5)]
    norms = [m for m in model.head.modules() if isinstance(m, nn.BatchNorm2d)]
    assert {m.momentum for m in norms} == {3e-4}
    assert all(layer[-1].p == 0.1 for layer in layers) and model.head.dropout.p == 0.1
    assert model.head.classifier.in_channels == 512 + 5 * 64


def run_with_hooks(model: DenseASPP, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eval-mode logits, the backbone's output and the classifier's input (the whole dense
    concatenation, whose last channels are the backbone map)."""
    seen = {}
    model.backbone.register_forward_hook(lambda module, args, output: seen.update(backbone=output[0]))
    model.head.classifier.register_forward_pre_hook(lambda module, args: seen.update(concat=args[0]))
    with torch.no_grad():
        logits = model.eval()(images)["out"]
    return logits, seen["backbone"], seen["concat"]


def test_backbone_map_enters_the_dense_concatenation_rectified() -> None:
    torch.manual_seed(0)
    model = DenseASPP(3, backbone="densenet121")
    unrectified = DenseASPP(3, backbone="densenet121", rectify_backbone_output=False)
    unrectified.load_state_dict(model.state_dict())
    images = torch.randn(1, 3, 32, 48)

    logits, backbone_map, concat = run_with_hooks(model, images)
    assert backbone_map.min() < 0  # norm5 is a plain BN: its output has negative values
    torch.testing.assert_close(concat[:, -backbone_map.shape[1] :], backbone_map.relu())
    other_logits, backbone_map, concat = run_with_hooks(unrectified, images)
    torch.testing.assert_close(concat[:, -backbone_map.shape[1] :], backbone_map)
    assert not torch.allclose(logits, other_logits)


@pytest.mark.parametrize("align_corners", [True, False])
def test_final_upsampling_follows_align_corners(monkeypatch, align_corners: bool) -> None:
    calls = record_resizes(monkeypatch)
    options = {} if align_corners else {"align_corners": False}
    model = DenseASPP(3, backbone="densenet121", **options).eval()
    with torch.no_grad():
        model(torch.randn(1, 3, 32, 48))
    assert calls == [("bilinear", align_corners)]


def test_pretrained_weights_from_a_timm_file(tmp_path) -> None:
    torch.manual_seed(0)
    source = timm.create_model("densenet121").state_dict()
    path = tmp_path / "densenet121.safetensors"
    save_file(source, str(path))
    model = DenseASPP(3, backbone="densenet121", pretrained=str(path))
    torch.testing.assert_close(model.backbone.conv0.weight, source["features.conv0.weight"])
    last = "denseblock4.denselayer16.conv2.weight"
    torch.testing.assert_close(model.backbone.get_parameter(last), source[f"features.{last}"])
