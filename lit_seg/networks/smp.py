"""segmentation_models_pytorch's architectures behind lit_seg's output contract, as ``smp.<arch>``."""

import functools
from collections.abc import Sequence
from pathlib import Path

import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lit_seg.networks.backbones import ensure_hub_reachable, load_matching_weights
from lit_seg.networks.base import SegmentationNet
from lit_seg.networks.registry import register_model

# The smp keyword that sets each architecture's decoder width (Linknet's is fixed).
_DECODER_WIDTH_ARGUMENT: dict[str, str | None] = {
    "Unet": "decoder_channels",
    "UnetPlusPlus": "decoder_channels",
    "MAnet": "decoder_channels",
    "Linknet": None,
    "FPN": "decoder_pyramid_channels",
    "PSPNet": "psp_out_channels",
    "PAN": "decoder_channels",
    "DeepLabV3": "decoder_channels",
    "DeepLabV3Plus": "decoder_channels",
    "UPerNet": "decoder_channels",
    "Segformer": "decoder_segmentation_channels",
    "DPT": "decoder_fusion_channels",
}

# Fixed smp options the output contract needs: timm ViTs take only their pretraining size unless
# their position embeddings are resampled per input.
_CONTRACT_OPTIONS: dict[str, dict[str, object]] = {"DPT": {"dynamic_img_size": True}}

# PAN's feature pyramid attention halves its deepest map three times, so that map needs 8 pixels.
_DEEPEST_MAP_MIN_SIZE: dict[str, int] = {"PAN": 8}

# Smaller inputs are padded to this size: a stride-32 encoder needs one pixel in its last stage, and
# MiT's spatial-reduction convs need 8 pixels at stride 4.
_MIN_INPUT_SIZE = 32


class _DecoderHead(nn.Module):
    """smp's decoder followed by its segmentation head."""

    def __init__(self, decoder: nn.Module, segmentation_head: nn.Module) -> None:
        super().__init__()
        self.decoder = decoder
        self.segmentation_head = segmentation_head

    def forward(self, features: list[Tensor] | tuple[list[Tensor], list[Tensor | None]]) -> Tensor:
        if isinstance(features, tuple):  # DPT's ViT encoder: (feature maps, prefix tokens)
            return self.segmentation_head(self.decoder(*features))
        return self.segmentation_head(self.decoder(features))


def _is_file(weights: str) -> bool:
    """Whether ``encoder_weights`` names a file rather than an smp weight set on the hub.

    smp's weight sets (``"imagenet"``, ``"ssl"``, ``"imagenet+5k"``, ...) have neither a suffix nor
    a path separator.
    """
    return Path(weights).suffix != "" or "/" in weights


def _drop_unused_modules(model: nn.Module, probe: Tensor) -> None:
    """Replaces every submodule none of whose parameters gets a gradient from ``model(probe)`` by
    ``nn.Identity``.

    smp builds whole encoders even where an architecture reads only the first stages (PSPNet stops
    after layer2 by default; MobileNet encoders run one stage more than they return) and keeps
    timm's classifier head and final norm under DPT. Those parameters would get no gradient, which
    plain DDP refuses. The probe runs in eval mode, so no normalisation statistics move, and with
    gradients enabled even where the model is built under ``torch.no_grad()``.
    """
    training = model.training
    parameters = [p for p in model.parameters() if p.requires_grad]
    with torch.enable_grad():
        logits = model.eval()(probe)["out"]
        gradients = torch.autograd.grad(logits.sum(), parameters, allow_unused=True)
    model.train(training)
    used = {id(p) for p, gradient in zip(parameters, gradients) if gradient is not None}
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            ids = [id(p) for p in child.parameters()]
            if ids and not any(i in used for i in ids):
                setattr(parent, name, nn.Identity())


class SMPModel(SegmentationNet):
    """An architecture of segmentation_models_pytorch
    (https://github.com/qubvel-org/segmentation_models.pytorch) with lit_seg's output contract:
    logits at exactly the input size, for any input size.

    smp wants inputs divisible by the encoder's output stride (DPT: by its decoder's deepest
    stride, 32 for ViT-B/16; PAN: at least 8 pixels in the deepest map as well); the image is
    zero-padded at the bottom and right to the nearest valid size and the logits are cropped back.
    Unet takes any size and is not padded. The encoder is the ``backbone``, smp's decoder and
    segmentation head the ``head``. Submodules that smp builds but never runs (PSPNet's layer3 and
    layer4, timm's classifier head) are dropped, so every parameter gets a gradient. Options left
    at ``None`` take smp's default for the architecture.

    Args:
        num_classes: number of output classes.
        arch: an smp architecture name, e.g. ``"Unet"``, ``"FPN"``, ``"DeepLabV3Plus"`` (any case).
        encoder_name: an smp encoder, e.g. ``"resnet34"``, ``"mit_b0"``, or ``"tu-<timm name>"``;
            ``None`` for smp's default (``"resnet34"``; DPT: ``"tu-vit_base_patch16_224.augreg_in21k"``).
        encoder_depth: number of encoder stages used, at most 5; ``None`` for smp's default (5;
            PSPNet: 3; DPT: 4).
        encoder_weights: ``None`` for random initialisation, an smp weight set such as
            ``"imagenet"`` (downloaded from the hub), or a path to a ``.safetensors`` / torch file
            holding the encoder's state dict (the keys of ``SMPModel.backbone.state_dict()``).
        in_channels: number of input image channels.
        decoder_channels: the decoder width: one int, or for Unet, UnetPlusPlus and MAnet one int
            per decoder block (as many as ``encoder_depth``); ``None`` for smp's default. The smp
            option it sets is FPN's ``decoder_pyramid_channels``, PSPNet's ``psp_out_channels``,
            Segformer's ``decoder_segmentation_channels``, DPT's ``decoder_fusion_channels``, and
            ``decoder_channels`` elsewhere; Linknet has none.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        arch: str = "Unet",
        encoder_name: str | None = None,
        encoder_depth: int | None = None,
        encoder_weights: str | None = None,
        in_channels: int = 3,
        decoder_channels: int | Sequence[int] | None = None,
    ) -> None:
        if arch.lower() not in smp.MODEL_ARCHITECTURES_MAPPING:
            known = ", ".join(cls.__name__ for cls in smp.MODEL_ARCHITECTURES_MAPPING.values())
            raise ValueError(f"unknown smp architecture {arch!r}; known: {known}")
        architecture = smp.MODEL_ARCHITECTURES_MAPPING[arch.lower()]
        options: dict[str, object] = dict(_CONTRACT_OPTIONS.get(architecture.__name__, {}))
        if encoder_name is not None:
            options["encoder_name"] = encoder_name
        if encoder_depth is not None:
            options["encoder_depth"] = encoder_depth
        if decoder_channels is not None:
            width_argument = _DECODER_WIDTH_ARGUMENT[architecture.__name__]
            if width_argument is None:
                raise ValueError(f"smp's {architecture.__name__} has no decoder width option")
            options[width_argument] = decoder_channels
        from_file = encoder_weights is not None and _is_file(encoder_weights)
        if encoder_weights is not None and not from_file:
            ensure_hub_reachable(f"{encoder_weights!r} weights for an smp encoder")
        model = architecture(
            encoder_weights=None if from_file else encoder_weights,
            in_channels=in_channels,
            classes=num_classes,
            **options,
        )
        super().__init__(model.encoder, _DecoderHead(model.decoder, model.segmentation_head))

        stride = model.encoder.output_stride
        if not model.requires_divisible_input_shape:
            stride = 1
        elif architecture is smp.DPT:  # the decoder builds maps at strides 4, 8, ..., 2 ** (depth + 1)
            stride = max(stride, 2 ** (len(model.encoder.output_strides) + 1))
        self.size_multiple = stride
        self.min_size = max(_MIN_INPUT_SIZE, stride * _DEEPEST_MAP_MIN_SIZE.get(architecture.__name__, 1))

        device = next(self.parameters()).device
        _drop_unused_modules(self, torch.zeros(1, in_channels, self.min_size, self.min_size, device=device))
        if from_file:
            load_matching_weights(self.backbone, encoder_weights)

    def padded_size(self, height: int, width: int) -> tuple[int, int]:
        """The smallest input size at least ``height`` x ``width`` that the smp model accepts."""
        multiple = self.size_multiple
        return tuple(max(-(-side // multiple) * multiple, self.min_size) for side in (height, width))

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        height, width = images.shape[-2:]
        padded_height, padded_width = self.padded_size(height, width)
        padded = F.pad(images, (0, padded_width - width, 0, padded_height - height))
        return {"out": super().forward(padded)["out"][..., :height, :width]}


for _name, _architecture in smp.MODEL_ARCHITECTURES_MAPPING.items():
    register_model(f"smp.{_name}")(functools.partial(SMPModel, arch=_architecture.__name__))
