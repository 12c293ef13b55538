"""Deployment files: the Makefile's install stamps, the lock file, and the Docker Compose setup."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from app import migrate
from app.main import create_app
from tests.conftest import Client

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


# ---- requirements.lock ----------------------------------------------------------------------------------


def _locked() -> dict[str, str]:
    """Normalised name -> pinned version of every package in requirements.lock."""
    from packaging.utils import canonicalize_name

    text = (ROOT / "requirements.lock").read_text()
    blocks = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)((?:\s+\\\n\s+--hash=sha256:[0-9a-f]{64})+)", text, re.M)
    assert blocks, "no pinned packages with hashes in requirements.lock"
    pins = re.findall(r"^[A-Za-z0-9_.-]+==", text, re.M)
    assert len(pins) == len(blocks), "a pinned package without a hash (pip --require-hashes refuses it)"
    return {canonicalize_name(name): version for name, version, _ in blocks}


def _runtime_requirements() -> list[Requirement]:
    """pyproject's runtime dependencies, each extra's own requirements included (psycopg[binary]…)."""
    from importlib.metadata import requires

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    out: list[Requirement] = []
    for line in project["dependencies"]:
        req = Requirement(line)
        out.append(req)
        for extra in req.extras:
            for sub in requires(req.name) or []:
                sub_req = Requirement(sub)
                if sub_req.marker is not None and sub_req.marker.evaluate({"extra": extra}):
                    out.append(sub_req)
    return out


def test_the_lock_pins_every_runtime_dependency_within_its_bounds() -> None:
    from packaging.utils import canonicalize_name

    locked = _locked()
    for req in _runtime_requirements():
        name = canonicalize_name(req.name)
        assert name in locked, f"{req} is missing from requirements.lock (regenerate it: docs/operations.md)"
        assert req.specifier.contains(locked[name], prereleases=True), f"{name}=={locked[name]} breaks {req}"
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    for line in dev:  # the image has no test tools
        assert canonicalize_name(Requirement(line).name) not in locked, line


# ---- Docker Compose ---------------------------------------------------------------------------------------

INIT_DIR = "/docker-entrypoint-initdb.d"


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))


def test_compose_app_connects_as_a_role_the_init_script_creates_not_the_superuser() -> None:
    db, app = _compose()["services"]["db"], _compose()["services"]["app"]
    superuser = db["environment"]["POSTGRES_USER"]
    app_user = db["environment"]["SIGNALBOARD_DB_USER"]
    assert app_user != superuser
    assert app["environment"]["DATABASE_URL"].startswith(f"postgresql://{app_user}:")
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in db["volumes"]}
    script_dir = ROOT / mounts[INIT_DIR]
    scripts = sorted(script_dir.glob("*.sh"))
    assert scripts and all(os.access(s, os.X_OK) for s in scripts)
    assert (
        "NOSUPERUSER" in scripts[0].read_text()
        and "CREATE EXTENSION IF NOT EXISTS pg_trgm" in scripts[0].read_text()
    )


def test_compose_app_has_a_healthcheck_and_waits_for_a_healthy_database() -> None:
    services = _compose()["services"]
    assert services["app"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])
    check = services["app"]["healthcheck"]["test"]
    assert check[:2] == ["CMD", "python"] and "/healthz" in check[-1]  # python is in the image; curl is not


def test_the_image_installs_from_the_lock_with_hashes() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --no-cache-dir --require-hashes -r requirements.lock" in dockerfile
    assert "pip install --no-cache-dir --no-deps -e ." in dockerfile
    assert "USER signalboard" in dockerfile


def test_the_readme_says_where_the_first_admin_password_appears() -> None:
    assert "docker compose logs app" in (ROOT / "README.md").read_text()


# ---- the app as a role that is not a superuser ------------------------------------------------------------


@pytest.mark.skipif(shutil.which("psql") is None, reason="runs the init script with psql")
def test_the_app_migrates_and_serves_as_the_init_scripts_non_superuser_role() -> None:
    """The compose init script, run against the test server, makes a role the app fully works as."""
    from tests.conftest import _SERVER_URL, _admin_engine
    from tests.factories import event_data
    from tests.test_replica import app_on

    server = make_url(_SERVER_URL)
    suffix = secrets.token_hex(4)
    role, database, password = f"sb_app_{suffix}", f"signalboard_role_{suffix}", secrets.token_urlsafe(16)
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{database}"'))  # the postgres image makes POSTGRES_DB first
    env = {
        **os.environ,
        "PGHOST": str(server.host or server.query.get("host", "")),
        "PGPORT": str(server.port or 5432),
        "POSTGRES_USER": str(server.username),
        "POSTGRES_DB": database,
        "SIGNALBOARD_DB_USER": role,
        "SIGNALBOARD_DB_PASSWORD": password,
    }
    if server.password:
        env["PGPASSWORD"] = str(server.password)
    url = server.set(username=role, password=password, database=database).render_as_string(
        hide_password=False
    )
    engine = create_engine(url)
    try:
        subprocess.run([str(ROOT / "docker/initdb/10-app-role.sh")], env=env, check=True, capture_output=True)
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")) is False
            migrate.upgrade(conn)
            conn.commit()
        with app_on(url), Session(engine, expire_on_commit=False) as login:
            client = Client(create_app(), login)
            assert client.get("/healthz").json()["database"] == "up"
            client.login("analyst")
            made = client.post("/api/v1/events", json=event_data(title="Saved by a plain role"))
            assert made.status_code == 201, made.text
            assert "Saved by a plain role" in client.get("/export.csv").text
            assert "Saved by a plain role" in client.get("/").text
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()
