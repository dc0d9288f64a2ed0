"""The W&B logger goes offline, with one warning, when its online run cannot start; run ids kept with checkpoints."""

import http.server
import logging
import socket
import threading
from pathlib import Path
from typing import Any

import pytest
import wandb

from lit_seg.training import loggers
from lit_seg.training.loggers import (
    WandbLogger,
    check_server,
    logged_step,
    new_run_id,
    save_run_id,
    saved_run_id,
    steps_done,
)


class FakeRun:
    """What Lightning's W&B logger uses of a started run."""

    def __init__(self, mode: str, run_id: str) -> None:
        self.mode, self.id, self.url = mode, run_id, None

    def define_metric(self, *args: Any, **kwargs: Any) -> None:
        pass


@pytest.fixture
def starts(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """``wandb.init`` that fails online (as with an unreachable server) and starts offline; each call's
    (mode, id) is recorded."""
    calls = []

    def init(**options: Any) -> FakeRun:
        mode = options["settings"].mode
        calls.append((mode, options["id"]))
        if mode == "online":
            raise wandb.errors.CommError("Timed out while retrying: connection refused\nConsider increasing init_timeout")
        return FakeRun(mode, options["id"])

    monkeypatch.setattr(wandb, "init", init)
    monkeypatch.setattr(wandb, "teardown", lambda: calls.append(("teardown", "")))
    monkeypatch.setattr(wandb, "run", None)
    monkeypatch.delenv("WANDB_MODE")  # restored after the test: going offline sets it
    return calls


@pytest.mark.parametrize("answered", [False, True], ids=["server does not answer", "run does not start"])
def test_no_online_run_gives_one_warning_and_an_offline_run(
    answered: bool, starts: list[tuple[str, str]], tmp_path: Path, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def check(url: str, timeout: float) -> None:
        assert (url, timeout) == ("http://127.0.0.1:9", 3)
        if not answered:
            raise TimeoutError("timed out")

    monkeypatch.setattr(loggers, "check_server", check)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    logger = WandbLogger(save_dir=str(tmp_path), project="p", id="abc12345", mode="online", init_timeout=3)
    with caplog.at_level(logging.WARNING):
        run = logger.experiment
    # After a failed online start W&B's service is stopped: it would refuse the run id to the offline run.
    assert starts == [("online", "abc12345"), ("teardown", "")] * answered + [("offline", "abc12345")]
    assert run.mode == "offline" and logger.experiment is run
    [warning] = [record.getMessage() for record in caplog.records]
    reason = "Timed out while retrying: connection refused" if answered else "timed out"
    assert f"no online run within 3 s ({reason})" in warning
    assert f"wandb sync {tmp_path / 'wandb'}" in warning and "\n" not in warning


def test_check_server_against_local_sockets() -> None:
    with socket.socket() as refusing:
        refusing.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        with pytest.raises(ConnectionRefusedError):
            try:
                check_server(f"http://127.0.0.1:{refusing.getsockname()[1]}", timeout=5)
            except OSError as error:  # urllib wraps it
                raise error.reason if hasattr(error, "reason") else error
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts into the backlog, never answers
        with pytest.raises(OSError, match="timed out"):
            check_server(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.5)

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_error(404)

        def log_message(self, *args: Any) -> None:
            pass

    with http.server.HTTPServer(("127.0.0.1", 0), NotFound) as server:
        threading.Thread(target=server.handle_request, daemon=True).start()
        check_server(f"http://127.0.0.1:{server.server_port}", timeout=5)  # any answer will do


def test_an_offline_failure_is_not_hidden(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def init(**options: Any) -> None:
        raise wandb.errors.CommError("disk full")

    monkeypatch.setattr(wandb, "init", init)
    monkeypatch.setattr(wandb, "run", None)
    with pytest.raises(wandb.errors.CommError, match="disk full"):
        WandbLogger(save_dir=str(tmp_path), mode="offline").experiment


def test_run_location(starts: list[tuple[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    logger = WandbLogger(save_dir=str(tmp_path), id="abc12345", mode="offline")
    monkeypatch.setattr(FakeRun, "dir", str(tmp_path / "wandb" / "offline-run-20260101_000000-abc12345" / "files"),
                        raising=False)
    where = logger.run_location()
    assert where == (f"{tmp_path}/wandb/offline-run-20260101_000000-abc12345 "
                     f"(offline; upload with: wandb sync {tmp_path}/wandb)")
    assert WandbLogger(save_dir=str(tmp_path), mode="disabled").run_location() is None


def test_run_id_is_kept_beside_the_checkpoints(tmp_path: Path) -> None:
    assert saved_run_id(tmp_path) is None
    run_id = new_run_id()
    assert len(run_id) == 8 and run_id.isalnum() and run_id == run_id.lower()
    save_run_id(tmp_path / "checkpoints", run_id)
    assert saved_run_id(tmp_path / "checkpoints") == run_id


def test_logged_step_and_steps_done_are_inverse() -> None:
    assert logged_step(8) == 7 and steps_done(7) == 8
