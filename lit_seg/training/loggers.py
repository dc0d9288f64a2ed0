"""The run's loggers: CSV, and Weights & Biases that never prompts or hangs (online only with a configured
API key). Both write under the run folder, which the CLI fills in where ``save_dir`` is None."""

import netrc
import os
from urllib.parse import urlparse

from lightning.pytorch.loggers import CSVLogger as _LightningCSVLogger
from lightning.pytorch.loggers import WandbLogger as _LightningWandbLogger


def has_wandb_api_key() -> bool:
    """True when ``WANDB_API_KEY`` is set or ``~/.netrc`` holds a key for the W&B server."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc().authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def wandb_mode() -> str:
    """``WANDB_MODE`` if set, else "online" with an API key and "offline" without one."""
    return os.environ.get("WANDB_MODE") or ("online" if has_wandb_api_key() else "offline")


class CSVLogger(_LightningCSVLogger):
    """Lightning's CSV logger writing ``<save_dir>/version_<n>/metrics.csv`` (no experiment-name folder).

    Args:
        save_dir: the run folder; None until the CLI sets it to ``trainer.default_root_dir``.
    """

    def __init__(self, save_dir: str | None = None) -> None:
        if save_dir is None:
            raise ValueError("CSVLogger needs a save_dir (the CLI sets it to trainer.default_root_dir)")
        super().__init__(save_dir=save_dir, name="")


class WandbLogger(_LightningWandbLogger):
    """Lightning's W&B logger with the mode chosen by :func:`wandb_mode` unless ``mode`` is given.

    Args:
        save_dir: where the run's files (and offline runs) are written; None until the CLI sets it to
            ``trainer.default_root_dir``.
        project: W&B project (the CLI derives it from the dataset where None).
        name: run name (the CLI derives it where None).
        group: W&B group (the CLI derives it from model and backbone where None).
        tags: W&B tags.
        mode: "online", "offline" or "disabled"; None chooses as :func:`wandb_mode`.
    """

    def __init__(
        self,
        save_dir: str | None = None,
        project: str | None = None,
        name: str | None = None,
        group: str | None = None,
        tags: list[str] | None = None,
        mode: str | None = None,
    ) -> None:
        if save_dir is None:
            raise ValueError("WandbLogger needs a save_dir (the CLI sets it to trainer.default_root_dir)")
        os.makedirs(save_dir, exist_ok=True)
        super().__init__(
            save_dir=save_dir, project=project, name=name, group=group, tags=tags, mode=mode or wandb_mode()
        )
