"""The training loss: Caffe-SegNet's normalisation by the labelled pixel count, and one term per output."""

import math

import pytest
import torch

from lit_seg.training.losses import SegmentationLoss
from lit_seg.training.module import SegmentationModule
from tests.helpers.nets import TinyNet

WEIGHTS = [0.5, 2.0, 4.0]
TARGET = torch.tensor([[[0, 1, 2], [255, 1, 0]]])  # one ignored pixel


def logits_2x3() -> torch.Tensor:
    """Uniform logits over 3 classes (cross-entropy ln 3), except a confident class 1 at (0, 1)
    (p = 4/6, cross-entropy ln 1.5) and an ignored pixel whose logits must not count."""
    logits = torch.zeros(1, 3, 2, 3)
    logits[0, 1, 0, 1] = math.log(4.0)
    logits[0, :, 1, 0] = torch.tensor([50.0, -50.0, 0.0])
    return logits


# Weighted sum over the five labelled pixels: 0.5 ln3 + 2 ln1.5 + 4 ln3 + 2 ln3 + 0.5 ln3.
WEIGHTED_SUM = 7 * math.log(3) + 2 * math.log(1.5)


@pytest.mark.parametrize(("normalize", "denominator"), [("pixel_count", 5), ("weight_sum", 0.5 + 2 + 4 + 2 + 0.5)])
def test_weighted_loss_by_hand(normalize: str, denominator: float) -> None:
    loss = SegmentationLoss(3, class_weights=WEIGHTS, normalize=normalize)
    assert loss.cross_entropy(logits_2x3(), TARGET).item() == pytest.approx(WEIGHTED_SUM / denominator, rel=1e-6)


def test_normalisations_agree_without_class_weights() -> None:
    by_count, by_weight = (SegmentationLoss(3, normalize=n) for n in ("pixel_count", "weight_sum"))
    logits = logits_2x3()
    torch.testing.assert_close(by_count.cross_entropy(logits, TARGET), by_weight.cross_entropy(logits, TARGET))


def test_module_passes_loss_normalize() -> None:
    module = SegmentationModule(TinyNet(3), 3, class_weights=WEIGHTS, loss_normalize="pixel_count")
    losses = module.criterion({"out": logits_2x3()}, TARGET)
    assert losses["loss"].item() == pytest.approx(WEIGHTED_SUM / 5, rel=1e-6)


def test_unknown_normalisation_is_refused() -> None:
    with pytest.raises(ValueError, match="normalize is 'mean'"):
        SegmentationLoss(3, normalize="mean")


def test_multi_scale_outputs_each_add_a_term() -> None:
    """DeepLabV2's four outputs (the max-fused logits and those of three input scales) each have weight 1."""
    torch.manual_seed(0)
    target = torch.randint(0, 3, (2, 5, 7))
    outputs = {"out": torch.randn(2, 3, 5, 7, requires_grad=True)}
    outputs["scales"] = [torch.randn(2, 3, 5, 7, requires_grad=True) for _ in range(3)]
    loss = SegmentationLoss(3)
    losses = loss(outputs, target)
    assert set(losses) == {"loss", "out", "scale0", "scale1", "scale2"}
    terms = [loss.cross_entropy(logits, target) for logits in [outputs["out"], *outputs["scales"]]]
    torch.testing.assert_close(losses["loss"], sum(terms))
    losses["loss"].backward()
    assert all(logits.grad.abs().sum() > 0 for logits in [outputs["out"], *outputs["scales"]])
