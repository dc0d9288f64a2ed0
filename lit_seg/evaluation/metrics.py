"""Segmentation metrics as papers report them, all from one confusion matrix over the whole set.

mIoU: per-class IoU = TP / (TP + FP + FN) accumulated over the evaluation set, averaged over the
classes present in the ground truth or the predictions. Pixel accuracy = correct / labelled.
Class-average accuracy = mean per-class recall over classes present in the ground truth.
Frequency-weighted IoU = class IoUs weighted by each class's share of labelled pixels.
"""

from torch import Tensor
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassConfusionMatrix, MulticlassJaccardIndex


def per_class_scores(confusion: Tensor) -> dict[str, Tensor]:
    """IoU, accuracy (recall) and precision per class, NaN where undefined, and the ground-truth and
    predicted pixel counts, from a ``[C, C]`` confusion matrix (rows ground truth, columns prediction)."""
    confusion = confusion.double()
    true_positives = confusion.diagonal()
    labelled, predicted = confusion.sum(dim=1), confusion.sum(dim=0)
    return {  # 0 / 0 is NaN
        "IoU": true_positives / (labelled + predicted - true_positives),
        "accuracy": true_positives / labelled,
        "precision": true_positives / predicted,
        "ground_truth_pixels": labelled,
        "predicted_pixels": predicted,
    }


def summary_scores(confusion: Tensor) -> dict[str, Tensor]:
    """``mIoU``, ``pixel_acc``, ``class_acc`` and ``fwIoU`` (float64) from a ``[C, C]`` confusion matrix."""
    confusion = confusion.double()
    scores = per_class_scores(confusion)
    labelled = scores["ground_truth_pixels"]
    present = labelled > 0
    total = labelled.sum().clamp(min=1)
    return {
        "mIoU": scores["IoU"].nanmean(),
        "pixel_acc": confusion.diagonal().sum() / total,
        "class_acc": scores["accuracy"][present].mean(),
        "fwIoU": (labelled[present] / total * scores["IoU"][present]).sum(),
    }


class ConfusionScores(MulticlassConfusionMatrix):
    """Pixel accuracy, class-average accuracy and frequency-weighted IoU from the confusion matrix
    (mIoU comes from torchmetrics' JaccardIndex beside it)."""

    def compute(self) -> dict[str, Tensor]:
        scores = summary_scores(self.confmat)
        return {name: scores[name].float() for name in ("pixel_acc", "class_acc", "fwIoU")}


def segmentation_metrics(num_classes: int, ignore_index: int = 255) -> MetricCollection:
    """``mIoU``, per-class ``IoU`` (NaN for classes absent from ground truth and predictions),
    ``pixel_acc``, ``class_acc`` and ``fwIoU``. The three share one confusion-matrix state
    (torchmetrics compute groups), so each update costs one bincount. Labels are validated once by
    the datasets, hence ``validate_args=False``.
    """
    common = {"num_classes": num_classes, "ignore_index": ignore_index, "validate_args": False}
    return MetricCollection(
        {
            "mIoU": MulticlassJaccardIndex(average="macro", **common),
            "IoU": MulticlassJaccardIndex(average="none", zero_division=float("nan"), **common),
            "scores": ConfusionScores(**common),
        },
        compute_groups=True,
    )


def flatten_results(results: dict[str, Tensor], class_names: list[str], prefix: str = "") -> dict[str, Tensor]:
    """Splits the per-class ``<prefix>IoU`` vector into ``<prefix>IoU/<class name>`` entries."""
    flat = {}
    for key, value in results.items():
        if key == f"{prefix}IoU":
            flat.update({f"{prefix}IoU/{name}": value[i] for i, name in enumerate(class_names)})
        else:
            flat[key] = value
    return flat
