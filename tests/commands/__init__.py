"""Tests of lit_seg.commands."""
