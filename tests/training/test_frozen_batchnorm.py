"""Frozen batch norms: eval mode throughout training, statistics and affine parameters unchanged."""

from functools import partial

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from lit_seg.commands.benchmark.measure import Setup, SyntheticData, fit_steps
from lit_seg.training.module import SegmentationModule
from tests.helpers.nets import TinyNet


class NormModes(Callback):
    """Records the training flag of the network's batch norm at every step."""

    def __init__(self) -> None:
        self.modes: list[bool] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # noqa: ANN001
        self.modes.append(pl_module.net.backbone[1].training)


def test_frozen_batchnorm_stays_unchanged_while_the_rest_trains() -> None:
    torch.manual_seed(0)
    net = TinyNet(3)
    norm = net.backbone[1]
    with torch.no_grad():  # statistics and affine parameters that a training step would visibly move
        norm.running_mean.normal_()
        norm.running_var.uniform_(0.5, 2.0)
        norm.weight.normal_(1.0, 0.1)
        norm.bias.normal_()
    before = {name: value.clone() for name, value in net.state_dict().items()}
    module = SegmentationModule(
        net, 3, optimizer=partial(torch.optim.SGD, lr=0.1, momentum=0.9, weight_decay=1e-2),
        frozen_batchnorm=["net.backbone"],
    )
    modes = NormModes()
    fit_steps(module, SyntheticData(4, (8, 8), 3), Setup(), "cpu", 3, [modes])

    assert modes.modes == [False] * 3 and module.net.backbone.training
    after = net.state_dict()
    for name in ("running_mean", "running_var", "weight", "bias", "num_batches_tracked"):
        torch.testing.assert_close(after[f"backbone.1.{name}"], before[f"backbone.1.{name}"], rtol=0, atol=0)
    for name in ("backbone.0.weight", "backbone.0.bias", "backbone.3.weight", "head.weight", "head.bias"):
        assert not torch.equal(after[name], before[name]), name
    module.eval().train()  # as after a validation run
    assert module.net.head.training and not norm.training


def test_unfrozen_batchnorm_trains() -> None:
    """The same run without the option moves the statistics: the test above can fail."""
    torch.manual_seed(0)
    net = TinyNet(3)
    before = net.backbone[1].running_mean.clone()
    fit_steps(SegmentationModule(net, 3), SyntheticData(4, (8, 8), 3), Setup(), "cpu", 1, [])
    assert not torch.equal(net.backbone[1].running_mean, before)


def test_prefix_without_batchnorm_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"frozen_batchnorm: no batch norm is named \['net.head'\]"):
        SegmentationModule(TinyNet(3), 3, frozen_batchnorm=["net.head"])
