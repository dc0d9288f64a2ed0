"""Parameter groups: per-module learning-rate multipliers and Caffe's bias conventions."""

from functools import partial

import pytest
import torch
from lightning.pytorch.callbacks import Callback
from torch import nn

from lit_seg.commands.benchmark.measure import Setup, SyntheticData, fit_steps
from lit_seg.training.module import SegmentationModule
from lit_seg.training.optim import parameter_groups
from tests.helpers.nets import TinyNet


class Net(nn.Module):
    """A backbone with a bias-free conv and a batch norm, and a head with a biased conv and a linear layer."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4))
        self.head = nn.Sequential(nn.Conv2d(4, 2, 1), nn.Linear(2, 2))


def settings(module: nn.Module, groups: list[dict]) -> dict[str, tuple[float, float | None]]:
    """Each parameter's name -> (learning-rate multiplier, the group's own weight decay or None)."""
    by_id = {id(p): (g["lr_multiplier"], g.get("weight_decay")) for g in groups for p in g["params"]}
    return {name: by_id[id(p)] for name, p in module.named_parameters()}


def test_without_options_one_group_at_the_base_rate() -> None:
    net = Net()
    groups = parameter_groups(net)
    assert len(groups) == 1 and groups[0]["lr_multiplier"] == 1.0 and "weight_decay" not in groups[0]
    assert len(groups[0]["params"]) == len(list(net.parameters()))


def test_caffe_bias_conventions() -> None:
    """DeepLabV2's groups: head weights 10x, head biases 20x without decay; a norm's shift is no
    such bias (SegNet-Basic's BN shift trains at 1x with decay)."""
    net = Net()
    groups = parameter_groups(net, {"head": 10.0}, bias_lr_multiplier=2.0, bias_weight_decay=False)
    assert settings(net, groups) == {
        "backbone.0.weight": (1.0, None),
        "backbone.1.weight": (1.0, None),
        "backbone.1.bias": (1.0, None),
        "head.0.weight": (10.0, None),
        "head.0.bias": (20.0, 0.0),
        "head.1.weight": (10.0, None),
        "head.1.bias": (20.0, 0.0),
    }
    assert groups[0]["lr_multiplier"] == 1.0 and "weight_decay" not in groups[0]


def test_no_weight_decay_on_norms() -> None:
    """DeepLabV3's release: batch-norm scales and shifts are not regularised; convolutions still are."""
    net = Net()
    got = settings(net, parameter_groups(net, norm_weight_decay=False))
    assert got["backbone.1.weight"] == got["backbone.1.bias"] == (1.0, 0.0)
    assert got["backbone.0.weight"] == got["head.0.weight"] == got["head.0.bias"] == (1.0, None)


def test_frozen_parameters_are_left_out() -> None:
    net = Net()
    net.backbone.requires_grad_(False)
    grouped = {id(p) for group in parameter_groups(net) for p in group["params"]}
    assert grouped == {id(p) for p in net.head.parameters()}


def test_unknown_prefix_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"no parameter is named \['neck'\]"):
        parameter_groups(Net(), {"neck": 10.0})


class Rates(Callback):
    """Records each parameter group's learning rate and weight decay after the first step."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        self.groups = [(g["lr"], g["weight_decay"], len(g["params"])) for g in trainer.optimizers[0].param_groups]


def test_module_applies_the_options_to_its_optimizer() -> None:
    module = SegmentationModule(
        TinyNet(2), 2, optimizer=partial(torch.optim.SGD, lr=0.1, weight_decay=5e-4), poly_power=0.0,
        bias_lr_multiplier=2.0, bias_weight_decay=False,
    )
    rates = Rates()
    fit_steps(module, SyntheticData(2, (8, 8), 2), Setup(), "cpu", 1, [rates])
    # TinyNet: three conv weights and the BN scale and shift; three conv biases.
    assert rates.groups == [(0.1, 5e-4, 5), (0.2, 0.0, 3)]
