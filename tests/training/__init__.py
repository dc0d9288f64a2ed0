"""Tests of lit_seg.training."""
