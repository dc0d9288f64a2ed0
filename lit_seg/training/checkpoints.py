"""The "latest" checkpoint, which always ends a fit with the final state."""

from lightning import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint


class LatestCheckpoint(ModelCheckpoint):
    """A :class:`ModelCheckpoint` that also saves when fit ends.

    Lightning's own end-of-fit step links ``last.ckpt`` to the newest periodic save, which is older
    than the final state when ``max_steps`` is not a multiple of ``every_n_train_steps`` (steps
    trained, then lost); and it writes ``last.ckpt`` even under ``fast_dev_run``. Here the final
    state is saved unless that step is saved already or saving is off (``fast_dev_run``, sanity check).
    """

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._should_skip_saving_checkpoint(trainer):
            return
        candidates = self._monitor_candidates(trainer)
        self._save_topk_checkpoint(trainer, candidates)
        self._save_last_checkpoint(trainer, candidates)
