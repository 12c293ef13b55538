"""bench/run.py keeps working: a --quick run over HTTP against 300 synthetic events (no timing assertions)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

from app.demo.synthetic import seed_synthetic
from tests.conftest import TEST_DB_URL, truncate_all

ROOT = Path(__file__).resolve().parent.parent
CONNINFO = TEST_DB_URL.replace("postgresql+psycopg://", "postgresql://")


def test_quick_bench_runs_every_part(engine: Engine, tmp_path: Path) -> None:
    truncate_all(engine)
    seed_synthetic(CONNINFO, 300, seed=11)
    out = tmp_path / "bench.json"
    try:
        proc = subprocess.run(
            [sys.executable, "bench/run.py", "--quick", "--json", str(out)],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": CONNINFO},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        with engine.connect() as conn:
            left = conn.execute(text("SELECT count(*) FROM events")).scalar()
    finally:
        truncate_all(engine)
    report = json.loads(out.read_text())
    md = proc.stdout
    assert "| page · filter |" in md and "## Load" in md and "## Import" in md
    assert report["meta"]["events"] == "300"
    names = [r["name"] for r in report["timeline"]]
    filter_sets = ("none", "country", "dyad", "actor", "kind+dates", "full text", "several", "corroborated")
    for filter_set in (*filter_sets, "single origin", "due"):
        assert f"first page (HTMX) · {filter_set}" in names
    assert any(n.startswith("page 3 (HTMX, cursor) · none") for n in names)  # the cursor was followed
    assert all(r["errors"] == 0 for r in report["timeline"])
    assert all(r["server_p50_ms"] > 0 for r in report["timeline"])  # Server-Timing header was read
    corners = [r["name"] for r in report["corners"]]
    for param in ("q", "country", "supplier", "recipient", "target", "actor", "system", "kind", "status"):
        assert any(n.startswith(f"first page (HTMX) · {param} rare (") for n in corners), param
    for param in ("stage_min", "from", "to", "source", "reliability_max", "tag", "origins_min"):
        assert any(n.startswith(f"first page (HTMX) · {param} rare (") for n in corners), param
    assert "first page (HTMX) · tag empty (tag=nosuch; 0 events)" in corners
    assert any(n.startswith("first page (HTMX) · country empty (") and "; 0 events)" in n for n in corners)
    assert len([r for r in report["ladders"] if r["name"].startswith("ladder (full, repeated)")]) == 3
    pages = " ".join(r["name"] for r in report["pages"])
    for page in (
        "/actors",
        "/systems",
        "/countries",
        "/events/",
        "/api/v1/events",
        "/review",
        "/review/count",
    ):
        assert page in pages
    for r in report["corners"] + report["ladders"] + report["pages"]:
        assert r["errors"] == 0 and r["server_p50_ms"] > 0, r
    export = report["export"]
    assert export["status"] == 200
    assert export["rows"] == export["copy_rows"] == 300
    assert export["server_rss_peak_mb"] > 0
    assert report["import_"]["status"] == 0 and report["import_"]["added"] == report["import_"]["rows"] == 50
    assert left == 300  # what the import added was removed again
    assert report["load"]["errors"] == 0 and report["load"]["requests"] > 0


def test_the_start_up_probe_waits_for_every_worker(engine: Engine) -> None:
    """bench/startup.py: two uvicorn workers each read their copy and answer /healthz 200."""
    from bench.startup import start_once

    truncate_all(engine)
    seed_synthetic(CONNINFO, 300, seed=11)
    try:
        run = start_once(CONNINFO, workers=2, timeout=300, settle=0)
    finally:
        truncate_all(engine)
    assert len(run["ready_s"]) == 2 and len(run["rss_mb"]) == 2
    assert run["all_ready_s"] == max(run["ready_s"])
