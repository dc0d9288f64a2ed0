"""Parameter groups with per-module learning-rate multipliers and Caffe's bias conventions, and the
poly schedule with warm-up."""

from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from lit_seg.data.options import OptionError

# The layers whose bias the Caffe releases (FCN, SegNet, DeepLab) train at ``lr_mult: 2, decay_mult: 0``:
# Convolution, Deconvolution and InnerProduct. Normalisation shifts are not among them.
_WEIGHT_LAYERS = (
    nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear,
)
# Normalisation layers, whose scale and shift TF-slim's releases (DeepLabV3/V3+) never regularise.
# Batch norms as torch and timm build them (timm's BatchNormAct2d is a BatchNorm2d), and after Lightning's
# sync_batchnorm conversion.
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
NORM_LAYERS = (*BATCH_NORMS, nn.GroupNorm, nn.LayerNorm, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)


def parameter_groups(
    module: nn.Module,
    lr_multipliers: dict[str, float] | None = None,
    bias_lr_multiplier: float = 1.0,
    bias_weight_decay: bool = True,
    norm_weight_decay: bool = True,
) -> list[dict]:
    """Groups the trainable parameters of ``module`` by learning-rate multiplier and weight decay.

    A parameter's multiplier is that of the longest name prefix in ``lr_multipliers`` that it lies
    under (1 if none), times ``bias_lr_multiplier`` if it is the bias of a convolution or linear
    layer; ``bias_weight_decay=False`` exempts those biases from weight decay. Example:
    ``{"net.head": 10.0}`` with ``bias_lr_multiplier=2`` trains the head's weights at 10x and its
    biases at 20x the base rate (DeepLabV2's ASPP). The group of weights at multiplier 1 comes
    first. A prefix that matches no parameter is an error.

    Args:
        module: the module whose ``named_parameters`` are grouped.
        lr_multipliers: learning-rate multiplier per module-name prefix, e.g. ``{"net.backbone": 0.1}``.
        bias_lr_multiplier: extra multiplier of convolution and linear biases (Caffe's ``lr_mult: 2``).
        bias_weight_decay: False puts convolution and linear biases in groups with ``weight_decay``
            0 (Caffe's ``decay_mult: 0``).
        norm_weight_decay: False puts the scales and shifts of normalisation layers in groups with
            ``weight_decay`` 0 (TF-slim's batch norm has no regulariser).
    """
    lr_multipliers = lr_multipliers or {}
    biases = {id(m.bias) for m in module.modules() if isinstance(m, _WEIGHT_LAYERS) and m.bias is not None}
    norms = {id(p) for m in module.modules() if isinstance(m, NORM_LAYERS) for p in m.parameters(recurse=False)}
    groups: dict[tuple[float, bool], list[nn.Parameter]] = {(1.0, True): []}
    used = set()
    for name, parameter in module.named_parameters():
        if not parameter.requires_grad:
            continue
        matches = [prefix for prefix in lr_multipliers if name == prefix or name.startswith(prefix + ".")]
        prefix = max(matches, key=len, default=None)
        used.add(prefix)
        multiplier = lr_multipliers[prefix] if prefix else 1.0
        is_bias = id(parameter) in biases
        if is_bias:
            multiplier *= bias_lr_multiplier
        decays = (bias_weight_decay or not is_bias) and (norm_weight_decay or id(parameter) not in norms)
        groups.setdefault((multiplier, decays), []).append(parameter)
    unused = set(lr_multipliers) - used
    if unused:
        raise OptionError(f"lr_multipliers: no parameter is named {sorted(unused)} or below it")
    return [
        {"params": params, "lr_multiplier": multiplier, **({} if decays else {"weight_decay": 0.0})}
        for (multiplier, decays), params in groups.items()
        if params
    ]


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
