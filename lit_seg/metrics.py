"""Segmentation metrics as papers report them, all from one confusion matrix over the whole set.

mIoU: per-class IoU = TP / (TP + FP + FN) accumulated over the evaluation set, averaged over the
classes present in the ground truth or the predictions. Pixel accuracy = correct / labelled.
Class-average accuracy = mean per-class recall over classes present in the ground truth.
Frequency-weighted IoU = class IoUs weighted by each class's share of labelled pixels.
"""

from torch import Tensor
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassConfusionMatrix, MulticlassJaccardIndex


class ConfusionScores(MulticlassConfusionMatrix):
    """Pixel accuracy, class-average accuracy and frequency-weighted IoU from the confusion matrix."""

    def compute(self) -> dict[str, Tensor]:
        confusion = self.confmat.double()  # rows: ground truth, columns: prediction
        true_positives = confusion.diagonal()
        labelled = confusion.sum(dim=1)
        predicted = confusion.sum(dim=0)
        union = labelled + predicted - true_positives
        present = labelled > 0
        iou = true_positives / union.clamp(min=1)
        frequency = labelled / labelled.sum().clamp(min=1)
        return {
            "pixel_acc": (true_positives.sum() / labelled.sum().clamp(min=1)).float(),
            "class_acc": (true_positives[present] / labelled[present]).mean().float(),
            "fwIoU": (frequency[present] * iou[present]).sum().float(),
        }


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
