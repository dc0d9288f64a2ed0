"""Training-speed benchmarks (``lit-seg benchmark``): images/s, memory and FLOP utilisation of real training steps."""

from lit_seg.commands.benchmark.command import main

__all__ = ["main"]
