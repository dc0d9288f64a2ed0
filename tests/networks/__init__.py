"""Tests of lit_seg.networks."""
