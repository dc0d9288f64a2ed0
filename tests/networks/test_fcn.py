"""FCN-32s/16s/8s: exact parameter counts, output size for any input, skip fusion, fixed final upsampler."""

import pytest
import timm
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_seg.networks import create_model, get_model_class
from lit_seg.networks.costs import count_parameters
from lit_seg.networks.fcn import FCN8s, FCN16s, FCN32s
from tests.helpers.model_checks import assert_every_parameter_has_a_gradient

NAMES = ("fcn32s", "fcn16s", "fcn8s")
SMALL = (1, 3, 13, 21)  # the 100-pixel padding makes even this a 211x219 image for VGG16


@pytest.fixture(scope="module")
def fcn8s_and_features() -> tuple[FCN8s, list[Tensor]]:
    """A randomly initialised FCN-8s and its backbone's [pool3, pool4, fc7] for a small image."""
    torch.manual_seed(0)
    model = FCN8s(21).eval()
    with torch.no_grad():
        features = model.backbone(torch.randn(SMALL))
    return model, features


def randomize_scores(head: nn.Module) -> None:
    """Gives the (zero-initialised) score layers random weights so that every input shows."""
    with torch.no_grad():
        for name, module in head.named_modules():
            if name.split(".")[-1] in ("score_fr", "score_pool"):
                module.weight.normal_(std=0.1)
                module.bias.normal_(std=0.1)


@pytest.mark.parametrize(("name", "cls"), [("fcn32s", FCN32s), ("fcn16s", FCN16s), ("fcn8s", FCN8s)])
def test_registered(name: str, cls: type) -> None:
    assert get_model_class(name) is cls


@pytest.mark.parametrize("name", ["fcn32s", "fcn16s", "fcn8s"])
def test_backbone_parameter_count_is_exact(name: str) -> None:
    with torch.device("meta"):
        model = create_model(name, 21)
    assert count_parameters(model.backbone) == 14_714_688 + 102_764_544 + 16_781_312  # 13 convs, fc6, fc7


@pytest.mark.parametrize(("name", "final_kernel"), [("fcn32s", 64), ("fcn16s", 32), ("fcn8s", 16)])
def test_final_upsampler_is_a_fixed_bilinear_buffer(name: str, final_kernel: int) -> None:
    model = create_model(name, 21)
    head = model.head
    assert "final_kernel" in dict(head.named_buffers())
    assert "final_kernel" not in dict(head.named_parameters())
    assert head.final_kernel.shape == (21, 1, final_kernel, final_kernel)
    learned = [m for m in head.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert all(m.kernel_size == (4, 4) and m.stride == (2, 2) and m.bias is None for m in learned)
    # bilinear: a constant map stays constant away from the borders
    stride = final_kernel // 2
    up = F.conv_transpose2d(torch.ones(1, 21, 4, 4), head.final_kernel, stride=stride, groups=21)
    interior = up[..., stride:-stride, stride:-stride]
    torch.testing.assert_close(interior, torch.ones_like(interior))


def test_2x_upsamplers_start_bilinear_and_score_layers_zero() -> None:
    head = FCN8s(21).head
    for fusion in head.fusions:
        weight = fusion.upscore.weight
        assert torch.equal(weight[0, 0], weight[20, 20]) and weight[0, 1].abs().sum() == 0
        torch.testing.assert_close(weight[3, 3].sum(), torch.tensor(4.0))  # 2x upsampling: 4 = 2 * 2
        assert fusion.score_pool.weight.abs().sum() == 0 and fusion.score_pool.bias.abs().sum() == 0
    assert head.score_fr.weight.abs().sum() == 0


@pytest.mark.parametrize("cls", [FCN16s, FCN8s])
def test_2x_upsamplers_are_fixed_as_released_unless_learnable(cls: type) -> None:
    """The released nets never train a deconvolution (lr_mult: 0); learnable_upsampling trains the 2x ones."""
    with torch.device("meta"):
        fixed, learnable = cls(21), cls(21, learnable_upsampling=True)
    weights = 21 * 21 * 4 * 4 * len(fixed.head.fusions)
    assert not any(fusion.upscore.weight.requires_grad for fusion in fixed.head.fusions)
    assert all(fusion.upscore.weight.requires_grad for fusion in learnable.head.fusions)
    assert count_parameters(learnable) - count_parameters(fixed) == weights
    assert fixed.state_dict().keys() == learnable.state_dict().keys()


@pytest.mark.parametrize("name", NAMES)
def test_output_has_input_size_for_any_size(name: str) -> None:
    # On the meta device only shapes are computed: many sizes cost nothing.
    sizes = [(1, 1), (2, 3), (31, 33), (97, 131), (224, 224), (360, 480), (500, 375), (513, 513)]
    sizes += [(h, 64 + h) for h in range(1, 160, 11)]
    with torch.device("meta"):
        model = create_model(name, 21).eval()
        for size in sizes:
            assert model(torch.empty(2, 3, *size))["out"].shape == (2, 21, *size), size


def test_forward_and_every_parameter_gets_a_gradient() -> None:
    torch.manual_seed(0)
    model = FCN8s(4).train()
    outputs = model(torch.randn(SMALL))
    assert set(outputs) == {"out"}
    assert outputs["out"].shape == (1, 4, 13, 21)
    assert outputs["out"].abs().sum() == 0  # zero-initialised score layers
    F.cross_entropy(outputs["out"], torch.randint(0, 4, (1, 13, 21))).backward()
    assert_every_parameter_has_a_gradient(model)


@pytest.mark.parametrize(("cls", "fused"), [(FCN32s, ()), (FCN16s, ("pool4",)), (FCN8s, ("pool4", "pool3"))])
def test_skip_scores_are_fused(
    fcn8s_and_features: tuple[FCN8s, list[Tensor]], cls: type, fused: tuple[str, ...]
) -> None:
    model, features = fcn8s_and_features
    head = model.head if cls is FCN8s else cls(21).head
    randomize_scores(head)
    size = SMALL[-2:]
    with torch.no_grad():
        reference = head(features, size)
        for position, pool in ((1, "pool4"), (0, "pool3")):
            changed = list(features)
            changed[position] = torch.randn_like(changed[position]).abs()
            differs = not torch.allclose(head(changed, size), reference)
            assert differs == (pool in fused), f"{cls.__name__}: {pool} fused is {differs}"


def test_at_once_scales_pool4_and_pool3(fcn8s_and_features: tuple[FCN8s, list[Tensor]]) -> None:
    model, (pool3, pool4, fc7) = fcn8s_and_features
    at_once = FCN8s(21, at_once=True).head
    randomize_scores(model.head)
    at_once.load_state_dict(model.head.state_dict())
    size = SMALL[-2:]
    with torch.no_grad():
        expected = model.head([pool3 * 1e-4, pool4 * 1e-2, fc7], size)
        torch.testing.assert_close(at_once([pool3, pool4, fc7], size), expected)


def test_backbone_has_timm_vgg16_parameter_names() -> None:
    with torch.device("meta"):
        timm_state = timm.create_model("vgg16").state_dict()
        own_state = FCN32s(21).backbone.state_dict()
    assert {k: v.shape for k, v in own_state.items()} == {k: timm_state[k].shape for k in own_state}
    assert set(timm_state) - set(own_state) == {"head.fc.weight", "head.fc.bias"}


def test_pretrained_fails_clearly_offline_or_without_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with torch.device("meta"):
        with pytest.raises(RuntimeError, match="HF_HUB_OFFLINE"):
            FCN32s(21, pretrained="hub")
        with pytest.raises(FileNotFoundError):
            FCN32s(21, pretrained="/nonexistent/vgg16.safetensors")
