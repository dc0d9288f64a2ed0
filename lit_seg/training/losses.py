"""The training loss: cross-entropy over labelled pixels, plus weighted terms for further outputs."""

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_seg.data.options import OptionError


class SegmentationLoss(nn.Module):
    """Pixel-wise cross-entropy on ``"out"``, plus ``aux_weight`` times that on ``"aux"`` and once
    that on each logits of ``"scales"`` (DeepLabV2's multi-scale inputs), where the network gives them.

    Unlike ``F.cross_entropy``'s mean, a crop whose pixels are all ``ignore_index`` gives a loss of
    zero rather than NaN, so the NaN guard only fires on real divergence.

    Args:
        num_classes: number of classes.
        ignore_index: label excluded from the loss.
        class_weights: per-class weights (e.g. median-frequency balancing), or None.
        aux_weight: weight of the auxiliary loss (PSPNet uses 0.4).
        normalize: what the weighted sum over pixels is divided by: ``"weight_sum"``, the sum of the
            labelled pixels' class weights (PyTorch's weighted mean), or ``"pixel_count"``, the number
            of labelled pixels (Caffe-SegNet's ``SoftmaxWithLoss`` with ``weight_by_label_freqs``). The
            two agree without class weights.
    """

    def __init__(
        self,
        num_classes: int,
        ignore_index: int = 255,
        class_weights: list[float] | None = None,
        aux_weight: float = 0.4,
        normalize: Literal["weight_sum", "pixel_count"] = "weight_sum",
    ) -> None:
        super().__init__()
        if class_weights is not None and len(class_weights) != num_classes:
            raise OptionError(f"class_weights has {len(class_weights)} entries, expected one per class ({num_classes})")
        if normalize not in ("weight_sum", "pixel_count"):
            raise OptionError(f"normalize is {normalize!r}, expected 'weight_sum' or 'pixel_count'")
        weights = torch.ones(num_classes) if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)
        self.register_buffer("class_weights", weights)
        self.weighted = class_weights is not None
        self.ignore_index = ignore_index
        self.aux_weight = aux_weight
        self.normalize = normalize

    def cross_entropy(self, logits: Tensor, target: Tensor) -> Tensor:
        """Weighted cross-entropy summed over the pixels that are not ignored, divided as ``normalize`` says."""
        weight = self.class_weights if self.weighted else None
        total = F.cross_entropy(logits.float(), target, weight=weight, ignore_index=self.ignore_index, reduction="sum")
        labelled = target != self.ignore_index
        if self.weighted and self.normalize == "weight_sum":
            denominator = (self.class_weights[target.clamp(0, len(self.class_weights) - 1)] * labelled).sum()
        else:
            denominator = labelled.sum()
        return total / denominator.clamp(min=1e-6)

    def forward(self, outputs: dict[str, Tensor | list[Tensor]], target: Tensor) -> dict[str, Tensor]:
        """Returns ``{"loss": total, "out": main loss}`` plus ``"aux"`` when the net gave aux logits
        and ``"scale<i>"`` for the i-th logits of ``"scales"``."""
        losses = {"out": self.cross_entropy(outputs["out"], target)}
        losses["loss"] = losses["out"]
        if "aux" in outputs and self.aux_weight:
            losses["aux"] = self.cross_entropy(outputs["aux"], target)
            losses["loss"] = losses["loss"] + self.aux_weight * losses["aux"]
        for i, logits in enumerate(outputs.get("scales", [])):
            losses[f"scale{i}"] = self.cross_entropy(logits, target)
            losses["loss"] = losses["loss"] + losses[f"scale{i}"]
        return losses
