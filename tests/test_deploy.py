"""Deployment files: the Makefile's install stamps, the lock file, and the Docker Compose setup."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _make_dry_run(target: str, tmp_path: Path) -> str:
    """The commands `make TARGET` would run on a clone without a virtual environment."""
    done = subprocess.run(
        ["make", "-n", "-C", str(ROOT), target, f"VENV={tmp_path / 'venv'}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_run_installs_the_runtime_dependencies_only(tmp_path: Path) -> None:
    run = _make_dry_run("run", tmp_path)
    assert "pip install --quiet -e ." in run and "[dev]" not in run
    assert "signalboard serve" in run
    assert '-e ".[dev]"' in _make_dry_run("test", tmp_path)
