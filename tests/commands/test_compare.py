"""``lit-seg compare`` on three local runs made by ``lit-seg fit``: tables, plots, and skipped folders;
the same tables from W&B runs holding what those runs logged."""

import csv
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from lit_seg.commands import compare
from lit_seg.commands.cli import run_cli
from lit_seg.commands.main import main
from lit_seg.data.datasets.shapes import CLASSES as SHAPES_CLASSES
from lit_seg.training.loggers import logged_step
from tests.helpers.tiny_runs import tiny_fit_args

PLOTS = ("curves_vs_step.png", "miou_vs_time.png", "miou_vs_throughput.png")
TRAINED_STEPS: dict[str, int] = {}  # run name -> trainer.global_step at the end of its fit


@pytest.fixture(scope="module")
def runs(shapes_root: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three two-epoch runs of the tiny network, at different widths, with the default loggers."""
    root = tmp_path_factory.mktemp("runs")
    folders = []
    for width in (4, 8, 16):
        folder = root / f"tiny_w{width}"
        cli = run_cli(tiny_fit_args(shapes_root, folder, "--trainer.max_epochs", "2", "--trainer.logger", "true",
                                    "--model.net.init_args.width", str(width)))
        TRAINED_STEPS[folder.name] = cli.trainer.global_step
        folders.append(folder)
    return folders


def last_validation(folder: Path) -> dict[str, str]:
    with (folder / "version_0" / "metrics.csv").open() as file:
        return [row for row in csv.DictReader(file) if row["val/mIoU"]][-1]


def test_markdown_tables_and_plots(runs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["compare", *map(str, runs), "--markdown", "--plots", str(tmp_path)])
    out = capsys.readouterr().out
    lines = [line.split(" | ") for line in out.split("\n\n")[0].splitlines() if line.startswith("| tiny_w")]
    summary = {cells[0].strip("| "): cells for cells in lines}
    assert list(summary) == [folder.name for folder in runs]
    for folder in runs:
        row, final = summary[folder.name], last_validation(folder)
        assert row[1:4] == ["tinynet", "folder", str(TRAINED_STEPS[folder.name])]
        assert row[4] == f"{100 * float(final['val/mIoU']):.2f}"
        assert row[6] == f"{100 * float(final['val/pixel_acc']):.2f}"
        assert float(row[7]) == pytest.approx(float(final["time/train_images_per_s"]), abs=0.05)
        assert row[8].strip(" |").count(":") == 2  # h:mm:ss
    assert "| Class | tiny_w4 | tiny_w8 | tiny_w16 |" in out
    differences = out.split("| Run | model.net.width |")[1].splitlines()[2:5]  # the only config value that differs
    assert [line.split(" | ")[-1] for line in differences] == ["4 |", "8 |", "16 |"]
    assert "| Evaluation |" not in out  # no validate or test of these runs
    classes = [line.split(" | ")[0].strip("| ") for line in out.split("| Class |")[1].splitlines()[2:] if line.startswith("|")]
    assert classes == list(SHAPES_CLASSES)  # the dataset's order
    for name in PLOTS:
        with Image.open(tmp_path / name) as image:
            assert image.format == "PNG" and image.width >= 600


def test_rich_tables(
    runs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    main(["compare", *map(str, runs), "--plots", str(tmp_path)])
    out = capsys.readouterr().out
    assert "Best mIoU (step)" in out and all(folder.name in out for folder in runs)
    assert "Per-class IoU" in out and "ringed_ellipse" in out


def test_missing_and_corrupt_runs_are_skipped(runs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corrupt = tmp_path / "corrupt"
    shutil.copytree(runs[1], corrupt)
    metrics = corrupt / "version_0" / "metrics.csv"
    metrics.write_text(metrics.read_text()[:200] + "\n1,2,3,not,a,number\x00\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = tmp_path / "missing"
    main(["compare", str(runs[0]), str(missing), str(corrupt), str(empty), "--markdown", "--plots", str(tmp_path / "plots")])
    captured = capsys.readouterr()
    assert f"skipping {missing}: no such folder" in captured.err
    assert f"skipping {corrupt}: {metrics}" in captured.err
    assert f"skipping {empty}: no version_*/metrics.csv" in captured.err
    assert "| tiny_w4 |" in captured.out and "| corrupt |" not in captured.out


def test_nothing_readable(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="no readable runs"):
        main(["compare", str(tmp_path / "missing"), "--plots", str(tmp_path)])


def test_wandb_without_key_fails_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    with pytest.raises(SystemExit, match="W&B runs need an API key"):
        main(["compare", "--wandb", "someone/lit_seg-camvid", "--filters", '{"group": "pspnet_camvid"}'])


class FakeWandbRun:
    """What the W&B API gives of a run: its name, group, job type, config and history rows."""

    def __init__(self, name: str, group: str, job_type: str, config: dict[str, Any], history: list[dict[str, float]]):
        self.name, self.group, self.job_type, self.config, self.history = name, group, job_type, config, history

    def scan_history(self) -> list[dict[str, float]]:
        return self.history


def as_wandb_run(folder: Path, version: int, name: str, job_type: str = "train") -> FakeWandbRun:
    """The W&B run of one local session: the config and metrics that its loggers got, the metrics'
    steps under ``trainer/global_step`` as Lightning's W&B logger puts them."""
    session = folder / f"version_{version}"
    with (session / "metrics.csv").open() as file:
        history = [
            {key: float(value) for key, value in row.items() if value and key != "step"} | {"trainer/global_step": float(row["step"])}
            for row in csv.DictReader(file)
        ]
    return FakeWandbRun(name, "tinynet", job_type, yaml.safe_load((session / "hparams.yaml").read_text()), history)


def use_fake_wandb(monkeypatch: pytest.MonkeyPatch, remote: list[FakeWandbRun]) -> None:
    """``wandb.Api().runs("someone/lit_seg-folder", filters={"group": "tinynet"})`` gives ``remote``."""
    import wandb

    class FakeApi:
        def runs(self, path: str, filters: dict) -> list[FakeWandbRun]:
            assert (path, filters) == ("someone/lit_seg-folder", {"group": "tinynet"})
            return remote

    monkeypatch.setattr(wandb, "Api", FakeApi)
    monkeypatch.setattr(compare, "has_wandb_api_key", lambda: True)


def test_wandb_runs_give_the_local_tables(
    runs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    use_fake_wandb(monkeypatch, [as_wandb_run(folder, 0, folder.name) for folder in runs])
    main(["compare", *map(str, runs), "--markdown", "--plots", str(tmp_path / "local")])
    local = capsys.readouterr().out
    main(["compare", "--wandb", "someone/lit_seg-folder", "--filters", '{"group": "tinynet"}', "--markdown",
          "--plots", str(tmp_path / "wandb")])
    online = capsys.readouterr().out
    assert online.replace(str(tmp_path / "wandb"), "PLOTS") == local.replace(str(tmp_path / "local"), "PLOTS")


def test_wandb_evaluation_runs_are_reported_apart(runs: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """An eval run of the group is an evaluation of its training run, at the checkpoint's step."""
    training = as_wandb_run(runs[0], 0, "train")
    metrics = {key: value for key, value in training.history[-1].items() if key.startswith("val/")}
    logged = metrics | {"trainer/global_step": float(logged_step(6))}
    evaluation = FakeWandbRun("eval", "tinynet", "eval", training.config | {"subcommand": "validate"}, [logged])
    use_fake_wandb(monkeypatch, [training, evaluation])
    [run] = compare.read_wandb_runs("someone/lit_seg-folder", {"group": "tinynet"})
    assert run.name == "train" and run.steps == TRAINED_STEPS[runs[0].name]
    assert [(e.run, e.kind, e.step, e.metrics["mIoU"]) for e in run.evaluations] == [
        ("eval", "validate", 6, metrics["val/mIoU"])
    ]


def test_wandb_evaluation_belongs_to_the_run_of_its_checkpoint(runs: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Two training runs share a group: the evaluation goes to the one whose checkpoint it evaluated."""
    first, second = as_wandb_run(runs[0], 0, "first"), as_wandb_run(runs[1], 0, "second")
    metrics = {key: value for key, value in first.history[-1].items() if key.startswith("val/")}
    checkpoint = str(Path(first.config["trainer"]["default_root_dir"]) / "checkpoints" / "last.ckpt")
    config = first.config | {"subcommand": "validate", "ckpt_path": checkpoint}
    evaluation = FakeWandbRun("eval", "tinynet", "eval", config, [metrics | {"trainer/global_step": 5.0}])
    use_fake_wandb(monkeypatch, [first, second, evaluation])
    read = {run.name: [e.run for e in run.evaluations] for run in compare.read_wandb_runs("someone/lit_seg-folder", {"group": "tinynet"})}
    assert read == {"first": ["eval"], "second": []}
