"""Tests of lit_seg.data."""
