"""Timing real training steps: ``Trainer.fit`` of the SegmentationModule, and the same steps in a plain loop."""

import itertools
import resource
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import torch
from lightning import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.callbacks import Callback
from torch import Tensor, nn

from lit_seg.training.module import SegmentationModule
from lit_seg.training.progress import LineProgressBar

OptimizerImpl = Literal["default", "for-loop", "foreach", "fused"]
_OPTIMIZER_OPTIONS = {"default": {}, "for-loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}


@dataclass(frozen=True)
class Setup:
    """One way of running the same training: the speed options of the module, Trainer and optimizer.

    Attributes:
        precision: the Trainer's ``precision`` (``"32-true"``, ``"bf16-mixed"``, ``"16-mixed"``).
        channels_last: the module's ``channels_last``.
        compile: the module's ``compile``.
        cudnn_benchmark: the Trainer's ``benchmark`` (cuDNN picks the fastest convolution algorithms).
        optimizer: SGD's implementation: torch's default (foreach on CUDA), ``for-loop``,
            ``foreach`` or ``fused`` (the optimizer's ``init_args``).
    """

    precision: str = "32-true"
    channels_last: bool = False
    compile: bool = False
    cudnn_benchmark: bool = False
    optimizer: OptimizerImpl = "default"


def build_module(build_net: Callable[[], nn.Module], num_classes: int, setup: Setup) -> SegmentationModule:
    """The SegmentationModule that ``fit`` would build, with the paper's SGD (lr 0.01, momentum 0.9,
    weight decay 1e-4, poly schedule); the network is initialised from seed 0."""
    torch.manual_seed(0)
    optimizer = partial(
        torch.optim.SGD, lr=0.01, momentum=0.9, weight_decay=1e-4, **_OPTIMIZER_OPTIONS[setup.optimizer]
    )
    return SegmentationModule(
        build_net(), num_classes, optimizer=optimizer, channels_last=setup.channels_last, compile=setup.compile
    )


class _Repeat:
    """Serves ``batch`` ``length`` times (a loader with no loading cost)."""

    def __init__(self, batch: dict[str, Tensor], length: int) -> None:
        self.batch = batch
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        return itertools.repeat(self.batch, self.length)


class SyntheticData(LightningDataModule):
    """One fixed random batch (normal images, uniform labels), made on the training device and
    served over and over, so that a timed step is the model's work alone.

    Args:
        batch_size: images per batch.
        image_size: ``(height, width)``.
        num_classes: labels are drawn from ``0..num_classes - 1``.
        length: batches per epoch (more than the steps of a run, so no epoch ends).
    """

    def __init__(self, batch_size: int, image_size: tuple[int, int], num_classes: int, length: int = 10**6) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.image_size = tuple(image_size)
        self.num_classes = num_classes
        self.length = length

    def batch(self, device: torch.device) -> dict[str, Tensor]:
        """The batch, on ``device`` (the same values on every call)."""
        generator = torch.Generator().manual_seed(0)
        images = torch.randn(self.batch_size, 3, *self.image_size, generator=generator)
        masks = torch.randint(0, self.num_classes, (self.batch_size, *self.image_size), generator=generator)
        return {"image": images.to(device), "mask": masks.to(device)}

    def train_dataloader(self) -> _Repeat:
        return _Repeat(self.batch(self.trainer.strategy.root_device), self.length)


def synchronize(device: torch.device) -> None:
    """Waits for the device's queued work (a no-op on CPU, where work is synchronous)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_mb(device: torch.device) -> tuple[float, str]:
    """The peak memory in MiB and what it measures: CUDA's max allocated since the last reset on a
    GPU; on CPU the process's peak resident set size since it started (models, data and all)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "CUDA max allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process peak RSS"


class StepTimer(Callback):
    """Marks the time after training step ``warmup`` and after every ``window`` steps from there,
    synchronising the device at each mark (only there, so the steps between run as in training).

    The time between two marks covers everything the loop does for those steps: fetching and
    transferring batches, hooks, forward, loss, backward, optimizer and scheduler steps, logging.
    """

    def __init__(self, warmup: int, window: int) -> None:
        self.warmup = warmup
        self.window = window
        self.marks: list[float] = []

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        if step >= self.warmup and (step - self.warmup) % self.window == 0:
            synchronize(pl_module.device)
            if step == self.warmup and pl_module.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(pl_module.device)
            self.marks.append(time.perf_counter())

    @property
    def windows(self) -> list[float]:
        """Seconds per window of ``window`` steps."""
        return [end - start for start, end in itertools.pairwise(self.marks)]


def fit_steps(
    module: SegmentationModule,
    datamodule: LightningDataModule,
    setup: Setup,
    accelerator: str,
    steps: int,
    callbacks: list[Callback],
) -> None:
    """Trains ``module`` with ``Trainer.fit`` for ``steps`` steps.

    The Trainer is set up as ``lit-seg fit`` sets it up outside a terminal (line progress, the
    module's own per-step logging), without validation, checkpoints or a logger.
    """
    with tempfile.TemporaryDirectory() as root:
        trainer = Trainer(
            accelerator=accelerator,
            devices=1,
            precision=setup.precision,
            benchmark=setup.cudnn_benchmark,
            max_steps=steps,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            logger=False,
            enable_checkpointing=False,
            enable_model_summary=False,
            callbacks=[LineProgressBar(), *callbacks],
            default_root_dir=root,
        )
        trainer.fit(module, datamodule=datamodule)


def lightning_windows(
    module: SegmentationModule,
    datamodule: LightningDataModule,
    setup: Setup,
    accelerator: str,
    warmup: int,
    windows: int,
    window: int,
) -> list[float]:
    """Seconds per window of ``window`` steps of ``Trainer.fit``, ``windows`` of them after ``warmup`` steps."""
    timer = StepTimer(warmup, window)
    fit_steps(module, datamodule, setup, accelerator, warmup + windows * window, [timer])
    return timer.windows


def autocast(precision: str, device: torch.device) -> AbstractContextManager:
    """The autocast context of a Trainer ``precision`` (32-true, bf16-mixed or 16-mixed) for a
    hand-written loop (without the gradient scaler that 16-mixed training also needs)."""
    dtypes = {"32-true": None, "bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}
    if precision not in dtypes:
        raise ValueError(f"a hand-written loop supports precision {', '.join(dtypes)}, not {precision!r}")
    return nullcontext() if dtypes[precision] is None else torch.autocast(device.type, dtype=dtypes[precision])


class PlainInterleave(Callback):
    """Alternates windows of ``Trainer.fit`` steps with windows of the same steps in a plain
    PyTorch loop run from this callback: the module's forward and loss, backward, and the
    Trainer's own optimizer and scheduler; no hooks, logging, checks or batch fetching.

    From step ``warmup`` on, every ``window`` steps: the device is synchronised, the Lightning
    window that ends there is recorded, and (unless training ends there) ``window`` plain steps
    on the current batch are run and recorded. Both loops train the same weights in turn.
    """

    def __init__(self, warmup: int, window: int, precision: str) -> None:
        self.warmup = warmup
        self.window = window
        self.precision = precision
        self.lightning: list[float] = []
        self.plain: list[float] = []
        self._start: float | None = None

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        if step < self.warmup or (step - self.warmup) % self.window:
            return
        device = pl_module.device
        synchronize(device)
        now = time.perf_counter()
        if self._start is not None:
            self.lightning.append(now - self._start)
        if step == trainer.max_steps:
            return
        optimizer = trainer.optimizers[0]
        scheduler = trainer.lr_scheduler_configs[0].scheduler
        with torch.enable_grad():
            for _ in range(self.window):
                optimizer.zero_grad()
                with autocast(self.precision, device):
                    loss = pl_module.criterion(pl_module(batch["image"]), batch["mask"])["loss"]
                loss.backward()
                optimizer.step()
                scheduler.step()
        synchronize(device)
        self._start = time.perf_counter()
        self.plain.append(self._start - now)


def interleaved_windows(
    module: SegmentationModule,
    datamodule: LightningDataModule,
    setup: Setup,
    accelerator: str,
    warmup: int,
    pairs: int,
    window: int,
) -> tuple[list[float], list[float]]:
    """Seconds per window of ``window`` steps through ``Trainer.fit`` and through the plain loop,
    ``pairs`` windows of each, alternating, in one run (see :class:`PlainInterleave`)."""
    interleave = PlainInterleave(warmup, window, setup.precision)
    fit_steps(module, datamodule, setup, accelerator, warmup + pairs * window, [interleave])
    return interleave.lightning, interleave.plain


@torch.inference_mode()
def inference_windows(
    module: SegmentationModule,
    batch: Tensor,
    setup: Setup,
    device: torch.device,
    warmup: int,
    windows: int,
    window: int,
) -> list[float]:
    """Seconds per window of ``window`` calls of ``module.infer`` (the logits of evaluation and
    prediction) on ``batch``, in eval mode under the autocast of ``setup.precision``, after
    ``warmup`` calls; the peak CUDA memory counts from the first timed call."""
    torch.backends.cudnn.benchmark = setup.cudnn_benchmark
    module.to(device).eval()
    images = batch.to(device)
    with autocast(setup.precision, device):
        for _ in range(warmup):
            module.infer(images)
        synchronize(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        marks = [time.perf_counter()]
        for _ in range(windows):
            for _ in range(window):
                module.infer(images)
            synchronize(device)
            marks.append(time.perf_counter())
    return [end - start for start, end in itertools.pairwise(marks)]
