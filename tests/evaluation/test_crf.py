"""The fully connected CRF: the reference implementation's output, the lattice's Gaussian, and
that it cleans noisy predictions of an image with sharp colour edges."""

import pytest
import torch
from lightning import Trainer
from torch import nn
from torchmetrics.classification import MulticlassJaccardIndex

from lit_seg.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from lit_seg.evaluation.boundary import image_boundary_f1
from lit_seg.evaluation.crf import DenseCRF, PermutohedralLattice
from lit_seg.training.module import SegmentationModule
from tests.helpers.arrays import ArrayDataModule, one_hot_predictions

# Q after 10 iterations at pixels (0, 0), (4, 5), (4, 6), (8, 11), (2, 9) of the input below, from
# the reference C++ implementation (pydensecrf2 1.1, built from source; it is not a dependency):
# DenseCRF2D, unary -log p, addPairwiseGaussian(sxy=1, compat=3), addPairwiseBilateral(sxy=5,
# srgb=20, compat=4), inference(10).
REFERENCE_Q = [
    [0.000436, 0.998976, 0.000589],
    [0.003711, 0.076234, 0.920056],
    [0.000528, 0.000913, 0.998559],
    [0.987318, 0.001559, 0.011123],
    [0.001263, 0.00066, 0.998077],
]


def test_mean_field_equals_the_reference_implementation() -> None:
    i, j = torch.meshgrid(torch.arange(9), torch.arange(12), indexing="ij")
    image = torch.stack([(i * 37 + j * 11) % 256, (j * 23) % 256, torch.where(j < 6, 40, 200)])
    logits = torch.stack([torch.sin(i * 0.7 + j * 0.3), torch.cos(i * 0.2 - j * 0.5), torch.full((9, 12), 0.3)])
    q = DenseCRF(bilateral_xy_std=5, bilateral_rgb_std=20)(logits, image)
    pixels = [(0, 0), (4, 5), (4, 6), (8, 11), (2, 9)]
    at_pixels = torch.stack([q[:, y, x] for y, x in pixels])
    torch.testing.assert_close(at_pixels, torch.tensor(REFERENCE_Q), rtol=0, atol=2e-6)
    torch.testing.assert_close(q.sum(0), torch.ones(9, 12))


def test_lattice_filter_approximates_the_gaussian_kernel() -> None:
    """The normalised lattice filter against the exact dense Gaussian on a few hundred points."""
    generator = torch.Generator().manual_seed(0)
    features = torch.rand(400, 3, generator=generator) * 4
    values = torch.rand(400, 2, generator=generator)
    lattice = PermutohedralLattice(features)
    approximate = lattice.filter(values) / lattice.filter(torch.ones(400, 1))
    errors = {}
    for std in (0.8, 1.0, 1.2):
        kernel = torch.exp(-torch.cdist(features, features).square() / (2 * std**2))
        errors[std] = (approximate - kernel @ values / kernel.sum(1, keepdim=True)).abs().mean().item()
    assert errors[1.0] < 0.005 and errors[1.0] < min(errors[0.8], errors[1.2]) / 1.5, errors


def _shapes_image(size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """An image with sharp colour edges (a red rectangle and a green disc on grey) and its labels."""
    labels = torch.zeros(size, size, dtype=torch.long)
    labels[8:40, 6:30] = 1
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    labels[(y - 42).square() + (x - 44).square() < 14**2] = 2
    colours = torch.tensor([[90, 90, 90], [220, 30, 30], [30, 200, 60]])
    return colours[labels].permute(2, 0, 1), labels


def test_crf_cleans_noisy_unaries_along_colour_edges() -> None:
    image, labels = _shapes_image()
    generator = torch.Generator().manual_seed(0)
    logits = 2.0 * torch.nn.functional.one_hot(labels, 3).permute(2, 0, 1).float()
    logits += 1.5 * torch.randn(logits.shape, generator=generator)
    noisy = logits.argmax(0)
    refined = DenseCRF()(logits, image).argmax(0)
    miou = MulticlassJaccardIndex(num_classes=3, average="macro")
    before, after = miou(noisy, labels).item(), miou(refined, labels).item()
    assert before < 0.75 and after > before + 0.15, (before, after)
    assert image_boundary_f1(refined, labels).item() > image_boundary_f1(noisy, labels).item() + 0.3


class FixedLogits(nn.Module):
    """Returns the same logits for any image of their size."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("logits", logits)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"out": self.logits.expand(len(images), -1, -1, -1)}


class RecordingCRF(DenseCRF):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[torch.Tensor] = []

    def __call__(self, logits: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        self.images.append(image)
        return super().__call__(logits, image)


def test_module_applies_the_crf_to_unnormalised_images() -> None:
    image, labels = _shapes_image(32)
    generator = torch.Generator().manual_seed(1)
    logits = 2.0 * one_hot_predictions(3, labels) + 1.5 * torch.randn(3, 32, 32, generator=generator)
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    data = ArrayDataModule([(image / 255 - mean) / std], [labels], num_classes=3)  # normalised as the data's
    scores = {}
    for crf in (None, RecordingCRF()):
        module = SegmentationModule(FixedLogits(logits[None]), 3, crf=crf)
        trainer = Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
        trainer.validate(module, datamodule=data, verbose=False)
        scores[crf is not None] = trainer.callback_metrics["val/mIoU"].item()
    torch.testing.assert_close(crf.images[0], image.float(), rtol=0, atol=1e-3)
    assert scores[True] > scores[False] + 0.2, scores


@pytest.mark.slow
def test_runtime_512_by_512_with_21_classes() -> None:
    """Prints the CPU runtime the lead asked for (not an assertion on speed)."""
    import time

    image, _ = _shapes_image(512)
    logits = torch.randn(21, 512, 512)
    start = time.perf_counter()
    DenseCRF()(logits, image)
    print(f"DenseCRF 512x512, 21 classes, 10 iterations: {time.perf_counter() - start:.2f} s")
