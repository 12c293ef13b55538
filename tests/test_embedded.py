"""The default command with no DATABASE_URL: embedded PostgreSQL starts, serves, stops, and keeps its data."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import _free_port


def _serve(data_dir: Path, port: int) -> subprocess.Popen[str]:
    # Without XDG_RUNTIME_DIR (root, containers), where platformdirs warns unless the app quiets it.
    unset = ("DATABASE_URL", "TEST_DATABASE_URL", "XDG_RUNTIME_DIR")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(
        DATA_DIR=str(data_dir),
        ENVIRONMENT="development",
        SEED_DEMO_ON_FIRST_RUN="true",
        WARM_UP_AT_START="true",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_healthy(proc: subprocess.Popen[str], port: int, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early:\n{proc.stdout.read() if proc.stdout else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise AssertionError("server did not become healthy")


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    return out


@pytest.mark.slow
def test_embedded_server_starts_seeds_stops_and_reuses_data() -> None:
    # Not pytest's tmp_path: its parents are private (0700) and the embedded server runs as another
    # system user when the tests run as root, so it needs a folder whose parents it may traverse.
    base = Path(tempfile.mkdtemp(prefix="signalboard-embedded-"))
    base.chmod(0o755)
    try:
        _run_twice(base / "data")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _run_twice(data_dir: Path) -> None:
    port = _free_port()
    proc = _serve(data_dir, port)
    try:
        _wait_healthy(proc, port)
        login = httpx.get(f"http://127.0.0.1:{port}/login", timeout=5)
        assert login.status_code == 200
        # The start-up re-make of outdated export lines is done (the demo events' lines came with them).
        deadline = time.time() + 60
        while (lines := httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()["lines"]) != "ready":
            assert time.time() < deadline, lines
            time.sleep(0.2)
    finally:
        out = _stop(proc)
    assert "one-time password" in out
    assert "loaded 11 demo events" in out
    _assert_short_start(out, port)
    pgdata = data_dir / "pgdata"
    assert (pgdata / "PG_VERSION").exists()
    assert not (pgdata / "postmaster.pid").exists(), "embedded PostgreSQL was not stopped"

    port = _free_port()
    proc = _serve(data_dir, port)
    try:
        _wait_healthy(proc, port)
    finally:
        out = _stop(proc)
    assert "one-time password" not in out  # same data: the admin already exists
    assert "loaded" not in out  # and the demo events too
    assert not (pgdata / "postmaster.pid").exists()


# What a first start printed before it was made short: Alembic's plugin and context lines, initdb's
# transcript and advice, platformdirs' warning, the wheel's command lines and uvicorn's start banner.
NOISE = (
    "setup plugin",
    "Context impl",
    "Will assume transactional DDL",
    "You can now start the database server",
    "XDG_RUNTIME_DIR",
    "Running commandline",
    "Uvicorn running on",
    "Waiting for application startup",
)


def _assert_short_start(out: str, port: int) -> None:
    """The first start's console: database, schema, demo data, the admin box and the address only."""
    noise = [line for line in out.splitlines() if any(n in line for n in NOISE)]
    assert noise == [], "\n".join(noise)
    assert f"Signalboard is at http://127.0.0.1:{port}/" in out
    steps = ("database ready:", "schema: upgraded empty -> ", "loaded 11 demo events", "one-time password")
    assert all(step in out for step in steps)
    start = out.split("(Ctrl+C stops it)")[0]
    assert len(start.splitlines()) <= 15, start


@pytest.mark.slow
def test_sigterm_stops_the_embedded_server_too() -> None:
    # `kill`, systemd and `docker stop` send SIGTERM, which uvicorn re-raises once it has shut down: the
    # process must still stop the PostgreSQL it started rather than leave it running without an owner.
    base = Path(tempfile.mkdtemp(prefix="signalboard-embedded-"))
    base.chmod(0o755)
    try:
        port = _free_port()
        proc = _serve(base / "data", port)
        try:
            _wait_healthy(proc, port)
        finally:
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=60)
        assert "stopping embedded PostgreSQL" in out
        assert not (base / "data" / "pgdata" / "postmaster.pid").exists(), "embedded PostgreSQL left running"
    finally:
        shutil.rmtree(base, ignore_errors=True)
