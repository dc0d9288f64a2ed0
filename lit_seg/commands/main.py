"""The ``lit-seg`` entry point: lists every subcommand and starts one, importing torch and Lightning
only where the subcommand needs them (``lit-seg --help`` answers at once)."""

import importlib
import sys

# Lightning's subcommands (LightningCLI.subcommands(), run by lit_seg.commands.cli) and what each does.
TRAINER_COMMANDS = {
    "fit": "train a network (--ckpt_path last resumes an interrupted run)",
    "validate": "evaluate a checkpoint on the validation split: metrics, reports, confusion matrix",
    "test": "evaluate a checkpoint on the test split",
    "predict": "segment images with a checkpoint: palette masks and overlays",
}

# lit_seg's own tools: the module whose ``main(argv)`` runs each, and what it does.
TOOLS = {
    "quickstart": ("lit_seg.commands.quickstart", "train a small U-Net on a generated dataset, no download"),
    "models": ("lit_seg.commands.models_table", "the registered networks (the names --model.net takes): size, cost"),
    "data-stats": ("lit_seg.commands.data_stats", "class pixel frequencies and median-frequency weights of a split"),
    "loader-benchmark": ("lit_seg.commands.loader_benchmark", "training-loader throughput per worker count"),
    "benchmark": ("lit_seg.commands.benchmark", "training speed: images/s, memory, FLOP utilisation"),
    "compare": ("lit_seg.commands.compare", "what differed between runs and what it did: tables and plots"),
    "export": ("lit_seg.commands.export", "a trained network to ONNX or torch.export, checked against PyTorch"),
}

_EXAMPLE = "lit-seg fit --config experiments/recipes/segnet_basic_camvid.yaml --data.init_args.root DATA"


def usage() -> str:
    """The ``lit-seg --help`` text: every subcommand with what it does."""
    width = max(map(len, [*TRAINER_COMMANDS, *TOOLS])) + 2
    lines = [
        "usage: lit-seg SUBCOMMAND [options]    (lit-seg SUBCOMMAND --help: its options)",
        "",
        "Training and evaluation (LightningCLI: --config FILE ..., then any --KEY VALUE):",
        *(f"  {name:<{width}}{summary}" for name, summary in TRAINER_COMMANDS.items()),
        "",
        "Tools:",
        *(f"  {name:<{width}}{summary}" for name, (_, summary) in TOOLS.items()),
        "",
        f"A recipe runs on its own: {_EXAMPLE}",
    ]
    return "\n".join(lines)


def main(args: list[str] | None = None) -> None:
    """Runs the ``lit-seg`` subcommand that ``args`` (default: the command line) name."""
    argv = sys.argv[1:] if args is None else list(args)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        if not argv:
            raise SystemExit(2)
    elif argv[0] in TOOLS:
        importlib.import_module(TOOLS[argv[0]][0]).main(argv[1:])
    elif argv[0] in TRAINER_COMMANDS or argv[0].startswith("-"):  # options before the subcommand, e.g. --config
        from lit_seg.commands.cli import run_cli

        run_cli(args)
    else:
        print(f"lit-seg: error: unknown subcommand {argv[0]!r}; choose from {', '.join([*TRAINER_COMMANDS, *TOOLS])}",
              file=sys.stderr)
        raise SystemExit(2)


if __name__ == "__main__":
    main()
