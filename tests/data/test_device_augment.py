"""The GPU-fed data path: decoded caches, and training augmentation of whole batches on the device."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback
from torchvision.transforms.v2 import functional as F

from lit_seg.data import FolderDataModule
from lit_seg.data.cache import CachedDataset, DecodedCache
from lit_seg.data.device_augment import DRAWS, DeviceAugment, RawSamples, colour_jitter, raw_collate
from lit_seg.data.transforms import IMAGENET_MEAN, IMAGENET_STD, Augmentation
from lit_seg.training.module import SegmentationModule
from tests.helpers.aligned_samples import PIPELINES, assert_aligned, block_sample, to_uint8
from tests.helpers.nets import TinyNet

PLAIN = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}  # normalisation that leaves [0, 1] values


def raw_batch(samples: list[tuple[torch.Tensor, torch.Tensor]], draws: torch.Tensor) -> dict:
    return raw_collate([
        {"image": image.as_subclass(torch.Tensor), "mask": mask.as_subclass(torch.Tensor), "draws": d, "name": str(i)}
        for i, ((image, mask), d) in enumerate(zip(samples, draws))
    ])


def test_unit_scale_full_crop_reproduces_the_sample_and_flip_mirrors_it() -> None:
    image, mask = block_sample(0, height=16, width=24, block=4)
    rng = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, image.shape, dtype=torch.uint8, generator=rng)  # every pixel distinct-ish
    draws = torch.rand(1, len(DRAWS), generator=rng)
    draws[:, DRAWS.index("flip")] = 0.9
    out = DeviceAugment(Augmentation((16, 24), (1.0, 1.0), hflip=True, **PLAIN))(raw_batch([(image, mask)], draws))
    assert torch.allclose(out["image"][0] * 255, image.float(), atol=1e-3)
    assert torch.equal(out["mask"][0], mask.long())
    draws[:, DRAWS.index("flip")] = 0.1
    out = DeviceAugment(Augmentation((16, 24), (1.0, 1.0), hflip=True, **PLAIN))(raw_batch([(image, mask)], draws))
    assert torch.allclose(out["image"][0] * 255, image.float().flip(-1), atol=1e-3)
    assert torch.equal(out["mask"][0], mask.long().flip(-1))


def test_doubling_repeats_each_mask_pixel() -> None:
    image, mask = block_sample(1, height=16, width=24, block=4)
    augment = DeviceAugment(Augmentation((32, 48), (2.0, 2.0), hflip=False))
    out = augment(raw_batch([(image, mask)], torch.zeros(1, len(DRAWS))))
    assert torch.equal(out["mask"][0], mask.long().repeat_interleave(2, 0).repeat_interleave(2, 1))


@pytest.mark.parametrize("name", PIPELINES)
def test_image_and_mask_stay_aligned(name: str) -> None:
    """As for the CPU transforms, on a batch of samples of different sizes (padded together)."""
    options = PIPELINES[name]
    samples = [block_sample(seed, height=64 - 8 * seed, width=96 - 8 * seed) for seed in range(4)]
    augment = DeviceAugment(options)
    for seed in range(3):
        draws = torch.rand(len(samples), len(DRAWS), generator=torch.Generator().manual_seed(seed))
        out = augment(raw_batch(samples, draws))
        assert out["image"].shape[-2:] == out["mask"].shape[-2:] == options.crop_size
        for image, mask in zip(out["image"], out["mask"].numpy()):
            assert_aligned(image, mask, f"{name}, seed {seed}")


def test_flips_and_rotations_do_happen() -> None:
    image, mask = block_sample(0)
    draws = torch.rand(20, len(DRAWS), generator=torch.Generator().manual_seed(0))
    batch = raw_batch([(image, mask)] * 20, draws)
    masks = DeviceAugment(Augmentation((64, 96), (1.0, 1.0), hflip=True))(batch)["mask"]
    assert any(torch.equal(m, mask.long().flip(-1)) for m in masks) and any(torch.equal(m, mask.long()) for m in masks)
    rotated = DeviceAugment(Augmentation((64, 96), (1.0, 1.0), hflip=False, rotation=30.0))(batch)["mask"]
    assert (rotated[:, [0, 0, -1, -1], [0, -1, 0, -1]] == 255).any(dim=1).all()


def test_mask_values_are_never_interpolated() -> None:
    """Only the labels present before, plus the ignore value of padding and rotation, come out."""
    rng = np.random.default_rng(0)
    labels = np.array([0, 3, 7, 11, 255], dtype=np.uint8)  # gaps: any blending would show
    samples = [
        (torch.from_numpy(rng.integers(0, 256, (3, h, w), dtype=np.uint8)), torch.from_numpy(rng.choice(labels, (h, w))))
        for h, w in ((40, 56), (33, 47))
    ]
    augment = DeviceAugment(Augmentation((48, 64), (0.5, 2.0), hflip=True, rotation=20.0, photometric=True))
    for seed in range(10):
        out = augment(raw_batch(samples, torch.rand(2, len(DRAWS), generator=torch.Generator().manual_seed(seed))))
        assert out["mask"].dtype == torch.int64 and out["image"].dtype == torch.float32
        assert set(out["mask"].unique().tolist()) <= set(labels.tolist())


def test_padding_fills_mask_with_ignore_and_image_with_zero() -> None:
    image, mask = block_sample(0, height=32, width=48)
    draws = torch.rand(1, len(DRAWS), generator=torch.Generator().manual_seed(3))
    augment = DeviceAugment(Augmentation((64, 96), (1.0, 1.0), ignore_index=250, hflip=False))
    out = augment(raw_batch([(image, mask)], draws))
    padded = out["mask"][0] == 250
    assert padded.sum() == 64 * 96 - 32 * 48
    assert np.allclose(to_uint8(out["image"][0])[padded.numpy()], 0, atol=1e-3)


def test_colour_jitter_matches_torchvision_sample_by_sample() -> None:
    images = torch.rand(4, 3, 12, 16, generator=torch.Generator().manual_seed(0))
    brightness, contrast, saturation = torch.tensor([[0.9, 1.1, 1.0, 0.88], [0.5, 1.5, 1.2, 0.8], [0.6, 1.4, 1.0, 0.7]])
    hue = torch.tensor([-0.05, 0.03, 0.2, -0.4])
    for i, jittered in enumerate(colour_jitter(images, brightness, contrast, saturation, hue)):
        expected = F.adjust_brightness(images[i], brightness[i].item())
        expected = F.adjust_contrast(expected, contrast[i].item())
        expected = F.adjust_saturation(expected, saturation[i].item())
        expected = F.adjust_hue(expected, hue[i].item())
        assert torch.allclose(jittered, expected, atol=1e-5)


def test_photometric_jitter_leaves_the_mask_alone() -> None:
    image, mask = block_sample(1)
    draws = torch.rand(1, len(DRAWS), generator=torch.Generator().manual_seed(0))
    augment = DeviceAugment(Augmentation((64, 96), (1.0, 1.0), hflip=False, photometric=True))
    out = augment(raw_batch([(image, mask)], draws))
    assert torch.equal(out["mask"][0], mask.long())
    assert not np.allclose(to_uint8(out["image"][0]), image.permute(1, 2, 0).numpy(), atol=2)


def test_caches_hold_what_the_files_decode_to(shapes_root: Path, tmp_path: Path) -> None:
    dataset = FolderDataModule(str(shapes_root)).dataset("val")
    memory = DecodedCache.in_memory(dataset, threads=2)
    disk = DecodedCache.on_disk(dataset, tmp_path)
    again = DecodedCache.on_disk(dataset, tmp_path)  # reused, not rebuilt
    assert [p.name for p in tmp_path.iterdir()] == [Path(disk.images.filename).parent.name]
    assert Path(again.images.filename) == Path(disk.images.filename)
    for i in range(len(dataset)):
        image, mask = dataset.load(i)
        for cache in (memory, disk):
            cached_image, cached_mask = cache[i]
            assert np.array_equal(cached_image, image) and np.array_equal(cached_mask, mask)
            assert cached_image.flags.writeable
    cached = CachedDataset(dataset, memory)
    assert torch.equal(cached[0]["image"], dataset[0]["image"]) and cached[0]["name"] == dataset[0]["name"]


def test_raw_draws_depend_on_seed_epoch_and_index_only(shapes_root: Path) -> None:
    raw = RawSamples(FolderDataModule(str(shapes_root)).dataset("train"), seed=7)
    assert torch.equal(raw[(1, 3)]["draws"], raw[(1, 3)]["draws"])
    assert not torch.equal(raw[(1, 3)]["draws"], raw[(2, 3)]["draws"])
    assert raw[(1, 3)]["image"].dtype == torch.uint8 and raw[(1, 3)]["mask"].dtype == torch.uint8


def test_both_paths_take_the_datamodule_s_one_augmentation(shapes_root: Path) -> None:
    options = {"crop_size": [32, 40], "scale_range": [0.75, 1.5], "hflip": False, "rotation": 10.0, "photometric": True}
    cpu = FolderDataModule(str(shapes_root), **options)
    device = FolderDataModule(str(shapes_root), device_augment=True, **options)
    expected = Augmentation((32, 40), (0.75, 1.5), 255, False, 10.0, True, IMAGENET_MEAN, IMAGENET_STD)
    assert cpu.augmentation == device.augmentation == device.batch_augment.augmentation == expected
    assert cpu.dataset("train", train=True).transform is not None
    assert device.dataset("train", train=True).dataset.transform is None  # the loader builds no CPU transforms


class BatchShapes(Callback):
    def __init__(self) -> None:
        self.train: list[tuple] = []

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        self.train.append((tuple(batch["image"].shape), batch["image"].dtype, tuple(batch["mask"].shape), batch["mask"].dtype))


@pytest.mark.parametrize("cache", ["none", "memory", "disk"])
def test_training_with_device_augmentation(shapes_root: Path, tmp_path: Path, cache: str) -> None:
    datamodule = FolderDataModule(
        str(shapes_root), batch_size=4, num_workers=0, crop_size=(32, 40), photometric=True, rotation=10.0,
        device_augment=True, cache=cache, cache_dir=str(tmp_path / "cache"),
    )
    module = SegmentationModule(TinyNet(datamodule.num_classes), datamodule.num_classes)
    shapes = BatchShapes()
    trainer = Trainer(accelerator="cpu", max_epochs=1, limit_val_batches=1, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, callbacks=[shapes], default_root_dir=tmp_path)
    trainer.fit(module, datamodule=datamodule)
    assert isinstance(datamodule.datasets["train"], RawSamples)
    assert shapes.train == [((4, 3, 32, 40), torch.float32, (4, 32, 40), torch.int64)] * 4  # 16 samples
    assert torch.isfinite(trainer.callback_metrics["val/loss"])
    assert (tmp_path / "cache" / "train").is_dir() == (cache == "disk")
