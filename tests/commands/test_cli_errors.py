"""Bad input gets a one-line error naming the culprit, not a traceback from inside torch."""

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning import Trainer
from PIL import Image

from lit_seg.commands.cli import run_cli
from lit_seg.data import FolderDataModule
from lit_seg.networks import create_model
from lit_seg.training.module import ClassCountMismatch, SegmentationModule
from tests.helpers.nets import TinyNet
from tests.helpers.tiny_runs import TINY_MODEL, tiny_fit_args


def error_of(capsys: pytest.CaptureFixture, args: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_info:
        run_cli(args)
    assert exit_info.value.code not in (0, None)
    return capsys.readouterr().err


def test_unknown_config_key(capsys: pytest.CaptureFixture, shapes_root: Path, tmp_path: Path) -> None:
    error = error_of(capsys, tiny_fit_args(shapes_root, tmp_path, "--model.no_such_option", "1"))
    assert "no_such_option" in error


def test_unknown_model_class(capsys: pytest.CaptureFixture, shapes_root: Path, tmp_path: Path) -> None:
    error = error_of(capsys, tiny_fit_args(shapes_root, tmp_path, "--model.net", "lit_seg.networks.NoSuchNet"))
    assert "NoSuchNet" in error


def test_unknown_registry_name_lists_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown model 'pspnet2'.*deeplabv3plus"):
        create_model("pspnet2", 21)


def test_class_count_mismatch(shapes_root: Path) -> None:
    data = FolderDataModule(str(shapes_root), crop_size=(32, 32), batch_size=4, num_workers=0)
    module = SegmentationModule(TinyNet(3), num_classes=data.num_classes, class_names=data.class_names)
    trainer = Trainer(fast_dev_run=1, logger=False, enable_progress_bar=False, enable_model_summary=False)
    with pytest.raises(ClassCountMismatch, match="outputs 3 classes but the data has 5"):
        trainer.fit(module, datamodule=data)


def test_class_weights_of_wrong_length() -> None:
    with pytest.raises(ValueError, match="class_weights has 2 entries, expected one per class \\(5\\)"):
        SegmentationModule(TinyNet, num_classes=5, class_weights=[1.0, 2.0])


@pytest.mark.parametrize("workers", [0, 1])
def test_label_out_of_range_names_value_and_file(
    capsys: pytest.CaptureFixture, shapes_root: Path, tmp_path: Path, workers: int
) -> None:
    root = tmp_path / "data"
    shutil.copytree(shapes_root, root)
    bad = root / "masks" / "train" / "00003.png"
    mask = np.array(Image.open(bad))
    mask[0, :4] = 9
    Image.fromarray(mask).save(bad)
    error = error_of(capsys, tiny_fit_args(root, tmp_path / "run", "--data.num_workers", str(workers), "--trainer.max_epochs", "1"))
    last_line = error.strip().splitlines()[-1]
    assert last_line.startswith("lit-seg: error: mask") and "label value(s) [9]" in last_line and str(bad) in last_line
    assert "Traceback (most recent call last)" not in error


def test_nan_loss_stops_with_step_and_keeps_last_good_checkpoint(
    capsys: pytest.CaptureFixture, shapes_root: Path, tmp_path: Path
) -> None:
    args = tiny_fit_args(
        shapes_root, tmp_path, "--model.net", "tests.helpers.nets.ExplodingNet", "--model.net.explode_at", "5",
        "--last_checkpoint.every_n_train_steps", "2", "--trainer.max_epochs", "3",
    )
    error = error_of(capsys, args)
    assert "training loss is nan at step 5" in error
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 4
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values() if v.is_floating_point())


def test_one_image_per_process_with_pooled_batch_norm(
    capsys: pytest.CaptureFixture, shapes_root: Path, tmp_path: Path
) -> None:
    args = tiny_fit_args(shapes_root, tmp_path, "--model.net", "lit_seg.networks.pspnet.PSPNet",
                         "--model.net.backbone", "resnet18", "--data.batch_size", "1", "--trainer.max_steps", "1")
    error = error_of(capsys, args)
    assert "with 1 image(s) per process" in error and "--trainer.sync_batchnorm true" in error
    assert "Traceback (most recent call last)" not in error


def test_missing_dataset_root_names_path(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    error = error_of(capsys, ["fit", "--config", str(TINY_MODEL), "--data", "lit_seg.data.FolderDataModule",
                              "--data.root", str(tmp_path / "nowhere"), "--trainer.default_root_dir", str(tmp_path)])
    assert str(tmp_path / "nowhere") in error


class _RemovesFile:
    """Pickles as a call of ``os.remove``: loading it unchecked would delete ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return os.remove, (str(self.path),)


def bad_checkpoint(kind: str, good: Path, folder: Path) -> Path:
    """A checkpoint file of ``kind``, made from the complete checkpoint ``good``."""
    path = folder / f"{kind}.ckpt"
    data = good.read_bytes()
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "corrupt":
        path.write_bytes(b"\x80\x02garbage" * 64)
    elif kind == "refused":
        torch.save({"state_dict": {}, "payload": _RemovesFile(folder / "sentinel")}, path)
    elif kind == "not_lightning":
        torch.save({"weights": torch.zeros(2)}, path)
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("empty", "is empty"),
        ("truncated", "cannot be read: it is truncated or corrupt"),
        ("corrupt", "is corrupt or not a PyTorch checkpoint"),
        ("refused", "is refused: it holds a pickled posix.remove, and unpickling it could run code"),
        ("not_lightning", "holds no state_dict"),
    ],
)
def test_unloadable_checkpoint_is_one_line(
    capsys: pytest.CaptureFixture, trained_run: Path, tmp_path: Path, kind: str, message: str
) -> None:
    (tmp_path / "sentinel").touch()
    checkpoint = bad_checkpoint(kind, trained_run / "checkpoints" / "last.ckpt", tmp_path)
    for subcommand in ("validate", "fit"):
        args = [subcommand, "--config", str(trained_run / "config.yaml"), "--ckpt_path", str(checkpoint)]
        error = error_of(capsys, [*args, "--trainer.default_root_dir", str(tmp_path / "run")])
        assert error.strip().splitlines()[-1].startswith(f"lit-seg: error: checkpoint {checkpoint} {message}")
        assert "Traceback" not in error and "weights_only" not in error
    assert (tmp_path / "sentinel").exists()  # the pickled call never ran


def test_checkpoint_of_another_class_count(
    capsys: pytest.CaptureFixture, trained_run: Path, shapes_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    shutil.copytree(shapes_root, root)
    with (root / "classes.txt").open("a") as classes:
        classes.write("star\nmoon\n")
    checkpoint = trained_run / "checkpoints" / "last.ckpt"
    error = error_of(capsys, ["validate", "--config", str(trained_run / "config.yaml"), "--ckpt_path", str(checkpoint),
                              "--data.root", str(root), "--trainer.default_root_dir", str(tmp_path / "run")])
    assert error.strip().splitlines()[-1] == (
        f"lit-seg: error: checkpoint {checkpoint} was trained for 5 classes, but the data has 7"
    )


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--model.net.width=16",
         r"does not fit the network: 9 tensor\(s\) differ in shape, e\.g\. net\.\S+ is \[8\] there and \[16\] here"),
        ("--model.net.aux=true",
         r"holds the weights of another network: 2 of this network's tensors are missing from it"),
    ],
)
def test_checkpoint_of_another_network(
    capsys: pytest.CaptureFixture, trained_run: Path, tmp_path: Path, option: str, message: str
) -> None:
    checkpoint = trained_run / "checkpoints" / "last.ckpt"
    error = error_of(capsys, ["validate", "--config", str(trained_run / "config.yaml"), "--ckpt_path", str(checkpoint),
                              option, "--trainer.default_root_dir", str(tmp_path / "run")])
    last_line = error.strip().splitlines()[-1]
    assert re.match(rf"lit-seg: error: checkpoint {re.escape(str(checkpoint))} {message}", last_line)


def test_repeated_class_names() -> None:
    with pytest.raises(ClassCountMismatch, match="class names must differ; repeated: a$"):
        SegmentationModule(TinyNet(5), num_classes=5, class_names=["a", "b", "a", "c", "d"])


def test_hub_weights_offline(capsys: pytest.CaptureFixture, shapes_root: Path, tmp_path: Path) -> None:
    args = tiny_fit_args(
        shapes_root, tmp_path, "--model.net", "pspnet", "--model.net.init_args.backbone", "resnet18",
        "--model.net.init_args.pretrained", "hub",
    )
    error = error_of(capsys, args)
    assert error.startswith("lit-seg: error: cannot download pretrained weights for resnet18: HF_HUB_OFFLINE is set")
    assert error.count("\n") == 1


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--last_checkpoint.every_n_train_steps", "0", "every_n_train_steps must be at least 1"),
        ("--model.lr_multipliers", "{neck: 10}", "lr_multipliers: no parameter is named ['neck']"),
        ("--model.frozen_batchnorm", "[net.head]", "frozen_batchnorm: no batch norm is named ['net.head']"),
    ],
)
def test_option_without_meaning(
    capsys: pytest.CaptureFixture, shapes_root: Path, tmp_path: Path, option: str, value: str, message: str
) -> None:
    error = error_of(capsys, tiny_fit_args(shapes_root, tmp_path, option, value, "--trainer.max_steps", "1"))
    assert error.startswith("lit-seg: error: ") and message in error and error.count("\n") == 1
