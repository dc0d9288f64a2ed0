"""Batches: padded batches of mixed sizes, and each image of a batch at its own size."""

import torch

from lit_seg.data.batch import at_own_sizes
from lit_seg.data.dataset import pad_collate
from lit_seg.data.image_files import predict_collate

SIZES = ((4, 6), (5, 3), (2, 2))


def test_a_batch_of_one_size_is_one_part() -> None:
    samples = [{"image": torch.rand(3, 4, 5), "mask": torch.full((4, 5), k), "name": str(k)} for k in range(3)]
    batch = pad_collate(samples)
    assert "sizes" not in batch
    [(rows, images, masks)] = at_own_sizes(batch, batch["image"], batch["mask"])
    assert rows == slice(None) and images is batch["image"] and masks is batch["mask"]


def test_a_padded_batch_gives_each_image_at_its_own_size() -> None:
    samples = [{"image": torch.rand(3, h, w), "mask": torch.full((h, w), k), "name": str(k)} for k, (h, w) in enumerate(SIZES)]
    batch = pad_collate(samples, ignore_index=250)
    assert batch["sizes"].tolist() == [list(size) for size in SIZES]
    assert batch["image"].shape == (3, 3, 5, 6) and (batch["mask"][1, :, 3:] == 250).all()
    parts = list(at_own_sizes(batch, batch["image"], batch["mask"]))
    assert [rows for rows, _, _ in parts] == [slice(0, 1), slice(1, 2), slice(2, 3)]
    for (_, image, mask), sample in zip(parts, samples):
        assert torch.equal(image[0], sample["image"]) and torch.equal(mask[0], sample["mask"])


def test_predict_batches_part_the_same_way() -> None:
    images = [torch.rand(3, h, w) for h, w in SIZES]
    samples = [{"image": image, "path": f"{i}.png"} for i, image in enumerate(images)]
    batch = predict_collate([*samples, {"path": "broken.png", "error": "unreadable"}])
    assert batch["path"] == ["0.png", "1.png", "2.png"] and batch["failed"] == [("broken.png", "unreadable")]
    parts = [crop[0] for _, crop in at_own_sizes(batch, batch["image"])]
    assert all(torch.equal(part, image) for part, image in zip(parts, images, strict=True))
