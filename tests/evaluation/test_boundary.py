"""SegNet's boundary F1 score against hand-computed cases, a brute-force distance, and under DDP."""

import numpy as np
import pytest
import torch
from lightning import Trainer
from scipy.ndimage import distance_transform_edt

from lit_seg.evaluation.boundary import BoundaryF1, class_boundaries, image_boundary_f1, within_distance
from lit_seg.training.module import SegmentationModule
from tests.helpers.arrays import ArrayDataModule, one_hot_predictions
from tests.helpers.nets import IdentityNet

# 300 x 400 pixels: the diagonal is 500, so SegNet's tolerance (0.75 %) is 3.75 pixels.
HEIGHT, WIDTH = 300, 400


def halves(edges: list[int]) -> torch.Tensor:
    """Class 0 left of column ``edges[row]``, class 1 from it on."""
    columns = torch.arange(WIDTH)
    return (columns[None, :] >= torch.tensor(edges)[:, None]).long()


TRUTH = halves([200] * HEIGHT)


def f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall)


def test_edge_shifted_within_the_tolerance_scores_one() -> None:
    assert image_boundary_f1(halves([203] * HEIGHT), TRUTH).item() == 1.0


def test_edge_shifted_beyond_the_tolerance_scores_zero() -> None:
    assert image_boundary_f1(halves([204] * HEIGHT), TRUTH).item() == 0.0


def test_edge_shifted_beyond_the_tolerance_in_the_top_half_only() -> None:
    """Top 150 rows: the edge at column 204 (4 pixels off), bottom 150 rows: at 200 (exact).

    Class 0's predicted boundary: column 203 in the top half (150 pixels, all 4 away), row 149 at
    columns 200-202 above the step (3 pixels, 1-3 away) and column 199 in the bottom half (150, on
    the truth): precision 153/303. Its true boundary, column 199, is matched in the bottom half
    (150) and in rows 146-149, within sqrt(3^2 + 1) of pixel (149, 200): recall 154/300.
    Class 1 mirrors it, but its step pixels sit in row 150 at columns 201-203, so only rows 147-149
    of its true boundary (column 200) are within reach of (150, 200): recall 153/300.
    """
    prediction = halves([204] * 150 + [200] * 150)
    expected = (f1(153 / 303, 154 / 300) + f1(153 / 303, 153 / 300)) / 2
    assert image_boundary_f1(prediction, TRUTH).item() == pytest.approx(expected, abs=1e-9)


def test_an_edge_inside_an_unlabelled_band_matches_both_sides() -> None:
    """VOC-style outline: columns 198-201 unlabelled; the predicted edge at 200 lies in the band,
    2 pixels from class 0's true boundary (column 197) and 2 from class 1's (column 202)."""
    truth = TRUTH.clone()
    truth[:, 198:202] = 255
    assert image_boundary_f1(halves([200] * HEIGHT), truth).item() == 1.0


def test_unmatched_predicted_boundaries_on_unlabelled_pixels_do_not_count() -> None:
    """An unlabelled 100 x 100 square inside class 0 (rows 100-199, columns 50-149) holds a
    predicted blob of class 2, 30 pixels from the square's edge. Class 2 is absent from the ground
    truth: not scored. Class 0's predicted boundary around the blob is unlabelled and unmatched: not
    scored, so its precision stays 300/300 (column 199). Its true boundary also runs around the
    square (4 x 100 pixels), which the prediction does not trace: recall 300/700. Class 1: exact."""
    truth = TRUTH.clone()
    truth[100:200, 50:150] = 255
    prediction = TRUTH.clone()
    prediction[130:170, 80:120] = 2
    expected = (f1(1.0, 300 / 700) + 1.0) / 2
    assert image_boundary_f1(prediction, truth).item() == pytest.approx(expected, abs=1e-9)
    truth[100:200, 50:150] = 0  # labelled: the blob's 4 x 40 boundary pixels now count as wrong
    expected = (f1(300 / 460, 1.0) + 1.0) / 2
    assert image_boundary_f1(prediction, truth).item() == pytest.approx(expected, abs=1e-9)


def test_a_class_filling_the_image_and_an_unlabelled_image() -> None:
    full = torch.zeros(8, 8, dtype=torch.long)
    assert image_boundary_f1(full, full).item() == 1.0
    assert image_boundary_f1(halves([2] * 8)[:, :8], full).item() == 0.0
    assert image_boundary_f1(full, torch.full((8, 8), 255)) is None


def test_boundaries_are_the_pixels_with_a_neighbour_outside() -> None:
    mask = torch.zeros(1, 5, 6, dtype=torch.bool)
    mask[0, 1:4, 1:5] = True
    expected = mask.clone()
    expected[0, 2, 2:4] = False  # the interior
    assert torch.equal(class_boundaries(mask), expected)
    assert not class_boundaries(torch.ones(1, 4, 4, dtype=torch.bool)).any()  # the frame is no boundary


@pytest.mark.parametrize("radius", [0.5, 1.0, 2.9, 3.75, 7.2])
def test_within_distance_equals_the_euclidean_distance_transform(radius: float) -> None:
    generator = torch.Generator().manual_seed(int(radius * 10))
    points = torch.rand(3, 31, 47, generator=generator) < 0.01
    points[2] = False  # no point at all
    near = within_distance(points, radius)
    for k in range(3):
        distance = distance_transform_edt(~points[k].numpy()) if points[k].any() else np.full((31, 47), np.inf)
        assert np.array_equal(near[k].numpy(), distance <= radius), k


def test_metric_averages_images_not_batches() -> None:
    metric = BoundaryF1()
    metric.update(torch.stack([halves([203] * HEIGHT), halves([204] * HEIGHT)]), torch.stack([TRUTH, TRUTH]))
    metric.update(halves([210] * HEIGHT)[None], TRUTH[None])
    assert metric.compute().item() == pytest.approx(1 / 3)


def _validate(devices: int, **options: object) -> float:
    generator = torch.Generator().manual_seed(0)
    predictions, targets = [], []
    for shift in (0, 2, 5, 9, 1):  # five images over two processes
        target = torch.zeros(30, 40, dtype=torch.long)
        target[:, 20:] = 1
        target[5:12, 3:9] = 2
        prediction = target.clone()
        prediction[:, 20 : 20 + shift] = 0
        prediction[torch.rand(30, 40, generator=generator) < 0.02] = 2
        predictions.append(one_hot_predictions(3, prediction))
        targets.append(target)
    data = ArrayDataModule(predictions, targets, num_classes=3)
    module = SegmentationModule(IdentityNet, 3, data.class_names)
    trainer = Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
                      devices=devices, **options)
    trainer.validate(module, datamodule=data, verbose=False)
    return trainer.callback_metrics["val/BF"].item()


def test_ddp_gives_the_single_process_score() -> None:
    assert _validate(2, strategy="ddp_fork") == pytest.approx(_validate(1), abs=1e-7)
