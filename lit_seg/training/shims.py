"""The one place where lit_seg depends on behaviour that Lightning keeps private.

Each function says what it reproduces and why no public API does it; tests/training/test_shims.py
checks it against the private original of the pinned Lightning version.
"""

from lightning import Trainer


def logs_this_step(trainer: Trainer) -> bool:
    """Whether values logged in the current training step reach the loggers.

    Lightning's rule (``LoggerConnector.should_update_logs``, private): every ``log_every_n_steps``
    optimizer steps, counting the step being taken, and on the step before the run stops; never with
    ``log_every_n_steps=0`` (logging off, as in ``barebones``). Skipping
    ``self.log`` on other steps saves ~1 ms of CPU per step, a few % of a small model's step.
    """
    if trainer.log_every_n_steps == 0:
        return False
    return (trainer.global_step + 1) % trainer.log_every_n_steps == 0 or trainer.should_stop or bool(trainer.fast_dev_run)
