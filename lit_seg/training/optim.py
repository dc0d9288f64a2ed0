"""Parameter groups with per-module learning-rate multipliers, and the poly schedule with warm-up."""

from collections.abc import Iterable

from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def parameter_groups(
    named_parameters: Iterable[tuple[str, nn.Parameter]], lr_multipliers: dict[str, float] | None
) -> list[dict]:
    """Groups trainable parameters by the longest matching name prefix in ``lr_multipliers``.

    Example: ``{"net.backbone": 0.1}`` trains the backbone at a tenth of the base rate. The group
    with multiplier 1 comes first. A prefix that matches no parameter is an error.
    """
    lr_multipliers = lr_multipliers or {}
    groups: dict[float, list[nn.Parameter]] = {1.0: []}
    used = set()
    for name, parameter in named_parameters:
        if not parameter.requires_grad:
            continue
        matches = [prefix for prefix in lr_multipliers if name == prefix or name.startswith(prefix + ".")]
        prefix = max(matches, key=len, default=None)
        used.add(prefix)
        groups.setdefault(lr_multipliers[prefix] if prefix else 1.0, []).append(parameter)
    unused = set(lr_multipliers) - used
    if unused:
        raise ValueError(f"lr_multipliers: no parameter is named {sorted(unused)} or below it")
    return [{"params": params, "lr_multiplier": m} for m, params in groups.items() if params]


def poly_schedule(optimizer: Optimizer, total_steps: int, power: float = 0.9, warmup_steps: int = 0) -> LambdaLR:
    """lr = base * (1 - step / total) ** power, after a linear warm-up over ``warmup_steps``.

    Each group's base is its rate times its ``lr_multiplier``; call once, stepped per iteration.
    """
    for group in optimizer.param_groups:
        group["lr"] *= group.get("lr_multiplier", 1.0)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, 1.0 - step / max(1, total_steps)) ** power

    return LambdaLR(optimizer, factor)
