"""Tests of lit_seg.evaluation."""
