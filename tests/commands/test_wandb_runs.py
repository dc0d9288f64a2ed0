"""The W&B runs of a fit that is interrupted, resumed and then validated, read back from the offline runs'
files: one training run continued under one id, an evaluation run beside it, and what each holds."""

import json
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from wandb.proto import wandb_internal_pb2

from lit_seg.commands.cli import run_cli
from lit_seg.commands.main import main
from lit_seg.training.loggers import RUN_ID_FILE, logged_step
from tests.helpers.tiny_runs import tiny_fit_args

BLOCK, HEADER = 32 * 1024, 7  # a .wandb file: ":W&B", a 2-byte magic and a version, then LevelDB log blocks


def records(path: Path) -> Iterator[wandb_internal_pb2.Record]:
    """The records of an offline run's ``.wandb`` file (LevelDB's log format: 32 KiB blocks of chunks
    with a 7-byte header: checksum, length, and whether the chunk is a whole record, or its first,
    middle or last part)."""
    data = path.read_bytes()
    assert data[:4] == b":W&B", path
    position, pending = HEADER, b""
    while position + 7 <= len(data):
        if BLOCK - position % BLOCK < 7:  # a block's tail too short for a header is padding
            position += BLOCK - position % BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + 7])
        pending += data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # a whole record, or its last part
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record
            pending = b""


def read_run(folder: Path) -> tuple[wandb_internal_pb2.RunRecord, list[dict], dict]:
    """An offline run's run record, its history rows (``{key: value}``) and its config."""
    run, history, config = None, [], {}
    for record in records(next(folder.glob("*.wandb"))):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = record.run
        elif kind == "history":
            history.append({item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item})
        elif kind == "config":
            config |= {item.key: json.loads(item.value_json) for item in record.config.update}
    return run, history, config


@pytest.fixture(scope="module")
def run_folder(shapes_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fit of 8 steps (validation every 4), interrupted after step 6, resumed, then validated, with
    W&B offline."""
    folder = tmp_path_factory.mktemp("wandb") / "run"
    schedule = ["--trainer.max_steps", "8", "--trainer.val_check_interval", "4", "--trainer.check_val_every_n_epoch",
                "null", "--last_checkpoint.every_n_train_steps", "2", "--trainer.logger", "true"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WANDB_MODE", "offline")
        with pytest.raises(SystemExit):  # Lightning ends an interrupted fit with exit code 1
            run_cli(tiny_fit_args(shapes_root, folder, *schedule, "--trainer.callbacks+=tests.helpers.nets.StopAtStep",
                                  "--trainer.callbacks.step", "6"))
        run_cli(tiny_fit_args(shapes_root, folder, *schedule, "--ckpt_path", "last"))
        validate = tiny_fit_args(shapes_root, folder, "--trainer.logger", "true", "--ckpt_path", "last")
        run_cli(["validate", *validate[1:]])
    return folder


def test_resumed_fit_continues_its_run_and_validate_is_an_evaluation(run_folder: Path) -> None:
    run_id = (run_folder / "checkpoints" / RUN_ID_FILE).read_text().strip()
    folders = sorted((run_folder / "wandb").glob("offline-run-*"))
    assert len(folders) == 3
    train_folders = [folder for folder in folders if folder.name.endswith(f"-{run_id}")]
    assert len(train_folders) == 2  # the first session and the resumed one: one run
    [eval_folder] = set(folders) - set(train_folders)
    train, evaluation = read_run(train_folders[0]), read_run(eval_folder)
    assert (train[0].job_type, evaluation[0].job_type) == ("train", "eval")
    assert train[0].run_group == evaluation[0].run_group == "tinynet"
    assert read_run(train_folders[1])[0].run_id == run_id
    # The evaluation is logged at the checkpoint's step, as the fit's own validation of it was.
    [scores] = [row for row in evaluation[1] if "val/mIoU" in row]
    assert scores["trainer/global_step"] == logged_step(8)
    resumed_scores = [row for row in read_run(train_folders[1])[1] if "val/mIoU" in row]
    assert [row["trainer/global_step"] for row in resumed_scores] == [logged_step(8)]


def test_samples_share_the_step_of_their_validation(run_folder: Path) -> None:
    for folder in (run_folder / "wandb").glob("offline-run-*"):
        _, history, config = read_run(folder)
        with_images = [row for row in history if "val/predictions/_type" in row]
        assert with_images and all("val/mIoU" in row for row in with_images)
        labels = config["_wandb"]["mask/class_labels"]
        assert all(entry["value"]["255"] == "ignore" for entry in labels.values())


def test_config_is_logged_once(run_folder: Path) -> None:
    _, _, config = read_run(next((run_folder / "wandb").glob("offline-run-*")))
    assert {"model", "data", "trainer", "subcommand"} <= set(config)
    assert not {"net", "aux_weight", "num_classes"} & set(config)  # the module's hyperparameters, logged again


def test_compare_counts_steps_and_reports_the_evaluation(run_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    main(["compare", str(run_folder), "--markdown", "--plots", str(tmp_path)])
    out = capsys.readouterr().out
    assert "| run | tinynet | folder | 8 |" in out
    assert "| run | validate | 8 |" in out
