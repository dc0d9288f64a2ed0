"""What a network costs: trainable parameters, and forward FLOPs counted on the meta device."""

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module) -> int:
    """Returns the number of trainable parameters (BN weights and biases included, buffers not)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def forward_flops(
    model: nn.Module, image_size: tuple[int, int] = (512, 512), batch: int = 1, training: bool = False
) -> int:
    """Returns the FLOPs of one forward pass, as counted by torch's ``FlopCounterMode`` (a
    multiply-accumulate counts as 2 FLOPs; convolutions and matrix products only, biases,
    normalisation, pooling and interpolation are not counted).

    The input is a 3-channel batch on the model's device: a model built under
    ``torch.device("meta")`` is measured in seconds without computing anything.

    Args:
        model: the network.
        image_size: (height, width) of the input.
        batch: batch size.
        training: count the training-mode forward, auxiliary heads included (the default counts
            inference). It needs a batch of 2 where a batch norm sees a 1x1 map (PSPNet's and
            ASPP's image pooling), and updates batch-norm statistics unless the model is on meta.
    """
    device = next(model.parameters()).device
    images = torch.zeros(batch, 3, *image_size, device=device)
    was_training = model.training
    model.train(training)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(images)
    model.train(was_training)
    return counter.get_total_flops()
