"""Every registered model honours the output contract and trains every parameter; every paper model
matches the reference parameter counts of PAPERS.md recorded in the registry."""

import pytest
import torch

from lit_seg.networks import ReferenceCount, create_model, get_model_class, list_models, model_entry
from lit_seg.networks.costs import count_parameters
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


REFERENCES = [(name, reference) for name in list_models(paper_only=True) for reference in model_entry(name).references]


def test_the_ten_paper_models_each_have_a_reference_count() -> None:
    paper = list_models(paper_only=True)
    assert paper == [
        "fcn32s", "fcn16s", "fcn8s", "segnet", "pspnet", "deeplabv2", "deeplabv3", "deeplabv3plus", "denseaspp", "refinenet",
    ]
    assert all(model_entry(name).references for name in paper)


@pytest.mark.parametrize(
    ("name", "reference"), REFERENCES, ids=[f"{name}-{ref.description}" for name, ref in REFERENCES]
)
def test_parameter_count_matches_reference(name: str, reference: ReferenceCount) -> None:
    with torch.device("meta"):
        model = create_model(name, reference.num_classes, **reference.options)
    expected = reference.params if reference.exact else pytest.approx(reference.params, rel=0.005)
    assert count_parameters(model) == expected


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(ValueError, match="unknown model 'no-such-net'") as error:
        get_model_class("no-such-net")
    assert all(name in str(error.value) for name in list_models())
