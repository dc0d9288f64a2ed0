"""Checks shared by the architecture tests."""

from typing import Any

import pytest
import torch.nn.functional as F
from torch import Tensor, nn


def assert_every_parameter_has_a_gradient(model: nn.Module) -> None:
    """After a backward pass: no trainable parameter was left out of the graph."""
    missing = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"


def assert_every_parameter_gets_a_gradient(model: nn.Module, outputs: dict[str, Tensor]) -> None:
    """Backpropagates the mean of every output (``out`` and ``aux``), then checks every parameter."""
    sum(logits.float().mean() for logits in outputs.values()).backward()
    assert_every_parameter_has_a_gradient(model)


def record_resizes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool | None]]:
    """From now on, every ``F.interpolate`` call appends its ``(mode, align_corners)`` to the returned list."""
    calls: list[tuple[str, bool | None]] = []
    interpolate = F.interpolate

    def recording_interpolate(*args: Any, **kwargs: Any) -> Tensor:
        calls.append((kwargs.get("mode", "nearest"), kwargs.get("align_corners")))
        return interpolate(*args, **kwargs)

    monkeypatch.setattr(F, "interpolate", recording_interpolate)
    return calls
