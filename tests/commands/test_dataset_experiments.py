"""Each dataset's experiment YAML through a short ``lit-seg fit`` on its tiny on-disk layout."""

from pathlib import Path

import pytest
import yaml

from lit_seg.commands.cli import run_cli
from tests.helpers.experiment_runs import FAKES
from tests.helpers.tiny_runs import REPO, TINY_MODEL

NUM_CLASSES = {"camvid": 11, "cityscapes": 19, "ade20k": 150, "voc": 21, "nyudv2": 40}


@pytest.mark.parametrize("name", list(FAKES))
def test_experiment_yaml_states_root_crop_and_scale(name: str) -> None:
    init_args = yaml.safe_load((REPO / "experiments" / "data" / f"{name}.yaml").read_text())["data"]["init_args"]
    assert init_args["root"] == f"data/{name}"
    assert len(init_args["crop_size"]) == 2 and len(init_args["scale_range"]) == 2
    assert "batch_size" not in init_args


@pytest.mark.parametrize("name", list(FAKES))
def test_fit_from_the_experiment_yaml(name: str, tmp_path: Path) -> None:
    root = FAKES[name](tmp_path / name)
    run = run_cli([
        "fit", "--config", str(REPO / "experiments" / "data" / f"{name}.yaml"), "--config", str(TINY_MODEL),
        "--data.init_args.root", str(root), "--data.init_args.batch_size", "2", "--data.init_args.num_workers", "0",
        "--trainer.fast_dev_run", "1", "--trainer.default_root_dir", str(tmp_path / "run"),
    ])
    assert run.trainer.state.finished and run.trainer.global_step == 1
    assert not (tmp_path / "run" / "checkpoints").exists(), "fast_dev_run wrote a checkpoint"
    assert run.datamodule.num_classes == NUM_CLASSES[name] == run.model.num_classes
