"""``lit-seg``: every subcommand listed at once (no torch), a readable ``fit --help``, registry names that train."""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
from lightning.pytorch.cli import LightningCLI

from lit_seg.commands.cli import run_cli
from lit_seg.commands.main import TOOLS, TRAINER_COMMANDS, main
from tests.helpers.tiny_runs import REPO, tiny_fit_args

pytestmark = pytest.mark.filterwarnings("ignore:LightningCLI.s args parameter")


def test_the_subcommand_tables_name_what_runs() -> None:
    assert list(TRAINER_COMMANDS) == list(LightningCLI.subcommands())
    for module, _ in TOOLS.values():
        assert callable(importlib.import_module(module).main), module


def test_help_lists_every_subcommand_without_importing_torch() -> None:
    script = (
        "import sys\nfrom lit_seg.commands.main import main\nmain(['--help'])\n"
        "assert not {'torch', 'lightning', 'jsonargparse'} & set(sys.modules), 'imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")}
    assert listed == {*TRAINER_COMMANDS, *TOOLS}


def test_an_unknown_subcommand_lists_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["fitt"])
    assert exit_info.value.code == 2
    assert "unknown subcommand 'fitt'; choose from fit, validate, test, predict, quickstart" in capsys.readouterr().err


def test_fit_help_is_readable(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "torch.nn.modules" not in text and "lit_seg.networks.pspnet.PSPNet" in text
    assert text.startswith("usage: ") and len(text.splitlines()) < 900  # 2,461 lines when every nn.Module was listed


def test_a_registry_name_trains(shapes_root: Path, tmp_path: Path) -> None:
    cli = run_cli(tiny_fit_args(
        shapes_root, tmp_path, "--model.net", "pspnet", "--model.net.init_args.backbone", "resnet18",
        "--model.net.init_args.pretrained", "null", "--trainer.max_steps", "2",
    ))
    assert type(cli.model.net).__name__ == "PSPNet" and cli.trainer.global_step == 2
    assert cli.config.fit.model.net.class_path == "lit_seg.networks.pspnet.PSPNet"  # as a saved config holds it
