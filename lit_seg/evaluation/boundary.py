"""SegNet's boundary F1 score (BF): per image and class boundary precision and recall within a tolerance."""

import math

import torch
from torch import Tensor
from torchmetrics import Metric


def class_boundaries(masks: Tensor) -> Tensor:
    """The pixels of each ``[..., H, W]`` boolean mask that have a 4-neighbour outside it."""
    interior = masks.clone()
    interior[..., 1:, :] &= masks[..., :-1, :]
    interior[..., :-1, :] &= masks[..., 1:, :]
    interior[..., :, 1:] &= masks[..., :, :-1]
    interior[..., :, :-1] &= masks[..., :, 1:]
    return masks & ~interior


def within_distance(points: Tensor, radius: float) -> Tensor:
    """Pixels of each ``[K, H, W]`` map at Euclidean distance at most ``radius`` from one of its
    True pixels.

    Exact: the horizontal distance to the nearest point in every row (two running extrema), then
    for each vertical offset ``dy`` up to ``radius`` a pixel is near if a row ``dy`` away has a
    point within ``sqrt(radius^2 - dy^2)`` columns. Cost O(K H W radius), on any device.
    """
    _, height, width = points.shape
    columns = torch.arange(width, device=points.device)
    far = width + height + int(radius) + 1
    last = torch.where(points, columns, -far).cummax(-1).values
    next_ = torch.where(points, columns, width + far).flip(-1).cummin(-1).values.flip(-1)
    row_distance = torch.minimum(columns - last, next_ - columns).float()
    squared = row_distance.square()
    near = torch.zeros_like(points)
    for dy in range(min(int(math.floor(radius)), height - 1) + 1):
        reach = squared <= radius**2 - dy**2
        near[:, : height - dy] |= reach[:, dy:]
        near[:, dy:] |= reach[:, : height - dy]
    return near


def image_boundary_f1(
    prediction: Tensor, target: Tensor, ignore_index: int = 255, tolerance: float = 0.0075
) -> Tensor | None:
    """SegNet's BF of one ``[H, W]`` prediction against its ground truth, or None when it has no
    labelled pixel.

    SegNet (after Csurka et al., BMVC 2013) scores each class present in the ground truth by the F1
    of boundary precision (the share of predicted boundary pixels within the tolerance of a true
    boundary pixel) and recall (the converse), and averages over those classes.

    Choices the paper leaves open: a class's boundary is the set of its pixels with a 4-neighbour
    of another label, unlabelled included (VOC marks object outlines as an unlabelled band), and
    the image frame is no boundary; a predicted boundary pixel on unlabelled ground truth counts in
    precision only where it matches a true boundary (an unlabelled pixel cannot be wrong); a class
    whose boundary is empty in both ground truth and prediction (it fills the image) scores 1, and
    empty in one of them 0.

    Args:
        prediction: predicted labels.
        target: ground-truth labels; ``ignore_index`` marks unlabelled pixels.
        ignore_index: the unlabelled value.
        tolerance: the match distance as a fraction of the image diagonal.
    """
    labelled = target != ignore_index
    classes = target[labelled].unique()
    if classes.numel() == 0:
        return None
    radius = tolerance * math.hypot(*target.shape)
    true_boundaries = class_boundaries(target == classes[:, None, None])
    predicted_boundaries = class_boundaries(prediction == classes[:, None, None])
    matched = predicted_boundaries & within_distance(true_boundaries, radius)
    scored = matched | (predicted_boundaries & labelled)  # an unlabelled pixel cannot be wrong
    recalled = true_boundaries & within_distance(predicted_boundaries, radius)
    predicted, true = scored.sum((1, 2)), true_boundaries.sum((1, 2))
    precision = matched.sum((1, 2)).double() / predicted.clamp(min=1)
    recall = recalled.sum((1, 2)).double() / true.clamp(min=1)
    f1 = torch.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    f1 = torch.where((predicted == 0) & (true == 0), 1.0, f1)
    return f1.mean()


class BoundaryF1(Metric):
    """SegNet's boundary F1 score (BF) over an evaluation set: the mean of per-image scores (see
    :func:`image_boundary_f1`); NaN before any image with labelled pixels. The sum of image scores
    and the image count are summed over processes, so DDP gives the single-process value.

    Args:
        ignore_index: label of unlabelled pixels.
        tolerance: the match distance as a fraction of the image diagonal (SegNet: 0.75 %).
    """

    full_state_update = False

    def __init__(self, ignore_index: int = 255, tolerance: float = 0.0075) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.tolerance = tolerance
        self.add_state("score_sum", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("images", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, predictions: Tensor, targets: Tensor) -> None:
        """Adds a batch of ``[B, H, W]`` predictions and targets, each image scored at this size
        (crop padded batches to each image's own size first: the diagonal sets the tolerance)."""
        for prediction, target in zip(predictions, targets):
            score = image_boundary_f1(prediction, target, self.ignore_index, self.tolerance)
            if score is not None:
                self.score_sum += score
                self.images += 1

    def compute(self) -> Tensor:
        return (self.score_sum / self.images).float() if self.images > 0 else torch.tensor(float("nan"))
