"""lit_seg.training.shims against the private Lightning behaviour each one reproduces (pinned version)."""

import pytest
import torch
from lightning import Trainer
from torch import Tensor
from torch.utils.data import DataLoader

from lit_seg.training.module import SegmentationModule
from lit_seg.training.shims import logs_this_step
from tests.helpers.arrays import ListDataset
from tests.helpers.nets import TinyNet


class RecordingModule(SegmentationModule):
    """Records, at every training step, the shim's answer beside Lightning's private one."""

    def __init__(self) -> None:
        super().__init__(TinyNet(3), num_classes=3)
        self.answers: list[tuple[bool, bool]] = []

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        self.answers.append((logs_this_step(self.trainer), self.trainer._logger_connector.should_update_logs))
        return super().training_step(batch, batch_idx)


@pytest.mark.parametrize(("accumulate", "every"), [(1, 3), (2, 3), (1, 0)])
def test_logs_this_step_is_lightnings_rule(accumulate: int, every: int) -> None:
    torch.manual_seed(0)
    images = [torch.randn(3, 8, 8) for _ in range(6)]
    masks = [torch.randint(0, 3, (8, 8)) for _ in range(6)]
    batches = DataLoader(ListDataset(images, masks), batch_size=2)
    module = RecordingModule()
    trainer = Trainer(
        max_steps=7, log_every_n_steps=every, accumulate_grad_batches=accumulate, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0, accelerator="cpu",
    )
    trainer.fit(module, batches)
    shim, lightning = zip(*module.answers)
    assert shim == lightning
    assert (any(shim) and not all(shim)) if every else not any(shim)  # the check sees both answers
