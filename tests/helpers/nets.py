"""Tiny networks for fast tests of the training machinery (not part of the package)."""

import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor, nn

from lit_seg.networks import SegmentationNet


class TinyNet(SegmentationNet):
    """Two 3x3 convs and a 1x1 classifier at full resolution; ``aux=True`` adds an aux head."""

    def __init__(self, num_classes: int, width: int = 8, aux: bool = False) -> None:
        backbone = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
        )
        aux_head = nn.Conv2d(width, num_classes, 1) if aux else None
        super().__init__(backbone, nn.Conv2d(width, num_classes, 1), aux_head)


class PositionFreeNet(SegmentationNet):
    """Per-pixel logits from a 1x1 conv: position-independent and flip-equivariant."""

    def __init__(self, num_classes: int) -> None:
        super().__init__(nn.Identity(), nn.Conv2d(3, num_classes, 1))


class _Scale(nn.Module):
    """Multiplies by a learnable scalar that starts at 1."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, features: Tensor) -> Tensor:
        return features * self.scale


class IdentityNet(SegmentationNet):
    """Returns its input as logits: a dataset of one-hot "images" then fixes the predictions."""

    def __init__(self, num_classes: int) -> None:
        super().__init__(nn.Identity(), _Scale())


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
