"""The smp wrapper: registration, smp's own logits at any input size, unused parts dropped, weights."""

import pytest
import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from lit_seg.networks import create_model, list_models
from lit_seg.networks.costs import count_parameters
from lit_seg.networks.smp import SMPModel

ARCHITECTURES = [cls.__name__ for cls in smp.MODEL_ARCHITECTURES_MAPPING.values()]


def small_encoder(arch: str) -> str:
    """A fast encoder for ``arch``: DPT needs a timm ViT."""
    return "tu-test_vit" if arch == "DPT" else "resnet18"


def test_every_smp_architecture_is_registered() -> None:
    expected = {f"smp.{key}" for key in smp.MODEL_ARCHITECTURES_MAPPING}
    assert expected == {name for name in list_models() if name.startswith("smp.")}
    assert len(expected) == 12


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_logits_are_smps_on_the_padded_image_cropped_to_the_input(arch: str) -> None:
    options = {"dynamic_img_size": True} if arch == "DPT" else {}
    torch.manual_seed(0)
    reference = getattr(smp, arch)(encoder_name=small_encoder(arch), encoder_weights=None, classes=3, **options)
    torch.manual_seed(0)
    model = create_model(f"smp.{arch.lower()}", 3, encoder_name=small_encoder(arch))
    images = torch.randn(1, 3, 97, 131)
    height, width = model.padded_size(97, 131)
    with torch.no_grad():
        expected = reference.eval()(F.pad(images, (0, width - 131, 0, height - 97)))[..., :97, :131]
        logits = model.eval()(images)["out"]
    assert logits.shape == (1, 3, 97, 131)
    torch.testing.assert_close(logits, expected)


@pytest.mark.parametrize(
    ("arch", "expected"),
    [
        ("Unet", (97, 131)),  # smp's Unet takes any size
        ("FPN", (128, 160)),  # multiples of 32
        ("DeepLabV3", (104, 136)),  # output stride 8
        ("DeepLabV3Plus", (112, 144)),  # output stride 16
        ("PSPNet", (104, 136)),  # encoder depth 3: stride 8
        ("PAN", (128, 144)),  # stride 16, and 8 pixels in the deepest map
        ("DPT", (128, 160)),  # ViT/16 tokens reassembled down to stride 32
    ],
)
def test_padding_is_minimal(arch: str, expected: tuple[int, int]) -> None:
    with torch.device("meta"):
        model = SMPModel(3, arch=arch, encoder_name=small_encoder(arch))
    assert model.padded_size(97, 131) == expected


@pytest.mark.parametrize("arch", ["Unet", "PSPNet", "PAN", "DPT"])
def test_tiny_inputs_keep_their_size(arch: str) -> None:
    model = SMPModel(3, arch=arch, encoder_name=small_encoder(arch)).train()
    assert model(torch.randn(2, 3, 5, 7))["out"].shape == (2, 3, 5, 7)


@pytest.mark.parametrize("name", [name for name in list_models() if name.startswith("smp.")])
def test_default_options_give_logits_at_input_size(name: str) -> None:
    with torch.device("meta"):
        model = create_model(name, 3).eval()
        assert model(torch.zeros(1, 3, 97, 131))["out"].shape == (1, 3, 97, 131)


def test_pspnet_drops_the_encoder_stages_smp_never_runs() -> None:
    with torch.device("meta"):
        reference = smp.PSPNet(encoder_name="resnet34", encoder_weights=None, classes=3)
        model = create_model("smp.pspnet", 3)
    assert isinstance(model.backbone.layer3, nn.Identity) and isinstance(model.backbone.layer4, nn.Identity)
    assert count_parameters(model) == count_parameters(reference) - count_parameters(reference.encoder.layer3) - count_parameters(reference.encoder.layer4)


def test_dpt_drops_the_vit_classifier_and_final_norm() -> None:
    with torch.device("meta"):
        model = SMPModel(3, arch="DPT", encoder_name="tu-test_vit")
    assert isinstance(model.backbone.model.head, nn.Identity)
    assert isinstance(model.backbone.model.norm, nn.Identity)


def test_encoder_weights_from_a_file(tmp_path) -> None:
    torch.manual_seed(0)
    source = SMPModel(3, arch="FPN", encoder_name="resnet18").backbone.state_dict()
    path = tmp_path / "resnet18.safetensors"
    save_file(source, str(path))
    torch.manual_seed(1)
    model = SMPModel(3, arch="FPN", encoder_name="resnet18", encoder_weights=str(path))
    for key, value in model.backbone.state_dict().items():
        torch.testing.assert_close(value, source[key])
    # PSPNet keeps only part of the encoder; the rest of the file is ignored.
    pspnet = SMPModel(3, arch="PSPNet", encoder_name="resnet18", encoder_weights=str(path))
    torch.testing.assert_close(pspnet.backbone.layer2[0].conv1.weight, source["layer2.0.conv1.weight"])


def test_hub_weights_fail_fast_offline() -> None:
    with pytest.raises(RuntimeError, match="HF_HUB_OFFLINE"):
        SMPModel(3, arch="FPN", encoder_name="resnet18", encoder_weights="imagenet")


def test_unknown_architecture_lists_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown smp architecture 'Nope'.*DeepLabV3Plus"):
        SMPModel(3, arch="Nope")


def test_decoder_channels_reach_each_architectures_option() -> None:
    with torch.device("meta"):
        fpn = SMPModel(3, arch="FPN", encoder_name="resnet18", decoder_channels=64)
        unet = SMPModel(3, arch="Unet", encoder_name="resnet18", decoder_channels=(64, 32, 16, 16, 8))
    assert fpn.head.decoder.p5.out_channels == 64
    assert unet.head.segmentation_head[0].in_channels == 8
    with pytest.raises(ValueError, match="Linknet has no decoder width"):
        SMPModel(3, arch="Linknet", decoder_channels=64)
