"""Checkpoints survive a kill at any instant, a resumed run keeps one "latest" and the top k, and
``--ckpt_path last`` resumes from the newest complete checkpoint, saying which in one line."""

import builtins
import errno
import logging
import os
import shutil
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import pytest
import torch
from lightning import Callback, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader

from lit_seg.commands.cli import run_cli
from lit_seg.training.checkpoint_io import AtomicCheckpointIO, checkpoint_step, save_atomically
from lit_seg.training.checkpoints import LAST, LatestCheckpoint, NoCompleteCheckpoint, resume_checkpoint
from lit_seg.training.module import SegmentationModule
from tests.helpers.arrays import ListDataset
from tests.helpers.nets import TinyNet
from tests.helpers.tiny_runs import tiny_fit_args

VALIDATE_EVERY = 2  # steps; 8 images in batches of 2 make 4 steps per epoch


def fit(
    folder: Path, max_steps: int, ckpt_path: str | None = None, every: int = 1, callbacks: tuple[Callback, ...] = (),
    **trainer_options: object,
) -> Trainer:
    """Trains TinyNet on 8 random 8x8 images with the CLI's two checkpoint callbacks in ``folder`` (the best
    by val/mIoU, validated every 2 steps, and "latest" every ``every`` steps) and AtomicCheckpointIO."""
    torch.manual_seed(0)
    images = [torch.randn(3, 8, 8) for _ in range(8)]
    masks = [torch.randint(0, 3, (8, 8)) for _ in range(8)]
    best = ModelCheckpoint(
        dirpath=folder, monitor="val/mIoU", mode="max", filename="best-epoch{epoch}-step{step}",
        auto_insert_metric_name=False, enable_version_counter=False,
    )
    trainer = Trainer(
        max_steps=max_steps, callbacks=[best, LatestCheckpoint(str(folder), every), *callbacks],
        plugins=[AtomicCheckpointIO()], val_check_interval=VALIDATE_EVERY, num_sanity_val_steps=0, logger=False,
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", **trainer_options,
    )
    train, val = ListDataset(images, masks), ListDataset(images[:2], masks[:2])
    module = SegmentationModule(TinyNet(3), num_classes=3)
    trainer.fit(module, DataLoader(train, batch_size=2), DataLoader(val, batch_size=2), ckpt_path=ckpt_path)
    return trainer


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny tensors: a second intra-op thread only adds waiting (a fit here takes 0.3 s instead of 2.5 s
    on a busy 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def assert_tidy(folder: Path, trainer: Trainer) -> None:
    """The folder holds one "latest" file, of the trainer's final step, with ``last.ckpt`` linked to it,
    at most k best files, and nothing else (no temporary file)."""
    latest = [path.name for path in folder.glob("latest-*.ckpt")]
    best = [path.name for path in folder.glob("best-*.ckpt")]
    assert sorted(path.name for path in folder.iterdir()) == sorted([LAST, *latest, *best])
    assert len(latest) == 1 and os.readlink(folder / LAST) == latest[0]
    assert checkpoint_step(folder / LAST) == trainer.global_step
    assert len(best) <= trainer.checkpoint_callback.save_top_k


def test_failed_save_keeps_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    class FullDisk:  # pickling it fails as a full disk would, after part of the file is written
        def __reduce__(self) -> tuple:
            raise OSError(errno.ENOSPC, "No space left on device")

    path = tmp_path / "latest.ckpt"
    save_atomically({"state_dict": {}, "global_step": 1, "weights": torch.zeros(1000)}, path)
    with pytest.raises(OSError, match="No space left"):
        save_atomically({"state_dict": {}, "global_step": 2, "weights": torch.ones(1000), "tail": FullDisk()}, path)
    assert checkpoint_step(path) == 1 and [file.name for file in tmp_path.iterdir()] == [path.name]


def test_truncated_checkpoints_are_incomplete(tmp_path: Path) -> None:
    path = tmp_path / "full.ckpt"
    save_atomically({"state_dict": {}, "global_step": 3, "weights": torch.zeros(10_000)}, path)
    data = path.read_bytes()
    assert checkpoint_step(path) == 3
    for size in (0, 100, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:size])
        assert checkpoint_step(path) is None, size


# Filesystem operations that the kill test counts, besides the second write into a file opened for writing
# (a part-written file); a kill just before any of them, in any save, is tested.
OPERATIONS = ("fsync", "replace", "symlink", "unlink", "remove")
# Those of the session that resumes from step 1 and ends at step 2: "latest" at step 2 (write, sync,
# rename, sync folder: 4 counted; link: drop a stale temporary link, symlink, rename, sync: 4), the best
# after the validation at step 2 (4), "latest" saved again after that validation (4), and the deletion
# of step 1 at the end (1).
OPERATIONS_TO_STEP_2 = 17


class PartWritten:
    """A file open for writing whose second write is a counted operation: ``made()`` is called before it."""

    def __init__(self, file: BinaryIO, made: Callable[[], None]) -> None:
        self.file, self.made, self.writes = file, made, 0

    def write(self, data: bytes) -> int:
        self.writes += 1
        if self.writes == 2:
            self.made()
        return self.file.write(data)

    def __getattr__(self, name: str) -> object:
        return getattr(self.file, name)

    def __enter__(self) -> "PartWritten":
        return self

    def __exit__(self, *exception: object) -> None:
        self.file.close()


def fit_in_killed_process(folder: Path, kill_at: int, **fit_options: object) -> int:
    """Runs :func:`fit` in a forked process that SIGKILLs itself just before its ``kill_at``-th filesystem
    operation; returns how many it made where it was not killed (``kill_at=0``), else -1."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its counted operations end with a kill, and it never returns to pytest
        code = 1
        try:
            torch.set_num_threads(1)
            made = 0

            def operation_made() -> None:
                nonlocal made
                made += 1
                if made == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)

            def counted(function: Callable) -> Callable:
                def run(*args: object, **kwargs: object) -> object:
                    operation_made()
                    return function(*args, **kwargs)
                return run

            def counted_open(file: object, mode: str = "r", *args: object, **kwargs: object) -> object:
                opened = real_open(file, mode, *args, **kwargs)
                return PartWritten(opened, operation_made) if "w" in mode else opened

            for name in OPERATIONS:
                setattr(os, name, counted(getattr(os, name)))
            real_open, builtins.open = builtins.open, counted_open
            logging.disable(logging.CRITICAL)
            fit(folder, **fit_options)
            os.write(write, str(made).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        made = pipe.read()
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
        return -1
    assert os.WEXITSTATUS(status) == 0, "the child process failed"
    return int(made)


@pytest.fixture(scope="module")
def run_at_step_1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run's checkpoint folder after one step: ``latest-epoch0-step1.ckpt`` and ``last.ckpt``."""
    folder = tmp_path_factory.mktemp("run") / "checkpoints"
    fit(folder, max_steps=1)
    return folder


def test_resumed_session_makes_the_counted_operations(run_at_step_1: Path, tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    shutil.copytree(run_at_step_1, folder, symlinks=True)
    made = fit_in_killed_process(folder, 0, max_steps=2, ckpt_path=resume_checkpoint(folder))
    assert made == OPERATIONS_TO_STEP_2


@pytest.mark.parametrize("kill_at", range(1, OPERATIONS_TO_STEP_2 + 1))
def test_kill_during_save_resumes_from_newest_complete(run_at_step_1: Path, tmp_path: Path, kill_at: int) -> None:
    folder = tmp_path / "checkpoints"
    shutil.copytree(run_at_step_1, folder, symlinks=True)
    assert fit_in_killed_process(folder, kill_at, max_steps=2, ckpt_path=resume_checkpoint(folder)) == -1
    assert checkpoint_step(folder / LAST) is not None  # complete, at every instant
    newest = max(step for path in folder.glob("latest-*.ckpt") if (step := checkpoint_step(path)) is not None)
    resumed = resume_checkpoint(folder)
    assert checkpoint_step(Path(resumed)) == newest
    trainer = fit(folder, max_steps=3, ckpt_path=resumed)
    assert trainer.global_step == 3
    assert_tidy(folder, trainer)


def test_dangling_last_link_resumes_from_newest_latest(
    shapes_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The issue's reproduction: a finished run whose last.ckpt points to a deleted file."""
    every = ("--last_checkpoint.every_n_train_steps", "2")
    run_cli(tiny_fit_args(shapes_root, tmp_path, "--trainer.max_steps", "4", *every))
    folder = tmp_path / "checkpoints"
    (folder / LAST).unlink()
    (folder / LAST).symlink_to("latest-epoch0-step2.ckpt")
    with caplog.at_level(logging.INFO):
        cli = run_cli(tiny_fit_args(shapes_root, tmp_path, "--trainer.max_steps", "6", "--ckpt_path", "last", *every))
    said = [record.message for record in caplog.records if "--ckpt_path last" in record.message]
    assert said == [
        f"--ckpt_path last: last.ckpt is a dangling link (to latest-epoch0-step2.ckpt); resuming from the newest "
        f"complete checkpoint, {folder.resolve() / 'latest-epoch0-step4.ckpt'} (step 4)"
    ]
    assert isinstance(cli.trainer.strategy.checkpoint_io, AtomicCheckpointIO)
    assert cli.trainer.global_step == 6 and torch.load(folder / LAST, weights_only=True)["global_step"] == 6
    assert_tidy(folder, cli.trainer)


def test_first_launch_starts_from_scratch_with_one_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        assert resume_checkpoint(tmp_path / "checkpoints") is None
    assert [record.message for record in caplog.records] == [
        f"--ckpt_path last: no checkpoint in {tmp_path / 'checkpoints'}, training starts from scratch"
    ]


def test_only_incomplete_checkpoints_fail_loudly(
    capsys: pytest.CaptureFixture, shapes_root: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    (folder / "latest-epoch0-step4.ckpt").write_bytes(b"PK\x03\x04 cut short")
    (folder / LAST).symlink_to("latest-epoch0-step2.ckpt")
    with pytest.raises(SystemExit) as exit_info:
        run_cli(tiny_fit_args(shapes_root, tmp_path, "--ckpt_path", "last"))
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == (
        f"lit-seg: error: --ckpt_path last: no checkpoint in {folder} is complete (last.ckpt, "
        "latest-epoch0-step4.ckpt); give --ckpt_path a file, or move the folder away to start anew\n"
    )
    with pytest.raises(NoCompleteCheckpoint):
        resume_checkpoint(folder)


def test_resumed_run_deletes_what_a_killed_session_left(tmp_path: Path) -> None:
    """A killed session's later "latest" and best files, unknown to the resumed top k, and its temporary
    files are deleted once the resumed run has confirmed a state; its earlier best is kept."""
    folder = tmp_path / "checkpoints"
    fit(folder, max_steps=2, every=2)  # latest and best at step 2
    state = torch.load(folder / "latest-epoch0-step2.ckpt", weights_only=True)
    for name in ("latest-epoch1-step6.ckpt", "best-epoch1-step6.ckpt"):
        save_atomically({**state, "global_step": 6}, folder / name)
    (folder / "best-epoch1-step7.ckpt.tmp").write_bytes(b"killed while writing")
    trainer = fit(folder, max_steps=3, every=2, ckpt_path=str(folder / "latest-epoch0-step2.ckpt"))
    assert_tidy(folder, trainer)
    assert sorted(path.name for path in folder.glob("best-*")) == ["best-epoch0-step2.ckpt"]


def test_new_run_leaves_files_it_did_not_write(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    fit(folder, max_steps=2, every=2)
    (folder / "latest-epoch0-step2.ckpt").rename(folder / "latest-epoch9-step99.ckpt")  # another run's
    fit(folder, max_steps=3, every=2)
    assert sorted(path.name.rsplit("-", 1)[1] for path in folder.glob("latest-*")) == ["step3.ckpt", "step99.ckpt"]


def test_nothing_is_written_under_fast_dev_run(tmp_path: Path) -> None:
    fit(tmp_path / "checkpoints", max_steps=3, fast_dev_run=2)
    assert not (tmp_path / "checkpoints").exists()


def test_two_processes_end_with_last_at_the_final_step(tmp_path: Path) -> None:
    """DDP (ddp_fork, 2 CPU processes): collective saves every 2 steps, rank 0 links; 5 steps end with the
    final state in last.ckpt."""
    folder = tmp_path / "checkpoints"
    fit(folder, max_steps=5, every=2, strategy="ddp_fork", devices=2)
    assert checkpoint_step(folder / LAST) == 5
    assert [path.name for path in folder.glob("latest-*")] == [os.readlink(folder / LAST)]
