"""The fast paths of real training (channels_last, bf16-mixed, compile) train as the plain fp32 run does."""

from functools import partial
from typing import Any

import pytest
import torch
import torch._dynamo
from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import Callback

from lit_seg.commands.benchmark.measure import Setup, SyntheticData, build_module, fit_steps
from lit_seg.networks import create_model, list_models
from lit_seg.training.module import SegmentationModule
from tests.helpers.nets import TinyNet

STEPS = 20


class LearnableData(SyntheticData):
    """A fixed random batch whose label is the image's brightest channel (learnable in a few steps)."""

    def batch(self, device: torch.device) -> dict[str, torch.Tensor]:
        images = super().batch(device)["image"]
        return {"image": images, "mask": images.argmax(1)}


class Recorder(Callback):
    """Records every step's loss and the dtype of the network's logits."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.dtypes: set[torch.dtype] = set()

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        pl_module.net.head.register_forward_hook(lambda module, args, output: self.dtypes.add(output.dtype))

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.losses.append(float(outputs["loss"]))


def train(setup: Setup) -> Recorder:
    """The first STEPS steps on one fixed batch from the same initial weights, as ``fit`` runs them."""
    torch.manual_seed(0)
    module = SegmentationModule(
        TinyNet(3, width=16, aux=True), 3,
        optimizer=partial(torch.optim.SGD, lr=0.1, momentum=0.9, fused=setup.optimizer == "fused"),
        channels_last=setup.channels_last, compile=setup.compile,
    )
    recorder = Recorder()
    fit_steps(module, LearnableData(4, (24, 32), 3), setup, "cpu", STEPS, [recorder])
    return recorder


@pytest.fixture(scope="module")
def plain() -> Recorder:
    return train(Setup())


@pytest.mark.parametrize(
    ("setup", "tolerance"),
    [
        (Setup(channels_last=True), 1e-5),
        (Setup(compile=True), 1e-5),
        (Setup(precision="bf16-mixed"), 5e-3),
        (Setup(precision="bf16-mixed", channels_last=True, compile=True, optimizer="fused"), 5e-3),
    ],
    ids=["channels_last", "compile", "bf16-mixed", "all+fused"],
)
def test_losses_follow_the_plain_fp32_run(plain: Recorder, setup: Setup, tolerance: float) -> None:
    torch._dynamo.utils.counters.clear()
    fast = train(setup)
    assert len(fast.losses) == len(plain.losses) == STEPS
    assert plain.losses[-1] < 0.8 * plain.losses[0], "the fixed batch should be learned"
    assert fast.losses == pytest.approx(plain.losses, rel=tolerance)
    assert fast.dtypes == {torch.bfloat16 if setup.precision == "bf16-mixed" else torch.float32}
    assert (torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0) == setup.compile


def test_the_net_stays_channels_last_and_compiled() -> None:
    module = build_module(lambda: TinyNet(4), 4, Setup(channels_last=True, compile=True))
    assert module.net.backbone[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert "_orig_mod" not in "".join(module.state_dict())  # compiled in place: checkpoint keys unchanged


@pytest.mark.slow
@pytest.mark.parametrize("name", [name for name in list_models() if not name.startswith("smp.")])
def test_paper_models_compile_without_graph_breaks(name: str) -> None:
    """The default configuration of every paper model traces as one graph in training mode."""
    torch._dynamo.reset()
    net = create_model(name, 5).train()
    explanation = torch._dynamo.explain(net)(torch.randn(2, 3, 64, 64))
    assert explanation.graph_break_count == 0, [reason.reason for reason in explanation.break_reasons]
    assert explanation.graph_count == 1
