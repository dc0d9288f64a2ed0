"""Inference modes for evaluation and prediction: whole image, sliding window, multi-scale + flip."""

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from lit_seg.data.options import OptionError
from lit_seg.networks.base import resize_to

NetFn = Callable[[Tensor], Tensor]  # images [B, 3, H, W] -> logits [B, C, H, W]


class Inference:
    """Maps ``(net_fn, images)`` to logits ``[B, C, H, W]`` at the images' size, where ``net_fn``
    maps a batch of images to logits at their size (the network in eval mode)."""

    def __call__(self, net_fn: NetFn, images: Tensor) -> Tensor:
        raise NotImplementedError


class WholeImage(Inference):
    """The network on each whole image at once (the default)."""

    def __call__(self, net_fn: NetFn, images: Tensor) -> Tensor:
        return net_fn(images)


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Offsets of windows of size ``window`` every ``stride`` pixels that cover ``length``; the last
    window ends at the border. One window at 0 when ``length <= window``."""
    if length <= window:
        return [0]
    count = -(-(length - window) // stride) + 1
    return [min(i * stride, length - window) for i in range(count)]


class SlidingWindow(Inference):
    """Runs the network on overlapping crops and averages the logits where crops overlap, as
    PSPNet and DeepLab evaluate images larger than their training crops. The windows of all images
    of a batch go through the network in batches of at most ``batch_size``, so memory is bounded by
    one batch of windows plus the output.

    Args:
        crop_size: window ``(height, width)``.
        stride: step between windows ``(height, width)``; below ``crop_size`` for overlap.
        batch_size: most windows per network call.
        pad: zero-pad images smaller than the window to its size (zero is the mean colour after
            normalisation), as PSPNet's and DeepLab's evaluation does, and crop the logits back;
            False runs such images at their own size (then a window covering the image gives
            exactly whole-image inference).
    """

    def __init__(
        self, crop_size: tuple[int, int], stride: tuple[int, int], batch_size: int = 4, pad: bool = True
    ) -> None:
        if min(*crop_size, *stride, batch_size) < 1:
            raise OptionError(f"crop_size {crop_size}, stride {stride} and batch_size {batch_size} must be positive")
        if stride[0] > crop_size[0] or stride[1] > crop_size[1]:
            raise OptionError(f"stride {tuple(stride)} exceeds crop_size {tuple(crop_size)}: pixels would be skipped")
        self.crop_size = tuple(crop_size)
        self.stride = tuple(stride)
        self.batch_size = batch_size
        self.pad = pad

    def __call__(self, net_fn: NetFn, images: Tensor) -> Tensor:
        height, width = images.shape[-2:]
        crop_height, crop_width = self.crop_size
        if self.pad and (height < crop_height or width < crop_width):
            padded = F.pad(images, (0, max(crop_width - width, 0), 0, max(crop_height - height, 0)))
            return self(net_fn, padded)[..., :height, :width]
        window_height, window_width = min(crop_height, height), min(crop_width, width)
        offsets = [
            (top, left)
            for top in window_starts(height, crop_height, self.stride[0])
            for left in window_starts(width, crop_width, self.stride[1])
        ]
        windows = [(i, top, left) for i in range(len(images)) for top, left in offsets]
        coverage = images.new_zeros(height, width)
        for top, left in offsets:
            coverage[top : top + window_height, left : left + window_width] += 1
        logits: Tensor | None = None
        for first in range(0, len(windows), self.batch_size):
            chunk = windows[first : first + self.batch_size]
            crops = torch.stack([images[i, :, y : y + window_height, x : x + window_width] for i, y, x in chunk])
            outputs = net_fn(crops)
            if logits is None:
                dtype = torch.promote_types(outputs.dtype, torch.float32)
                logits = outputs.new_zeros(len(images), outputs.shape[1], height, width, dtype=dtype)
            for (i, y, x), output in zip(chunk, outputs):
                logits[i, :, y : y + window_height, x : x + window_width] += output
        return logits / coverage


class MultiScaleFlip(Inference):
    """Test-time augmentation as in DeepLab and PSPNet: the image at several scales (and mirrored
    horizontally), each prediction resized back to the input size; their class probabilities are
    averaged. Returns the log of the averaged probabilities, which argmax and cross-entropy treat
    as logits.

    Args:
        scales: image scale factors, e.g. DeepLabV3's and PSPNet's (0.5, 0.75, 1.0, 1.25, 1.5, 1.75).
        flip: also run each scale mirrored left-right (and mirror its output back).
        window: a sliding window for each scaled image; None runs each scaled image whole.
    """

    def __init__(self, scales: Sequence[float], flip: bool = True, window: SlidingWindow | None = None) -> None:
        if not scales or min(scales) <= 0:
            raise OptionError(f"scales must be positive and at least one, got {scales}")
        self.scales = tuple(scales)
        self.flip = flip
        self.window = window

    def _run(self, net_fn: NetFn, images: Tensor) -> Tensor:
        return net_fn(images) if self.window is None else self.window(net_fn, images)

    def __call__(self, net_fn: NetFn, images: Tensor) -> Tensor:
        size = images.shape[-2:]
        total: Tensor | None = None
        for scale in self.scales:
            scaled_size = (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))
            scaled = resize_to(images, scaled_size)
            views = [scaled, scaled.flip(-1)] if self.flip else [scaled]
            for flipped, view in enumerate(views):
                logits = self._run(net_fn, view)
                if flipped:
                    logits = logits.flip(-1)
                probabilities = resize_to(logits.float(), size).softmax(1)
                total = probabilities if total is None else total + probabilities
        return (total / (len(self.scales) * (2 if self.flip else 1))).clamp_min(1e-30).log()
