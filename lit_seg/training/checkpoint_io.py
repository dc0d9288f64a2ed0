"""Checkpoint files that are complete or absent (written beside their destination, synced, then renamed
over it), and read without executing pickled code, with one clear line for a file that cannot be."""

import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

# A file being written is named ``<destination><TEMPORARY_SUFFIX>``, in the destination's folder.
TEMPORARY_SUFFIX = ".tmp"

def temporary_path(path: Path) -> Path:
    """Where ``path`` is written before it is renamed into place."""
    return path.with_name(path.name + TEMPORARY_SUFFIX)


def _sync_folder(folder: Path) -> None:
    """Makes the renames in ``folder`` durable (POSIX: a rename is on disk once its folder is synced)."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def save_atomically(checkpoint: dict[str, Any], path: Path) -> None:
    """Saves ``checkpoint`` to ``path`` so that ``path`` is at every instant absent, the old file, or the new
    complete one: written to a temporary file beside it, synced, then renamed over it. The temporary file is
    removed on any failure (a full disk, Ctrl-C); only a kill leaves it, and the next save overwrites it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path(path)
    try:
        with open(temporary, "wb") as file:
            torch.save(checkpoint, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        if error.filename is None:  # torch's writer loses the file name of a full disk
            raise OSError(error.errno, error.strerror, str(path)) from error
        raise
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def link_atomically(link: Path, target: Path) -> None:
    """Points the symbolic link ``link`` to ``target`` (relative to the link's folder) by renaming a new link
    over it, so that ``link`` is at every instant the old link or the new one."""
    temporary = temporary_path(link)
    temporary.unlink(missing_ok=True)  # left by a kill
    try:
        os.symlink(os.path.relpath(target, link.parent), temporary)
        os.replace(temporary, link)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _sync_folder(link.parent)


class CheckpointError(ValueError):
    """A checkpoint file that cannot be loaded: empty, truncated, corrupt, refused, or not of a run."""


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint at ``path`` as Lightning loads it (``weights_only``), its tensors left on disk; fails
    in one line where torch's traceback would come: the file empty, truncated or corrupt, or a pickle that
    would import code.

    Raises:
        CheckpointError: naming ``path`` and what is wrong with it.
    """
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as error:
        blocked = re.search(r"GLOBAL (\S+)", str(error))
        if blocked is None:
            raise CheckpointError(f"checkpoint {path} is corrupt or not a PyTorch checkpoint") from None
        raise CheckpointError(
            f"checkpoint {path} is refused: it holds a pickled {blocked[1]}, and unpickling it could run code; "
            "only checkpoints of tensors and plain values are loaded"
        ) from None
    except (RuntimeError, OSError, EOFError):  # torch.load of a file cut anywhere (measured every 1 kB)
        raise CheckpointError(f"checkpoint {path} cannot be read: it is truncated or corrupt") from None
    state = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} holds no state_dict: it is not a checkpoint of a lit-seg run")
    return checkpoint


def checkpoint_step(path: Path) -> int | None:
    """The global step of the training checkpoint at ``path``, or None where it cannot be resumed from
    (truncated, empty, unreadable, or without training state). Reads only the pickled structure: the
    tensors stay on disk (``mmap``)."""
    try:
        step = read_checkpoint(path).get("global_step")
    except (CheckpointError, OSError):  # OSError: a file gone, or a dangling link
        return None
    return step if isinstance(step, int) else None


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint plugin (``trainer.plugins``) saving with :func:`save_atomically`.

    Lightning's own ``TorchCheckpointIO`` writes through fsspec, whose temporary file goes to ``$TMPDIR``
    and is copied, not renamed, where that is another filesystem: a full disk then leaves a truncated
    checkpoint under its final name, and a kill leaves a full-size file in ``$TMPDIR``. Loading and
    removing are Lightning's.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError(f"AtomicCheckpointIO takes no storage_options, got {storage_options!r}")
        save_atomically(checkpoint, Path(path))
