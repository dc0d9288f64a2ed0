"""The module's epoch metrics against an independent NumPy confusion-matrix implementation."""

import numpy as np
import pytest
import torch
from lightning import Trainer

from lit_seg.training.module import SegmentationModule
from tests.helpers.arrays import ArrayDataModule, one_hot_predictions
from tests.helpers.nets import IdentityNet

NUM_CLASSES = 6
IGNORE = 255


def numpy_reference(predictions: list[np.ndarray], targets: list[np.ndarray]) -> dict[str, float | np.ndarray]:
    """The PAPERS.md definitions, computed from a confusion matrix over the whole set."""
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    for pred, target in zip(predictions, targets):
        keep = target != IGNORE
        np.add.at(confusion, (target[keep], pred[keep]), 1)
    tp = np.diag(confusion).astype(float)
    gt, pr = confusion.sum(1).astype(float), confusion.sum(0).astype(float)
    union = gt + pr - tp
    iou = np.full(NUM_CLASSES, np.nan)
    iou[union > 0] = tp[union > 0] / union[union > 0]
    present = gt > 0
    return {
        "IoU": iou,
        "mIoU": np.nanmean(iou),
        "pixel_acc": tp.sum() / gt.sum(),
        "class_acc": np.mean(tp[present] / gt[present]),
        "fwIoU": np.sum(gt[present] / gt.sum() * iou[present]),
    }


def random_set(seed: int, count: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Predictions and targets where class 4 never occurs and class 5 occurs only in predictions."""
    generator = torch.Generator().manual_seed(seed)
    predictions, targets = [], []
    for _ in range(count):
        target = torch.randint(0, 4, (9, 11), generator=generator)
        target[torch.rand(9, 11, generator=generator) < 0.2] = IGNORE
        pred = torch.where(torch.rand(9, 11, generator=generator) < 0.6, target.clamp(max=3),
                           torch.randint(0, 4, (9, 11), generator=generator))
        pred[torch.rand(9, 11, generator=generator) < 0.05] = 5
        predictions.append(pred)
        targets.append(target)
    return predictions, targets


def validate(predictions: list[torch.Tensor], targets: list[torch.Tensor], **trainer_options: object) -> dict[str, float]:
    data = ArrayDataModule([one_hot_predictions(NUM_CLASSES, p) for p in predictions], targets, NUM_CLASSES, eval_batch_size=2)
    module = SegmentationModule(IdentityNet, NUM_CLASSES, data.class_names)
    trainer = Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", **trainer_options)
    trainer.validate(module, datamodule=data, verbose=False)
    return {k: v.item() for k, v in trainer.callback_metrics.items()}


def test_epoch_metrics_equal_numpy_reference() -> None:
    predictions, targets = random_set(seed=0, count=7)
    metrics = validate(predictions, targets, devices=1)
    reference = numpy_reference([p.numpy() for p in predictions], [t.numpy() for t in targets])
    for name in ("mIoU", "pixel_acc", "class_acc", "fwIoU"):
        assert metrics[f"val/{name}"] == pytest.approx(reference[name], abs=1e-6), name
    for c in range(NUM_CLASSES):
        value = metrics[f"val/IoU/class{c}"]
        if np.isnan(reference["IoU"][c]):
            assert np.isnan(value), f"class {c} is absent everywhere: its IoU must be NaN, not {value}"
        else:
            assert value == pytest.approx(reference["IoU"][c], abs=1e-6)
    assert reference["IoU"][5] == 0.0  # only predicted: a real zero, counted in the mean
    assert np.isnan(reference["IoU"][4])


def test_ddp_validation_counts_no_sample_twice() -> None:
    predictions, targets = random_set(seed=1, count=5)  # 5 samples over 2 processes
    single = validate(predictions, targets, devices=1)
    double = validate(predictions, targets, devices=2, strategy="ddp_fork")
    for name in ("mIoU", "pixel_acc", "class_acc", "fwIoU"):
        assert double[f"val/{name}"] == pytest.approx(single[f"val/{name}"], abs=1e-7), name
