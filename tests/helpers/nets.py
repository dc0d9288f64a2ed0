"""Tiny networks for fast tests of the training machinery (not part of the package)."""

import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor, nn


class TinyNet(nn.Module):
    """Two 3x3 convs and a 1x1 classifier at full resolution; ``aux=True`` adds an aux head."""

    def __init__(self, num_classes: int, width: int = 8, aux: bool = False) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
        )
        self.head = nn.Conv2d(width, num_classes, 1)
        self.aux_head = nn.Conv2d(width, num_classes, 1) if aux else None

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        features = self.body(images)
        outputs = {"out": self.head(features)}
        if self.training and self.aux_head is not None:
            outputs["aux"] = self.aux_head(features)
        return outputs


class PositionFreeNet(nn.Module):
    """Per-pixel logits from a 1x1 conv: position-independent and flip-equivariant."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.head = nn.Conv2d(3, num_classes, 1)

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        return {"out": self.head(images)}


class IdentityNet(nn.Module):
    """Returns its input as logits: a dataset of one-hot "images" then fixes the predictions."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.unused_scale = nn.Parameter(torch.ones(()))

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        return {"out": images * self.unused_scale}


class ExplodingNet(TinyNet):
    """A TinyNet whose training logits turn NaN from training forward number ``explode_at`` on."""

    def __init__(self, num_classes: int, explode_at: int = 5) -> None:
        super().__init__(num_classes)
        self.explode_at = explode_at
        self.calls = 0

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        outputs = super().forward(images)
        if self.training:
            self.calls += 1
            if self.calls > self.explode_at:
                outputs["out"] = outputs["out"] * float("nan")
        return outputs


class StopAtStep(Callback):
    """Interrupts training (as Ctrl-C would) when global step ``step`` is about to run."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # noqa: ANN001
        if trainer.global_step == self.step:
            raise KeyboardInterrupt
