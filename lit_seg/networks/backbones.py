"""Backbones as lists of feature maps (timm ``features_only``), and pretrained weights from the hub
or from a local file.

Backbone contract: ``backbone(images)`` returns a list of feature maps, one per requested stage,
and ``backbone.feature_info.channels()`` gives their channel counts. Under dilation several stages
share one stride, so heads address features by position in that list, never by stride.
"""

import os
import socket
from collections.abc import Sequence
from pathlib import Path

import timm
import torch
from torch import nn

_HUB_HOST = "huggingface.co"


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Reads a state dict from a ``.safetensors`` file or a torch file, never executing pickled code."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:  # Lightning checkpoints
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, expected a state dict")
    return state


def load_matching_weights(module: nn.Module, path: str | Path) -> None:
    """Loads every parameter and buffer of ``module`` from the file at ``path``.

    Keys the module does not have (a classifier, say) are ignored; a key the module needs but the
    file lacks, or a shape mismatch, is an error naming the key.
    """
    state = load_state_dict(path)
    own = module.state_dict()
    missing = [key for key in own if key not in state]
    if missing:
        raise KeyError(f"{path} lacks {len(missing)} weights of the backbone, e.g. {missing[:3]}")
    wrong = [k for k in own if state[k].shape != own[k].shape]
    if wrong:
        k = wrong[0]
        raise ValueError(f"{path}: {k} has shape {tuple(state[k].shape)}, expected {tuple(own[k].shape)}")
    module.load_state_dict({key: state[key] for key in own})


class HubUnreachable(RuntimeError):
    """Pretrained weights were asked for from the hub, which cannot be reached."""


def ensure_hub_reachable(what: str) -> None:
    """Fails at once, with a clear message, when pretrained weights cannot come from the hub."""
    hint = "pass a local file instead (pretrained: /path/to/weights.safetensors)"
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0"):
        raise HubUnreachable(f"cannot download {what}: HF_HUB_OFFLINE is set; {hint}")
    try:
        socket.create_connection((_HUB_HOST, 443), timeout=3).close()
    except OSError as error:
        raise HubUnreachable(f"cannot download {what}: {_HUB_HOST} is unreachable ({error}); {hint}") from error


def load_pretrained(module: nn.Module, pretrained: str, hub_repo: str) -> None:
    """Loads ``module`` from a local weights file, or with ``"hub"`` from ``model.safetensors`` of
    the hub repository ``hub_repo`` (for backbones lit_seg builds itself rather than through timm)."""
    if pretrained == "hub":
        from huggingface_hub import hf_hub_download

        ensure_hub_reachable(f"pretrained weights {hub_repo}")
        pretrained = hf_hub_download(hub_repo, "model.safetensors")
    load_matching_weights(module, pretrained)


def timm_model(name: str, pretrained: str | None, **timm_options: object) -> nn.Module:
    """``timm.create_model(name, **timm_options)`` with ``pretrained`` weights: ``None`` for random
    initialisation, ``"hub"`` for timm's default pretrained weights (needs the network), or a path
    to a safetensors / state-dict file."""
    from_hub = pretrained == "hub"
    if from_hub:
        ensure_hub_reachable(f"pretrained weights for {name}")
    model = timm.create_model(name, pretrained=from_hub, **timm_options)
    if pretrained is not None and not from_hub:
        load_matching_weights(model, pretrained)
    return model


def timm_backbone(
    name: str,
    *,
    out_indices: Sequence[int],
    output_stride: int = 32,
    pretrained: str | None = None,
    dilate_first_blocks: bool = False,
    caffe_layout: bool = False,
    **timm_options: object,
) -> nn.Module:
    """A timm model as a feature extractor.

    Args:
        name: a timm model name, e.g. ``"resnet101"``.
        out_indices: the stages whose feature maps are returned, in order.
        output_stride: 8, 16 or 32; below 32 the last stages are dilated instead of strided.
        pretrained: ``None`` for random initialisation, ``"hub"`` for timm's default pretrained
            weights (needs the network), or a path to a safetensors / state-dict file.
        dilate_first_blocks: in a dilated ResNet (stages ``layer1``..``layer4``), give the first
            block of each dilated stage the stage's rate too, as PSPNet's released ResNet does
            (hszhao/semseg); timm, like torchvision, gives that block the previous stage's rate.
        caffe_layout: in a ResNet, the Caffe layout of the DeepLab releases: each bottleneck strides
            in its first 1x1 conv instead of its 3x3 conv (MSRA's ResNets,
            KaimingHe/deep-residual-networks), and the stem max-pool (3x3, stride 2, padding 1) rounds
            its output size up (Caffe's ceil mode; MSRA's own pool1 has no padding). The stem conv,
            the paddings and the batch-norm eps (1e-5) are as in timm. Converted Caffe weights need
            this layout to compute what they computed in Caffe.
        **timm_options: further arguments of the timm model (e.g. ``drop_path_rate``).
    """
    features = timm_model(
        name,
        pretrained,
        features_only=True,
        out_indices=tuple(out_indices),
        output_stride=output_stride,
        **timm_options,
    )
    if dilate_first_blocks:
        stages = [stage for stage_name, stage in features.named_children() if stage_name.startswith("layer")]
        if not stages:
            raise ValueError(f"dilate_first_blocks needs a ResNet with stages layer1..layer4; {name} has none")
        for stage in stages:
            _dilate_stage(stage)
    if caffe_layout:
        _to_caffe_layout(features, name)
    return features


def _to_caffe_layout(features: nn.Module, name: str) -> None:
    """Moves each bottleneck's stride from its 3x3 conv (``conv2``) to its first 1x1 conv (``conv1``) and
    makes the stem max-pool ceil-mode. The padding of a 3x3 conv is the same at stride 1 and 2, and a
    basic block already strides in its first conv."""
    stages = [stage for stage_name, stage in features.named_children() if stage_name.startswith("layer")]
    maxpool = getattr(features, "maxpool", None)
    if not stages or not isinstance(maxpool, nn.MaxPool2d):
        raise ValueError(f"caffe_layout needs a ResNet with a max-pool stem and stages layer1..layer4; {name} has none")
    maxpool.ceil_mode = True
    for block in (block for stage in stages for block in stage):
        if block.conv1.kernel_size == (1, 1):
            block.conv1.stride, block.conv2.stride = block.conv2.stride, (1, 1)


def _dilate_stage(stage: nn.Module) -> None:
    """Sets every spatial conv of a ResNet stage to the stage's rate, the largest dilation in it
    (a no-op for an undilated stage)."""
    convs = [m for m in stage.modules() if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1)]
    rate = max(conv.dilation[0] for conv in convs)
    for conv in convs:
        conv.dilation = (rate, rate)
        conv.padding = tuple(rate * (k - 1) // 2 for k in conv.kernel_size)
