"""The LightningModule that trains and evaluates any segmentation network."""

from collections.abc import Callable, Sequence
from typing import Literal

import torch
from lightning import LightningModule
from lightning.pytorch.cli import OptimizerCallable
from lightning.pytorch.trainer.states import TrainerFn
from torch import Tensor, nn
from torchmetrics import MetricCollection

from lit_seg.data.batch import Batch, PredictBatch, at_own_sizes
from lit_seg.data.options import OptionError, check_option
from lit_seg.data.transforms import unnormalise
from lit_seg.evaluation.boundary import BoundaryF1
from lit_seg.evaluation.crf import DenseCRF
from lit_seg.evaluation.inference import Inference, MultiScaleFlip, SlidingWindow
from lit_seg.evaluation.metrics import flatten_results, segmentation_metrics
from lit_seg.networks.base import SegmentationNet
from lit_seg.training.checkpoints import NonFiniteError
from lit_seg.training.losses import SegmentationLoss
from lit_seg.training.optim import BATCH_NORMS, parameter_groups, poly_schedule
from lit_seg.training.shims import logs_this_step


class ClassCountMismatch(ValueError):
    """The class metadata disagree: the network's output channels, the dataset's classes, their names."""


class BatchTooSmallForBatchNorm(ValueError):
    """A batch norm in training saw one value per channel: one image per process on a 1x1 map."""


class ImageTooLarge(ValueError):
    """An image to evaluate whole has more pixels than ``max_eval_pixels`` allows."""


def runs_whole_images(inference: Inference | None) -> bool:
    """Whether ``inference`` passes each whole image through the network, so that its memory grows with
    the image's pixels (a sliding window's is bounded by its windows)."""
    window = inference.window if isinstance(inference, MultiScaleFlip) else inference
    return not isinstance(window, SlidingWindow)


class SegmentationModule(LightningModule):
    """Trains a network that maps images to ``{"out": logits}`` (+ ``"aux"`` and ``"scales"`` in training).

    Args:
        net: a :class:`~lit_seg.networks.base.SegmentationNet` class called with ``num_classes``: on the
            command line and in YAML a registry name (``pspnet``, ``smp.unet``: ``lit-seg models`` lists
            them) or a ``class_path`` such as ``lit_seg.networks.pspnet.PSPNet``, with its ``init_args``;
            in Python also a ready ``nn.Module``.
        num_classes: number of classes; linked from the DataModule by the CLI.
        class_names: names for per-class metrics; linked from the DataModule by the CLI.
        ignore_index: label excluded from loss and metrics; linked from the DataModule.
        class_weights: per-class loss weights (e.g. median-frequency balancing), or None.
        aux_weight: weight of the auxiliary loss where the network returns ``"aux"``; the logits of
            ``"scales"`` (DeepLabV2's multi-scale inputs) each add a loss of weight 1.
        loss_normalize: ``"weight_sum"`` divides the class-weighted loss by the labelled pixels' summed
            weights (PyTorch's mean), ``"pixel_count"`` by their number (Caffe-SegNet's loss).
        optimizer: builds the optimizer from parameter groups.
        lr_multipliers: learning-rate multiplier per module-name prefix, e.g. ``{"net.backbone": 0.1}``.
        bias_lr_multiplier: further multiplier of convolution and linear biases (Caffe's ``lr_mult: 2``).
        bias_weight_decay: False exempts convolution and linear biases from weight decay (Caffe's
            ``decay_mult: 0``).
        norm_weight_decay: False exempts the scales and shifts of normalisation layers from weight decay
            (TF-slim's batch norm in DeepLab's release).
        frozen_batchnorm: module-name prefixes, e.g. ``["net.backbone"]``, whose batch norms are frozen:
            always in eval mode (running statistics used, never updated) and affine parameters not trained.
        poly_power: power of the poly schedule, stepped per iteration over the trainer's total
            steps (0 keeps the rate constant).
        warmup_steps: linear warm-up iterations before the poly decay.
        channels_last: run the network in NHWC memory format (faster convolutions on GPUs).
        compile: compile the network with ``torch.compile`` (in place, so checkpoint keys stay).
        inference: how validation, test and predict run the network (:mod:`lit_seg.evaluation.inference`,
            e.g. ``lit_seg.evaluation.inference.SlidingWindow``); None runs it on each whole image. Training
            always uses the plain forward pass.
        crf: post-processing of evaluation and prediction outputs with DeepLab's fully connected
            CRF (:class:`lit_seg.evaluation.crf.DenseCRF`), on images un-normalised with the DataModule's
            mean and std; None for none.
        boundary_f1: also compute SegNet's boundary F1 score (``<stage>/BF``) in validation and test.
        max_eval_pixels: the most pixels of an image that validation, test and predict pass whole through
            the network (``inference`` None, or without a sliding window); a larger image stops the run
            with :class:`ImageTooLarge`, which names this option and the sliding window. The default,
            4096 x 4096, passes every image of the supported datasets; None sets no limit.
    """

    def __init__(
        self,
        net: Callable[[int], SegmentationNet],
        num_classes: int,
        class_names: Sequence[str] | None = None,
        ignore_index: int = 255,
        class_weights: list[float] | None = None,
        aux_weight: float = 0.4,
        loss_normalize: Literal["weight_sum", "pixel_count"] = "weight_sum",
        optimizer: OptimizerCallable = torch.optim.SGD,
        lr_multipliers: dict[str, float] | None = None,
        bias_lr_multiplier: float = 1.0,
        bias_weight_decay: bool = True,
        norm_weight_decay: bool = True,
        frozen_batchnorm: list[str] | None = None,
        poly_power: float = 0.9,
        warmup_steps: int = 0,
        channels_last: bool = False,
        compile: bool = False,
        inference: Inference | None = None,
        crf: DenseCRF | None = None,
        boundary_f1: bool = True,
        max_eval_pixels: int | None = 4096 * 4096,
    ) -> None:
        super().__init__()
        # Evaluation and speed settings stay out: LightningCLI applies a checkpoint's hyperparameters over the
        # command line, so a validate or test run could not change them.
        self.save_hyperparameters(ignore=[
            "net", "optimizer", "inference", "crf", "max_eval_pixels", "boundary_f1", "channels_last", "compile",
        ])
        self.net = net if isinstance(net, nn.Module) else net(num_classes)
        self.num_classes = num_classes
        self.class_names = list(class_names) if class_names else [str(i) for i in range(num_classes)]
        if len(self.class_names) != num_classes:
            raise ClassCountMismatch(f"{len(self.class_names)} class names given for {num_classes} classes")
        repeated = sorted({name for name in self.class_names if self.class_names.count(name) > 1})
        if repeated:  # per-class metrics are keyed by name: a repeated name would merge their columns
            raise ClassCountMismatch(f"class names must differ; repeated: {', '.join(repeated)}")
        self.ignore_index = ignore_index
        self.criterion = SegmentationLoss(num_classes, ignore_index, class_weights, aux_weight, loss_normalize)
        self.optimizer_factory = optimizer
        self.lr_multipliers = lr_multipliers
        self.bias_lr_multiplier = bias_lr_multiplier
        self.bias_weight_decay = bias_weight_decay
        self.norm_weight_decay = norm_weight_decay
        self.frozen_batchnorm = frozen_batchnorm or []
        for norm in self.frozen_batchnorms():
            norm.requires_grad_(False).eval()
        self.poly_power = poly_power
        self.warmup_steps = warmup_steps
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        if channels_last:
            self.net.to(memory_format=torch.channels_last)
        if compile:
            self.net.compile()
        metrics = segmentation_metrics(num_classes, ignore_index)
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        self.inference = inference
        self.crf = crf
        self.val_boundary = BoundaryF1(ignore_index) if boundary_f1 else None
        self.test_boundary = BoundaryF1(ignore_index) if boundary_f1 else None
        check_option(
            max_eval_pixels is None or max_eval_pixels > 0, "max_eval_pixels", max_eval_pixels,
            "a positive number of pixels, or None",
        )
        self.max_eval_pixels = max_eval_pixels
        self.confusion_matrix: Tensor | None = None  # of the last validate or test run, summed over processes

    def frozen_batchnorms(self) -> list[nn.Module]:
        """The batch norms under the ``frozen_batchnorm`` prefixes; a prefix over none is an error."""
        found = {prefix: [] for prefix in self.frozen_batchnorm}
        for name, module in self.named_modules():
            if isinstance(module, BATCH_NORMS):
                for prefix in self.frozen_batchnorm:
                    if name == prefix or name.startswith(prefix + "."):
                        found[prefix].append(module)
        empty = [prefix for prefix, norms in found.items() if not norms]
        if empty:
            raise OptionError(f"frozen_batchnorm: no batch norm is named {empty} or below it")
        return [norm for norms in found.values() for norm in norms]

    def train(self, mode: bool = True) -> "SegmentationModule":
        """Sets the training mode, keeping the frozen batch norms in eval mode."""
        super().train(mode)
        for norm in self.frozen_batchnorms():
            norm.eval()
        return self

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        outputs = self.net(images.contiguous(memory_format=self.memory_format))
        if outputs["out"].shape[1] != self.num_classes:
            raise ClassCountMismatch(
                f"the network outputs {outputs['out'].shape[1]} classes but the data has {self.num_classes} "
                f"({', '.join(self.class_names[:5])}{', ...' if self.num_classes > 5 else ''})"
            )
        return outputs

    def infer(self, images: Tensor) -> Tensor:
        """Logits for evaluation and prediction, by the configured inference mode.

        Raises:
            ImageTooLarge: the images go whole through the network and each has more than ``max_eval_pixels``.
        """
        height, width = images.shape[-2:]
        budget = self.max_eval_pixels
        if budget is not None and height * width > budget and runs_whole_images(self.inference):
            raise ImageTooLarge(
                f"an image of {width}x{height} pixels is above model.max_eval_pixels ({budget}) for whole-image "
                "inference; evaluate it in windows (--model.inference lit_seg.evaluation.inference.SlidingWindow "
                "with its crop_size and stride) or raise --model.max_eval_pixels"
            )
        if self.inference is None:
            return self(images)["out"]
        return self.inference(lambda crops: self(crops)["out"], images)

    def _labels(self, logits: Tensor, images: Tensor) -> Tensor:
        """Class per pixel ``[B, H, W]``: the argmax of the logits, refined by the CRF if any."""
        if self.crf is None:
            return logits.argmax(1)
        data = self.trainer.datamodule
        if data is None:
            raise RuntimeError("the CRF needs the images' mean and std: run with a SegmentationDataModule")
        rgb = (unnormalise(images, data.mean, data.std) * 255).clamp(0, 255)
        return torch.stack([self.crf(image_logits, image).argmax(0) for image_logits, image in zip(logits, rgb)])

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        try:
            outputs = self(batch["image"])
        except ValueError as error:  # torch's words for a batch norm given one value per channel
            if "Expected more than 1 value per channel" not in str(error):
                raise
            raise BatchTooSmallForBatchNorm(
                f"{error}: with {len(batch['image'])} image(s) per process, a batch norm on a pooled 1x1 map "
                "(PSPNet's or ASPP's image pooling) has nothing to normalise; use at least 2 images per process, "
                "or --trainer.sync_batchnorm true over several processes"
            ) from error
        losses = self.criterion(outputs, batch["mask"])
        if not torch.isfinite(losses["loss"]):
            raise NonFiniteError(  # LatestCheckpoint adds which checkpoint holds the last finite state
                f"training loss is {losses['loss'].item()} at step {self.global_step} "
                f"(epoch {self.current_epoch}, batch {batch_idx})"
            )
        if logs_this_step(self.trainer):  # each self.log costs ~1 ms of CPU
            self.log_dict({f"train/loss_{k}" if k != "loss" else "train/loss": v for k, v in losses.items()}, prog_bar=False)
            self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"])
        return losses["loss"]

    def _stage_metrics(self, stage: str) -> tuple[MetricCollection, BoundaryF1 | None]:
        return (self.val_metrics, self.val_boundary) if stage == "val" else (self.test_metrics, self.test_boundary)

    def _evaluate(self, batch: Batch, stage: str) -> Tensor:
        metrics, boundary = self._stage_metrics(stage)
        predictions = torch.full_like(batch["mask"], self.ignore_index)
        loss = batch["image"].new_zeros(())
        parts = list(at_own_sizes(batch, batch["image"], batch["mask"]))
        for rows, images, masks in parts:
            logits = self.infer(images)
            loss += self.criterion.cross_entropy(logits, masks) / len(parts)  # parts: the whole batch, or one image each
            labels = self._labels(logits, images)
            predictions[rows, : labels.shape[-2], : labels.shape[-1]] = labels
            if boundary is not None:  # each image at its own size: the tolerance follows its diagonal
                boundary.update(labels, masks)
        metrics.update(predictions, batch["mask"])
        self.log(f"{stage}/loss", loss, batch_size=len(predictions), sync_dist=True)
        return predictions

    def validation_step(self, batch: Batch, batch_idx: int) -> dict[str, Tensor]:
        return {"predictions": self._evaluate(batch, "val")}

    def test_step(self, batch: Batch, batch_idx: int) -> dict[str, Tensor]:
        return {"predictions": self._evaluate(batch, "test")}

    def _log_epoch_metrics(self, stage: str) -> None:
        metrics, boundary = self._stage_metrics(stage)
        results = flatten_results(metrics.compute(), self.class_names, prefix=f"{stage}/")
        if boundary is not None:
            results[f"{stage}/BF"] = boundary.compute()
            boundary.reset()
        self.log_dict(results)  # already reduced over processes by torchmetrics
        if self.trainer.state.fn != TrainerFn.FITTING:  # the evaluation report is for validate and test runs
            scores = metrics["scores"]
            with scores.sync_context():  # summed over processes
                self.confusion_matrix = scores.confmat.clone()
        metrics.reset()

    def on_validation_epoch_end(self) -> None:
        self._log_epoch_metrics("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch_metrics("test")

    def predict_step(self, batch: PredictBatch, batch_idx: int) -> list[Tensor | str]:
        """Label maps ``[H, W]``, one per image, each at its own size in padded batches; in place of an
        image above ``max_eval_pixels``, the reason it was not predicted (the other images go on)."""
        predictions: list[Tensor | str] = []
        for _, images in at_own_sizes(batch, batch["image"]):
            try:
                predictions += list(self._labels(self.infer(images), images))
            except ImageTooLarge as error:
                predictions += [str(error)] * len(images)
        return predictions

    def configure_optimizers(self) -> dict:
        groups = parameter_groups(
            self, self.lr_multipliers, self.bias_lr_multiplier, self.bias_weight_decay, self.norm_weight_decay
        )
        optimizer = self.optimizer_factory(groups)
        total_steps = int(self.trainer.estimated_stepping_batches)
        scheduler = poly_schedule(optimizer, total_steps, self.poly_power, self.warmup_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
