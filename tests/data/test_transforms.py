"""The paired transforms: masks are never interpolated, and image and mask stay aligned."""

import numpy as np
import pytest
import torch
from torchvision import tv_tensors

from lit_seg.data.transforms import Augmentation, eval_transforms, train_transforms
from tests.helpers.aligned_samples import PIPELINES, assert_aligned, block_sample, to_uint8


@pytest.mark.parametrize("name", PIPELINES)
def test_image_and_mask_stay_aligned(name: str) -> None:
    transform = train_transforms(PIPELINES[name])
    for seed in range(6):
        torch.manual_seed(seed)
        image, mask = transform(*block_sample(seed))
        assert image.shape[-2:] == mask.shape == PIPELINES[name].crop_size
        assert_aligned(image, mask.numpy(), f"{name}, seed {seed}")


def test_flips_and_rotations_do_happen() -> None:
    """The alignment test is not vacuous: flips change the sample, rotations fill corners with ignore."""
    image, mask = block_sample(0)
    flipped = [train_transforms(Augmentation((64, 96), (1.0, 1.0), hflip=True))(image, mask)[1] for _ in range(20)]
    assert any(torch.equal(m, mask.flip(-1)) for m in flipped) and any(torch.equal(m, mask) for m in flipped)
    rotated = train_transforms(Augmentation((64, 96), (1.0, 1.0), hflip=False, rotation=30.0))(image, mask)[1]
    assert rotated[0, 0] == 255 or rotated[-1, -1] == 255 or rotated[0, -1] == 255 or rotated[-1, 0] == 255


def test_mask_values_are_never_interpolated() -> None:
    """Only the labels present before, plus the ignore value of padding and rotation, come out."""
    rng = np.random.default_rng(0)
    labels = np.array([0, 3, 7, 11, 255], dtype=np.uint8)  # gaps: any blending would show
    mask = tv_tensors.Mask(torch.from_numpy(rng.choice(labels, (40, 56))))
    image = tv_tensors.Image(torch.from_numpy(rng.integers(0, 256, (3, 40, 56), dtype=np.uint8)))
    augmentation = Augmentation((48, 64), (0.5, 2.0), ignore_index=255, hflip=True, rotation=20.0, photometric=True)
    transform = train_transforms(augmentation)
    for seed in range(20):
        torch.manual_seed(seed)
        out_image, out_mask = transform(image, mask)
        assert out_mask.dtype == torch.uint8 and out_image.dtype == torch.float32
        assert set(out_mask.unique().tolist()) <= set(labels.tolist())


def test_padding_fills_mask_with_ignore_and_image_with_zero() -> None:
    image, mask = block_sample(0, height=32, width=48)
    transform = train_transforms(Augmentation((64, 96), (1.0, 1.0), ignore_index=250, hflip=False))
    out_image, out_mask = transform(image, mask)
    padded = out_mask == 250
    assert padded.sum() == 64 * 96 - 32 * 48
    assert np.allclose(to_uint8(out_image)[padded.numpy()], 0, atol=1e-3)


def test_photometric_jitter_leaves_the_mask_alone() -> None:
    image, mask = block_sample(1)
    torch.manual_seed(0)
    transform = train_transforms(Augmentation((64, 96), (1.0, 1.0), hflip=False, photometric=True))
    out_image, out_mask = transform(image, mask)
    assert torch.equal(out_mask, mask)
    assert not np.allclose(to_uint8(out_image), image.permute(1, 2, 0).numpy(), atol=2)


def test_eval_transforms_keep_the_geometry() -> None:
    image, mask = block_sample(2)
    out_image, out_mask = eval_transforms()(image, mask)
    assert torch.equal(out_mask, mask)
    assert np.allclose(to_uint8(out_image), image.permute(1, 2, 0).numpy(), atol=1e-3)
