"""Inference modes (whole, sliding window, multi-scale + flip) and evaluation over padded batches."""

from pathlib import Path

import pytest
import torch
from lightning import Trainer
from torch import Tensor, nn

from lit_seg.commands.cli import SegmentationCLI
from lit_seg.evaluation.crf import DenseCRF
from lit_seg.evaluation.inference import MultiScaleFlip, SlidingWindow, WholeImage, window_starts
from lit_seg.training.module import SegmentationModule
from tests.helpers.arrays import ArrayDataModule
from tests.helpers.nets import PositionFreeNet, TinyNet
from tests.helpers.tiny_runs import TINY_MODEL

NUM_CLASSES = 4


class FlipSymmetric(nn.Module):
    """A TinyNet made equivariant to horizontal flips by construction: f(x) + flip(f(flip(x)))."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.inner = TinyNet(num_classes)

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        out = self.inner(images)["out"] + self.inner(images.flip(-1))["out"].flip(-1)
        return {"out": out}


def net_fn(net: nn.Module):
    net.eval()
    return lambda images: net(images)["out"]


@torch.no_grad()
def test_window_covering_the_image_equals_whole_image() -> None:
    torch.manual_seed(0)
    run = net_fn(TinyNet(NUM_CLASSES))
    images = torch.randn(2, 3, 37, 45)
    window = SlidingWindow(crop_size=(48, 64), stride=(24, 32), pad=False)
    assert torch.equal(window(run, images), run(images))
    # Padded to the window, only a position-independent network gives the same logits.
    position_free = net_fn(PositionFreeNet(NUM_CLASSES))
    padded = SlidingWindow(crop_size=(48, 64), stride=(24, 32), pad=True)
    torch.testing.assert_close(padded(position_free, images), position_free(images), rtol=0, atol=1e-6)


@torch.no_grad()
def test_overlapping_windows_of_a_position_free_net_equal_whole_image() -> None:
    torch.manual_seed(0)
    run = net_fn(PositionFreeNet(NUM_CLASSES))
    images = torch.randn(2, 3, 70, 95)
    calls = []

    def counting(crops: Tensor) -> Tensor:
        calls.append(len(crops))
        return run(crops)

    window = SlidingWindow(crop_size=(32, 40), stride=(20, 25), batch_size=3)
    torch.testing.assert_close(window(counting, images), run(images), rtol=0, atol=1e-5)
    windows_per_image = len(window_starts(70, 32, 20)) * len(window_starts(95, 40, 25))
    assert sum(calls) == 2 * windows_per_image and max(calls) == 3


def test_window_starts_cover_the_length_and_end_at_the_border() -> None:
    assert window_starts(10, 16, 8) == [0]
    assert window_starts(70, 32, 20) == [0, 20, 38]
    assert window_starts(64, 32, 32) == [0, 32]


@torch.no_grad()
def test_flip_of_a_flip_equivariant_net_changes_nothing() -> None:
    torch.manual_seed(0)
    run = net_fn(FlipSymmetric(NUM_CLASSES))
    images = torch.randn(1, 3, 29, 41)
    flipped = MultiScaleFlip(scales=(1.0,), flip=True)(run, images)
    torch.testing.assert_close(flipped, run(images).log_softmax(1), rtol=0, atol=1e-5)


@torch.no_grad()
def test_multi_scale_output_has_the_input_size() -> None:
    torch.manual_seed(0)
    run = net_fn(TinyNet(NUM_CLASSES))
    images = torch.randn(2, 3, 37, 53)
    for window in (None, SlidingWindow(crop_size=(24, 24), stride=(16, 16), batch_size=2)):
        log_probabilities = MultiScaleFlip(scales=(0.5, 0.75, 1.25, 1.75), flip=True, window=window)(run, images)
        assert log_probabilities.shape == (2, NUM_CLASSES, 37, 53)
        torch.testing.assert_close(log_probabilities.exp().sum(1), torch.ones(2, 37, 53))


def test_inference_applies_in_eval_not_in_training() -> None:
    torch.manual_seed(0)
    calls = []

    class Recording(WholeImage):
        def __call__(self, run, images: Tensor) -> Tensor:
            calls.append(images.shape)
            return super().__call__(run, images)

    module = SegmentationModule(TinyNet, NUM_CLASSES, inference=Recording())
    images = torch.randn(1, 3, 16, 16)
    module.train()
    module(images)
    assert calls == []
    module.eval()
    assert module.infer(images).shape == (1, NUM_CLASSES, 16, 16)
    assert calls == [images.shape]


def test_inference_and_crf_are_chosen_in_the_config(shapes_root: Path) -> None:
    window = '{"class_path": "lit_seg.evaluation.inference.SlidingWindow", "init_args": {"crop_size": [16, 16], "stride": [8, 8]}}'
    multi_scale = '"class_path": "lit_seg.evaluation.inference.MultiScaleFlip"'
    inference = f'{{{multi_scale}, "init_args": {{"scales": [0.5, 1.0], "window": {window}}}}}'
    cli = SegmentationCLI(
        args=[
            "--config", str(TINY_MODEL), "--data", "lit_seg.data.FolderDataModule", "--data.root", str(shapes_root),
            f"--model.inference={inference}", "--model.crf", "lit_seg.evaluation.crf.DenseCRF", "--model.crf.iterations", "5",
        ],
        run=False,
    )
    assert isinstance(cli.model.inference, MultiScaleFlip) and cli.model.inference.scales == (0.5, 1.0)
    assert isinstance(cli.model.inference.window, SlidingWindow) and cli.model.inference.window.crop_size == (16, 16)
    assert isinstance(cli.model.crf, DenseCRF) and cli.model.crf.iterations == 5


def _mixed_size_set() -> tuple[list[Tensor], list[Tensor]]:
    generator = torch.Generator().manual_seed(0)
    images, masks = [], []
    for height, width in ((20, 30), (33, 17), (25, 25), (40, 41), (18, 22), (25, 25)):
        images.append(torch.randn(3, height, width, generator=generator))
        mask = torch.randint(0, NUM_CLASSES, (height, width), generator=generator)
        mask[: height // 3, : width // 2] = 1  # a region with boundaries, for BF
        mask[torch.rand(height, width, generator=generator) < 0.1] = 255
        masks.append(mask)
    return images, masks


@pytest.mark.parametrize("inference", [None, SlidingWindow(crop_size=(16, 16), stride=(10, 10), batch_size=3)])
def test_batch_of_four_mixed_sizes_gives_the_metrics_of_batch_size_one(inference: SlidingWindow | None) -> None:
    images, masks = _mixed_size_set()
    torch.manual_seed(0)
    module = SegmentationModule(TinyNet, NUM_CLASSES, inference=inference)
    results = {}
    for batch_size in (1, 4):
        data = ArrayDataModule(images, masks, NUM_CLASSES, eval_batch_size=batch_size)
        trainer = Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
        trainer.validate(module, datamodule=data, verbose=False)
        results[batch_size] = {k: v.item() for k, v in trainer.callback_metrics.items()}
    assert "val/BF" in results[1] and "val/IoU/3" in results[1]
    assert results[4].keys() == results[1].keys()
    for name, value in results[1].items():
        assert results[4][name] == pytest.approx(value, abs=1e-6, nan_ok=True), name
