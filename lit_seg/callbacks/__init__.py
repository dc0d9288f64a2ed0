"""Callbacks: the end-of-fit "latest" checkpoint, plain-text progress, sample predictions as images, per-epoch seeding, evaluation reports."""

from lit_seg.callbacks.latest_checkpoint import LatestCheckpoint
from lit_seg.callbacks.progress import LineProgressBar
from lit_seg.callbacks.report import EvaluationReportWriter
from lit_seg.callbacks.samples import PredictionSamples
from lit_seg.callbacks.seeding import EpochSeed

__all__ = ["EpochSeed", "EvaluationReportWriter", "LatestCheckpoint", "LineProgressBar", "PredictionSamples"]
