"""A run's checkpoints: the best by a metric, and the "latest", kept safe from kills and non-finite
training; and where a run resumes."""

import fnmatch
import os
import re
from pathlib import Path
from typing import Any, Literal

import torch
from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import Checkpoint, ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info

from lit_seg.data.options import OptionError
from lit_seg.training.checkpoint_io import TEMPORARY_SUFFIX, checkpoint_step, link_atomically

LAST = "last.ckpt"


def checkpoint_folder(root: str | Path) -> str:
    """Where a run whose ``trainer.default_root_dir`` is ``root`` keeps its checkpoints (the CLI links both
    checkpoint callbacks' ``dirpath`` to it)."""
    return str(Path(root) / "checkpoints")
_LATEST = re.compile(r"latest-epoch(\d+)-step(\d+)\.ckpt")


def _latest_name(epoch: int, step: int) -> str:
    return f"latest-epoch{epoch}-step{step}.ckpt"


def _latest_step(path: Path) -> int | None:
    """The step in a "latest" file's name; None for any other file."""
    match = _LATEST.fullmatch(path.name)
    return int(match[2]) if match else None


class NonFiniteError(FloatingPointError):
    """Training produced a NaN or infinite loss or weights.

    Args:
        problem: what is not finite, and at which step.

    Attributes:
        kept: which checkpoint holds the newest finite state, filled in by :class:`LatestCheckpoint`.
    """

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.kept: str | None = None

    def __str__(self) -> str:
        return self.problem if self.kept is None else f"{self.problem}; {self.kept}"


class NoCompleteCheckpoint(FileNotFoundError):
    """The run's checkpoint folder holds checkpoint files, but none can be resumed from."""


class BestCheckpoint(ModelCheckpoint):
    """Lightning's :class:`ModelCheckpoint` with the few options a run sets: the ``save_top_k`` best
    checkpoints by ``monitor``, named ``best-epoch{epoch}-step{step}.ckpt``; a resumed run that saves the
    same step replaces the file (no ``-v1`` copies).

    Args:
        dirpath: the folder (the CLI links it to ``<trainer.default_root_dir>/checkpoints``).
        monitor: the logged metric that ranks checkpoints.
        mode: whether a higher ("max") or lower ("min") value is better.
        save_top_k: how many of the best to keep.
        filename: the file name pattern (without ``.ckpt``).
    """

    def __init__(
        self,
        dirpath: str | None = None,
        monitor: str = "val/mIoU",
        mode: Literal["min", "max"] = "max",
        save_top_k: int = 1,
        filename: str = "best-epoch{epoch}-step{step}",
    ) -> None:
        super().__init__(
            dirpath=dirpath, filename=filename, monitor=monitor, mode=mode, save_top_k=save_top_k,
            auto_insert_metric_name=False, enable_version_counter=False,
        )


class LatestCheckpoint(Checkpoint):
    """Keeps the newest training state of a run in ``latest-epoch{E}-step{S}.ckpt``, with ``last.ckpt`` linked to it.

    Saves every ``every_n_train_steps`` optimizer steps (after each validation and training epoch where
    that is None), and at the end of fit unless that step is saved; nothing under ``fast_dev_run``. A
    validation right after a save changes the state (metrics, the best checkpoints): the step is saved
    again, or a resumed run would skip that validation (Lightning takes a resumed state as validated)
    and its top-k callbacks would not know the bests it wrote.

    Safe from a kill at any instant: with :class:`~lit_seg.training.checkpoint_io.AtomicCheckpointIO` (the
    CLI's ``trainer.plugins``) a checkpoint file is complete or absent, the link is renamed over the old
    one, and the previous state is deleted only after that. Safe from non-finite training: the weights
    are checked before each save (:class:`NonFiniteError`), and the previous state is kept until a
    training batch has run on the new one with a finite loss (weights of 1e30 are finite, the next loss
    is not); should that batch fail, ``last.ckpt`` goes back to the previous state and the new file is
    deleted. Once a new state is confirmed, stale files are deleted: temporary files, and in a resumed
    run every other "latest" file and the files of the run's top-k ModelCheckpoints written after the
    resumed state (by a killed session) that are no longer among their top k. A new run leaves files it
    did not write alone.

    Saves are collective (every process calls them); only global rank 0 touches files and links.

    Args:
        dirpath: the run's checkpoint folder (the CLI links ``<trainer.default_root_dir>/checkpoints``).
        every_n_train_steps: save every that many optimizer steps; None saves after each validation and
            at each training epoch's end.
    """

    def __init__(self, dirpath: str, every_n_train_steps: int | None = None) -> None:
        if every_n_train_steps is not None and every_n_train_steps < 1:
            raise OptionError(f"every_n_train_steps must be at least 1, or None; got {every_n_train_steps}")
        self.dirpath = dirpath
        self.every_n_train_steps = every_n_train_steps
        self.saved_step = 0  # the newest state on disk
        self.pending: Path | None = None  # saved, but no training batch has run on it yet
        self.written: set[Path] = set()  # the "latest" files of this session
        self.resumed_from: Path | None = None
        self.resumed_step = 0
        self.batch_epoch = 0  # the epoch of the last training batch, which names the file

    @property
    def folder(self) -> Path:
        """The run's checkpoint folder."""
        return Path(self.dirpath)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.saved_step = trainer.global_step  # a resumed state is on disk; step 0 needs no saving
        self.written = set()
        self.resumed_from = Path(trainer.ckpt_path).resolve() if trainer.ckpt_path else None
        self.resumed_step = trainer.global_step
        self.batch_epoch = trainer.current_epoch
        # A resumed "latest" state is confirmed, like a new one, by the first training batch.
        resumed_latest = not trainer.fast_dev_run and self.resumed_from in self._latest_files()
        self.pending = self.resumed_from if resumed_latest else None

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self.batch_epoch = trainer.current_epoch
        if self.pending is not None:  # this batch ran on the pending state, and its loss was finite
            self._confirm(trainer)
        if self.every_n_train_steps is not None and trainer.global_step % self.every_n_train_steps == 0:
            self._save(trainer, pl_module)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.every_n_train_steps is None or trainer.global_step == self.saved_step:
            self._save(trainer, pl_module, again=True)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.every_n_train_steps is None:
            self._save(trainer, pl_module)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._save(trainer, pl_module)
        if self.pending is not None:  # no batch follows: the final weights are known finite
            self._confirm(trainer)

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if not isinstance(exception, NonFiniteError) or not trainer.is_global_zero:
            return
        if self.pending is not None:  # the first batch on the pending state failed: go back to the one before
            step = _latest_step(self.pending)
            earlier = [path for path in self._history() if _latest_step(path) < step]
            if earlier:
                link_atomically(self.folder / LAST, max(earlier, key=_latest_step))
                self.pending.unlink()
        exception.kept = self._kept()

    def _save(self, trainer: Trainer, pl_module: LightningModule, again: bool = False) -> None:
        """Saves the current step, unless it is saved already (``again``: even so)."""
        fitting = trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking
        if not fitting or trainer.fast_dev_run or trainer.global_step == 0:
            return
        if trainer.global_step == self.saved_step and not again:
            return
        step = trainer.global_step
        tensors = {name: value for name, value in pl_module.state_dict().items() if value.is_floating_point()}
        finite = torch.stack([value.isfinite().all() for value in tensors.values()]).tolist() if tensors else []
        if not trainer.strategy.reduce_boolean_decision(all(finite), all=True):
            names = [name for name, ok in zip(tensors, finite) if not ok]
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            raise NonFiniteError(f"weights are not finite after step {step} ({shown or 'on another process'})")
        # At the end of a fit stopped by max_steps mid-epoch, Lightning has already counted the next epoch:
        # the epoch of the last batch names the file, as it names the best checkpoints.
        path = self.folder / _latest_name(self.batch_epoch, step)
        trainer.save_checkpoint(path, weights_only=False)
        if trainer.is_global_zero and (self.folder / LAST).resolve() != path.resolve():
            link_atomically(self.folder / LAST, path)
        trainer.strategy.barrier("LatestCheckpoint")
        self.saved_step = step
        self.pending = path.resolve()
        self.written.add(self.pending)

    def _confirm(self, trainer: Trainer) -> None:
        """The pending state is known good: links ``last.ckpt`` to it (a resume may have found the link
        dangling) and deletes the files it makes stale."""
        confirmed, self.pending = self.pending, None
        if not trainer.is_global_zero:
            return
        if (self.folder / LAST).resolve() != confirmed:
            link_atomically(self.folder / LAST, confirmed)
        stale = [path for path in self._history() if path != confirmed]
        stale += self.folder.glob(f"*{TEMPORARY_SUFFIX}")
        if self.resumed_from is not None:
            stale += self._discarded_top_k(trainer)
        for path in stale:
            path.unlink(missing_ok=True)

    def _latest_files(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return [path.resolve() for path in self.folder.iterdir() if _latest_step(path) is not None]

    def _history(self) -> list[Path]:
        """The "latest" files of this run: all in the folder where it resumed, else those it wrote."""
        files = self._latest_files()
        return files if self.resumed_from is not None else [path for path in files if path in self.written]

    def _discarded_top_k(self, trainer: Trainer) -> list[Path]:
        """Files of the top-k ModelCheckpoints in this folder that are not among their top k and hold a later
        step than the resumed state (or none): ModelCheckpoint restores its top k from the resumed checkpoint
        and never deletes a file it does not know, such as the bests of a killed session's last steps. A best
        of an earlier step is kept: it may postdate the resumed state (a validation right after the save)."""
        here = [
            callback for callback in trainer.checkpoint_callbacks
            if isinstance(callback, ModelCheckpoint) and callback.dirpath is not None
            and Path(callback.dirpath).resolve() == self.folder.resolve()
        ]
        kept = {
            Path(path).resolve() for callback in here
            for path in [*callback.best_k_models, callback.best_model_path, callback.last_model_path] if path
        }
        patterns = [
            re.sub(r"\{[^}]*\}", "*", callback.filename or "*") + "*" + callback.FILE_EXTENSION
            for callback in here if callback.monitor is not None and callback.save_top_k >= 0
        ]
        unknown = [
            path for path in self.folder.iterdir()
            if any(fnmatch.fnmatch(path.name, pattern) for pattern in patterns)
            and path.name != LAST and _latest_step(path) is None and path.resolve() not in kept
        ]
        steps = {path: checkpoint_step(path) for path in unknown}  # None: incomplete
        return [path for path, step in steps.items() if step is None or step > self.resumed_step]

    def _kept(self) -> str:
        """Which state ``last.ckpt`` holds, for the message of a :class:`NonFiniteError`."""
        target = (self.folder / LAST).resolve()
        step = _latest_step(target) if target.exists() else None
        if step is None:
            return "no checkpoint holds an earlier state"
        if target == self.pending:
            return f"{LAST} holds step {step} ({target.name}), the state that gave it; no earlier one is kept"
        return f"{LAST} holds step {step} ({target.name}), the newest state with a finite loss and finite weights"


def resume_checkpoint(dirpath: str | Path) -> str | None:
    """The checkpoint that ``--ckpt_path last`` resumes a run from, said in one line.

    That is the newest complete (loadable) "latest" file of the run, normally the target of
    ``last.ckpt``; a missing, dangling, incomplete or older ``last.ckpt`` is passed over. Without one,
    the newest complete checkpoint of any name (a best-by-metric one). None where the folder holds no
    checkpoint: a first launch starts from scratch.

    Args:
        dirpath: the run's checkpoint folder.

    Raises:
        NoCompleteCheckpoint: the folder holds checkpoint files but none is complete.
    """
    folder = Path(dirpath)
    files = sorted(folder.glob("*.ckpt")) if folder.is_dir() else []
    if not files:
        rank_zero_info(f"--ckpt_path last: no checkpoint in {folder}, training starts from scratch")
        return None
    steps = {path: checkpoint_step(path) for path in {file.resolve() for file in files if file.exists()}}
    complete = {path: step for path, step in steps.items() if step is not None}
    if not complete:
        names = ", ".join(file.name for file in files)
        raise NoCompleteCheckpoint(
            f"--ckpt_path last: no checkpoint in {folder} is complete ({names}); give --ckpt_path a file, "
            "or move the folder away to start anew"
        )
    last = folder / LAST
    target = last.resolve() if last.exists() else None
    latest = [path for path in complete if path == target or _latest_step(path) is not None]
    chosen = max(latest or complete, key=lambda path: (path.stat().st_mtime_ns, complete[path]))
    resumed = f"{chosen} (step {complete[chosen]})"
    if chosen == target:
        rank_zero_info(f"--ckpt_path last: resuming from {resumed}")
        return str(chosen)
    if last.is_symlink() and target is None:
        why = f"is a dangling link (to {os.readlink(last)})"
    elif target is None:
        why = "is missing"
    elif target not in complete:
        why = "is incomplete"
    else:
        why = f"holds an older checkpoint ({target.name})"
    rank_zero_info(f"--ckpt_path last: {LAST} {why}; resuming from the newest complete checkpoint, {resumed}")
    return str(chosen)
