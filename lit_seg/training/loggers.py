"""Weights & Biases logging that never prompts or hangs: online only with a configured API key."""

import netrc
import os
from urllib.parse import urlparse

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


class WandbLogger(_LightningWandbLogger):
    """Lightning's W&B logger with the mode chosen by :func:`wandb_mode` unless ``mode`` is given.

    Args:
        save_dir: where the run's files (and offline runs) are written.
        project: W&B project.
        name: run name.
        group: W&B group.
        tags: W&B tags.
        mode: "online", "offline" or "disabled"; None chooses as :func:`wandb_mode`.
    """

    def __init__(
        self,
        save_dir: str = ".",
        project: str = "lit_seg",
        name: str | None = None,
        group: str | None = None,
        tags: list[str] | None = None,
        mode: str | None = None,
    ) -> None:
        os.makedirs(save_dir, exist_ok=True)
        super().__init__(
            save_dir=save_dir, project=project, name=name, group=group, tags=tags, mode=mode or wandb_mode()
        )
