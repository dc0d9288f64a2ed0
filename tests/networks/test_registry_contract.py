"""Every registered model honours the output contract and trains every parameter."""

import pytest
import torch

from lit_seg.networks import create_model, get_model_class, list_models
from tests.helpers.model_checks import assert_every_parameter_gets_a_gradient

IMAGES = (2, 3, 97, 131)
NUM_CLASSES = 4

# Small options that keep a CPU forward and backward fast; models not listed use their defaults.
FAST_OPTIONS: dict[str, dict[str, object]] = {
    "deeplabv2": {"backbone": "resnet18"},
    "deeplabv3": {"backbone": "resnet18", "multi_grid": None},  # ResNet-18's layer4 has four 3x3 convs
    "deeplabv3plus": {"backbone": "resnet18", "multi_grid": None},
    "pspnet": {"backbone": "resnet18"},
    "refinenet": {"backbone": "resnet18"},
    "denseaspp": {"backbone": "densenet121"},
    "smp.dpt": {"encoder_name": "tu-test_vit"},
}


def fast_options(name: str) -> dict[str, object]:
    """The fast options for ``name``: smp models get a ResNet-18 encoder unless listed."""
    default = {"encoder_name": "resnet18"} if name.startswith("smp.") else {}
    return FAST_OPTIONS.get(name, default)


@pytest.mark.parametrize("name", list_models())
def test_output_contract_and_gradients(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, NUM_CLASSES, **fast_options(name))
    has_aux_head = getattr(model, "aux_head", None) is not None

    outputs = model.train()(torch.randn(IMAGES))
    assert set(outputs) == ({"out", "aux"} if has_aux_head else {"out"})
    for logits in outputs.values():
        assert logits.shape == (IMAGES[0], NUM_CLASSES, *IMAGES[2:])
    assert_every_parameter_gets_a_gradient(model, outputs)

    with torch.no_grad():
        outputs = model.eval()(torch.randn(1, *IMAGES[1:]))
    assert set(outputs) == {"out"}
    assert outputs["out"].shape == (1, NUM_CLASSES, *IMAGES[2:])


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(ValueError, match="unknown model 'no-such-net'") as error:
        get_model_class("no-such-net")
    assert all(name in str(error.value) for name in list_models())
