"""Checks shared by the architecture tests."""

from torch import Tensor, nn


def assert_every_parameter_has_a_gradient(model: nn.Module) -> None:
    """After a backward pass: no trainable parameter was left out of the graph."""
    missing = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"


def assert_every_parameter_gets_a_gradient(model: nn.Module, outputs: dict[str, Tensor]) -> None:
    """Backpropagates the mean of every output (``out`` and ``aux``), then checks every parameter."""
    sum(logits.float().mean() for logits in outputs.values()).backward()
    assert_every_parameter_has_a_gradient(model)
