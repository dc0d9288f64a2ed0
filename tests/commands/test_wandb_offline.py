"""A configured W&B key with a server that refuses connections, never answers, or rejects the key:
``lit-seg fit`` (a real process, exit included) still finishes, offline, within 30 s more than an offline
run, with one warning line."""

import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers.tiny_runs import REPO, tiny_fit_args

FIT = ["--trainer.max_steps", "4", "--trainer.logger", "true", "--trainer.enable_progress_bar", "true"]


def fit(shapes_root: Path, run: Path, **environment: str) -> tuple[subprocess.CompletedProcess, float]:
    """Runs ``lit-seg fit`` in its own process with W&B's settings from ``environment``; returns the
    process and its wall time."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("WANDB_")} | environment
    env["PYTHONPATH"] = str(REPO)  # the tiny test network
    start = time.perf_counter()
    process = subprocess.run(
        [sys.executable, "-m", "lit_seg.commands.cli", *tiny_fit_args(shapes_root, run, *FIT)],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    return process, time.perf_counter() - start


@pytest.fixture(scope="module")
def offline_seconds(shapes_root: Path, tmp_path_factory: pytest.TempPathFactory) -> float:
    """The wall time of the same fit with W&B offline from the start."""
    process, seconds = fit(shapes_root, tmp_path_factory.mktemp("offline") / "run", WANDB_MODE="offline")
    assert process.returncode == 0, process.stderr
    return seconds


class Unauthorized(http.server.BaseHTTPRequestHandler):
    """A W&B server that rejects the key of every request."""

    def answer(self) -> None:
        self.send_response(401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = answer

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def server(kind: str) -> Iterator[str]:
    """The URL of a local server that refuses connections, never answers, or rejects the key."""
    if kind == "rejects the key":
        with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Unauthorized) as httpd:
            threading.Thread(target=httpd.serve_forever, daemon=True).start()
            yield f"http://127.0.0.1:{httpd.server_port}"
            httpd.shutdown()
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound but not listening: connections are refused
        if kind == "never answers":
            sock.listen()  # connections wait in the backlog, unanswered
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["refuses", "never answers", "rejects the key"])
def test_unreachable_server_leaves_an_offline_run(
    kind: str, offline_seconds: float, shapes_root: Path, tmp_path: Path
) -> None:
    with server(kind) as url:
        process, seconds = fit(shapes_root, tmp_path / "run", WANDB_API_KEY="x" * 40, WANDB_BASE_URL=url)
    assert process.returncode == 0, process.stderr
    assert seconds < offline_seconds + 30, (seconds, offline_seconds)
    warnings = [line for line in process.stderr.splitlines() if "W&B: no online run" in line]
    assert len(warnings) == 1 and "logging offline" in warnings[0], process.stderr
    assert "Traceback" not in process.stderr
    [offline] = (tmp_path / "run" / "wandb").glob("offline-run-*")
    assert list(offline.glob("run-*.wandb"))  # what `wandb sync` uploads
    assert f"wandb sync {tmp_path / 'run' / 'wandb'}" in process.stdout  # the end-of-fit summary says how
