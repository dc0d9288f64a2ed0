"""The run's loggers: CSV, and Weights & Biases that never prompts, hangs or stops a run (online only with a
configured API key; offline when the server cannot be reached). Both write under the run folder, which the CLI
fills in where ``save_dir`` is None."""

import logging
import netrc
import os
import secrets
import string
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from lightning.pytorch.loggers import CSVLogger as _LightningCSVLogger
from lightning.pytorch.loggers import WandbLogger as _LightningWandbLogger
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only

log = logging.getLogger(__name__)

# The W&B run id of a fit, kept beside its checkpoints so that a resumed fit continues the same run.
RUN_ID_FILE = "wandb_run_id"


def wandb_server() -> str:
    """The W&B server's URL: ``WANDB_BASE_URL``, else W&B's default."""
    import wandb

    return os.environ.get("WANDB_BASE_URL") or wandb.Settings().base_url


def has_wandb_api_key() -> bool:
    """True when ``WANDB_API_KEY`` is set or ``~/.netrc`` holds a key for the W&B server."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(wandb_server()).hostname
    try:
        return netrc.netrc().authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def wandb_mode() -> str:
    """``WANDB_MODE`` if set, else "online" with an API key and "offline" without one."""
    return os.environ.get("WANDB_MODE") or ("online" if has_wandb_api_key() else "offline")


def logged_step(steps_done: int) -> int:
    """The step under which Lightning logs a validation after ``steps_done`` optimizer steps (and the
    training values of the last of them): that step's index, one less."""
    return steps_done - 1


def steps_done(logged: float) -> float:
    """The optimizer steps done when values were logged under step ``logged`` (see :func:`logged_step`)."""
    return logged + 1


def new_run_id() -> str:
    """A fresh W&B run id: 8 lowercase letters and digits, as W&B makes them."""
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))


def saved_run_id(checkpoint_dir: str | Path) -> str | None:
    """The W&B run id kept in ``checkpoint_dir`` by :func:`save_run_id`, or None where there is none."""
    path = Path(checkpoint_dir) / RUN_ID_FILE
    if not path.is_file():
        return None
    return path.read_text().strip() or None


def save_run_id(checkpoint_dir: str | Path, run_id: str) -> None:
    """Keeps ``run_id`` in ``checkpoint_dir``, beside the checkpoints of the run."""
    Path(checkpoint_dir).mkdir(parents=True, exist_ok=True)
    (Path(checkpoint_dir) / RUN_ID_FILE).write_text(run_id + "\n")


class CSVLogger(_LightningCSVLogger):
    """Lightning's CSV logger writing ``<save_dir>/version_<n>/metrics.csv`` (no experiment-name folder).

    Args:
        save_dir: the run folder; None until the CLI sets it to ``trainer.default_root_dir``.
    """

    def __init__(self, save_dir: str | None = None) -> None:
        if save_dir is None:
            raise ValueError("CSVLogger needs a save_dir (the CLI sets it to trainer.default_root_dir)")
        super().__init__(save_dir=save_dir, name="")


def check_server(url: str, timeout: float) -> None:
    """Returns when the server at ``url`` answers an HTTP request within ``timeout`` seconds, whatever
    its answer.

    Raises:
        OSError: the server cannot be reached, refuses the connection or does not answer in time.
    """
    try:
        urllib.request.urlopen(url, timeout=timeout).close()
    except urllib.error.HTTPError:
        pass  # an answer


class WandbLogger(_LightningWandbLogger):
    """Lightning's W&B logger with the mode chosen by :func:`wandb_mode` unless ``mode`` is given, that
    goes offline when the online run cannot start (a server that cannot be reached or does not answer
    within ``init_timeout`` seconds, a run that W&B cannot start in that time, a rejected key), and that
    finishes its run when the trainer is done.

    Args:
        save_dir: where the run's files (and offline runs, under ``<save_dir>/wandb``) are written; None
            until the CLI sets it to ``trainer.default_root_dir``.
        project: W&B project (the CLI derives it from the dataset where None).
        name: run name (the CLI derives it where None).
        group: W&B group (the CLI derives it from model and backbone where None).
        tags: W&B tags.
        entity: W&B entity (user or team); None for the key's default entity.
        id: run id; a run with this id is continued as ``resume`` says (the CLI keeps a fit's id with
            its checkpoints).
        resume: W&B's resume mode for a run of the same id ("allow" continues it if it exists).
        job_type: W&B job type ("train" for fit, "eval" for validate and test in the CLI).
        mode: "online", "offline" or "disabled"; None chooses as :func:`wandb_mode`.
        init_timeout: seconds the server may take to answer, and then the online run to start, before
            the run goes offline instead (W&B's own default is 90 s, and it then stops the program).
    """

    def __init__(
        self,
        save_dir: str | None = None,
        project: str | None = None,
        name: str | None = None,
        group: str | None = None,
        tags: list[str] | None = None,
        entity: str | None = None,
        id: str | None = None,
        resume: Literal["allow", "must", "never", "auto"] = "allow",
        job_type: str | None = None,
        mode: Literal["online", "offline", "disabled"] | None = None,
        init_timeout: float = 10.0,
    ) -> None:
        import wandb

        if save_dir is None:
            raise ValueError("WandbLogger needs a save_dir (the CLI sets it to trainer.default_root_dir)")
        os.makedirs(save_dir, exist_ok=True)
        # Ours, handed to wandb.init by Lightning on first use: setting its mode to "offline" after a
        # failed online start makes Lightning's next attempt an offline run. Quiet: no run summary when
        # the run finishes (the progress bars say where the run is and how to upload it).
        self.settings = wandb.Settings(mode=mode or wandb_mode(), init_timeout=init_timeout, quiet=True)
        super().__init__(
            save_dir=save_dir, project=project, name=name, id=id, group=group, tags=tags, entity=entity,
            resume=resume, job_type=job_type, settings=self.settings,
        )
        self._server_answered = False

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        """The W&B run, started on first use: online if it can be, else offline with one warning line.

        The server is asked first: W&B itself would wait for an unreachable one (login, then the run,
        then its error reports at exit). Once offline, W&B stays offline in this process
        (``WANDB_MODE``).
        """
        import wandb

        try:
            if self.settings.mode == "online" and not self._server_answered:
                check_server(wandb_server(), self.settings.init_timeout)
                self._server_answered = True
            return super().experiment
        except (OSError, wandb.errors.CommError, wandb.errors.AuthenticationError) as error:
            if self.settings.mode != "online":
                raise
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            folder = Path(self.save_dir, "wandb")
            log.warning(
                f"W&B: no online run within {self.settings.init_timeout:g} s ({reason}); logging offline to {folder} "
                f"(upload later with: wandb sync {folder})"
            )
            self.settings.mode = os.environ["WANDB_MODE"] = "offline"
            if self._server_answered:  # the failed online run holds its id in W&B's service until it stops
                wandb.teardown()
            return super().experiment

    def run_location(self) -> str | None:
        """Where the run's data goes: its URL online; offline, its folder and the command that uploads
        it; None when W&B is disabled."""
        if self.settings.mode == "disabled":
            return None
        run = self.experiment
        if self.settings.mode == "online":
            return run.url
        folder = Path(self.save_dir, "wandb")
        return f"{Path(run.dir).parent} (offline; upload with: wandb sync {folder})"

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """Finishes the run (as failed unless ``status`` is "success" or "finished"), so that the next
        fit, validate or test in the same process starts its own."""
        import wandb

        super().finalize(status)
        run = wandb.run
        if run is not None and run.id == self.version:
            run.finish(exit_code=0 if status in ("success", "finished") else 1)
