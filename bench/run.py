"""Benchmark Signalboard over HTTP against the database in DATABASE_URL (see docs/benchmarks.md).

Starts the real app with uvicorn in a subprocess, logs in like a browser, and measures the timeline
(first and deep pages per filter set), facets plus chart, the CSV export beside PostgreSQL's own COPY,
an import and a load run of concurrent clients. Prints Markdown tables; --json writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import psutil
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Its own account per concurrent run (BENCH_USER), since each run sets a fresh password.
BENCH_USER = os.environ.get("BENCH_USER", "bench")
CURSOR_RE = re.compile(r"(?:[?&;])cursor=([A-Za-z0-9_\-]+)")
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
# Placeholders the timeline fills by their own requests once shown (total, facet counts, chart).
LAZY_RE = re.compile(r'hx-get="(/timeline/(?:count|facets|chart)\?[^"]*)"')


# ---- results ------------------------------------------------------------------------------------
def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of values in ms; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


@dataclass
class Timing:
    """Samples of one measurement: server time (Server-Timing) and client round trip, in ms."""

    name: str
    server: list[float] = field(default_factory=list)
    client: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    note: str = ""

    def row(self) -> dict[str, Any]:
        """Summary figures for the table and the JSON file."""
        return {
            "name": self.name,
            "n": len(self.client),
            "server_p50_ms": round(pct(self.server, 50), 1),
            "server_p95_ms": round(pct(self.server, 95), 1),
            "client_p50_ms": round(pct(self.client, 50), 1),
            "client_p95_ms": round(pct(self.client, 95), 1),
            "errors": sum(1 for s in self.statuses if s != 200),
            "note": self.note,
        }


@dataclass
class Report:
    """Everything measured in one run."""

    meta: dict[str, Any] = field(default_factory=dict)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    facets: list[dict[str, Any]] = field(default_factory=list)
    export: dict[str, Any] = field(default_factory=dict)
    import_: dict[str, Any] = field(default_factory=dict)
    load: dict[str, Any] = field(default_factory=dict)
    corners: list[dict[str, Any]] = field(default_factory=list)
    ladders: list[dict[str, Any]] = field(default_factory=list)
    pages: list[dict[str, Any]] = field(default_factory=list)

    def markdown(self) -> str:
        """The report as Markdown tables."""
        out = ["## Run", ""]
        out += [f"- {k}: {v}" for k, v in self.meta.items()]
        head = "| {} | n | server p50 | server p95 | client p50 | client p95 | errors |"
        sep = "|---|---:|---:|---:|---:|---:|---:|"

        def rows(title: str, label: str, items: list[dict[str, Any]]) -> None:
            if not items:
                return
            out.extend(["", f"## {title}", "", head.format(label), sep])
            for r in items:
                out.append(
                    f"| {r['name']} | {r['n']} | {r['server_p50_ms']} ms | {r['server_p95_ms']} ms | "
                    f"{r['client_p50_ms']} ms | {r['client_p95_ms']} ms | {r['errors']} |"
                )
            notes = [f"- {r['name']}: {r['note']}" for r in items if r.get("note")]
            if notes:
                out.extend(["", *notes])

        rows("Timeline (times in ms; server = Server-Timing header)", "page · filter", self.timeline)
        rows("Facets and chart", "request · filter", self.facets)
        rows("Rare and empty filter values (events matched in brackets)", "request · value", self.corners)
        rows("Dyad ladders (the largest dyads)", "request · dyad", self.ladders)
        rows("Other pages", "page · path", self.pages)
        if self.export:
            e = self.export
            out += [
                "",
                "## Export of all rows",
                "",
                "| | rows | seconds | rows/s | peak RSS |",
                "|---|---:|---:|---:|---:|",
            ]
            out.append(
                f"| /export.csv | {e['rows']:,} | {e['seconds']} | {e['rows_per_s']:,} | "
                f"{e['server_rss_peak_mb']} MB (start {e['server_rss_start_mb']} MB) |"
            )
            out.append(
                f"| COPY (the export's query) TO STDOUT WITH CSV | {e['copy_rows']:,} | "
                f"{e['copy_seconds']} | {e['copy_rows_per_s']:,} | – |"
            )
            if e.get("cells_copy_seconds"):
                out.append(
                    f"| COPY (every cell computed) TO STDOUT WITH CSV | {e['cells_copy_rows']:,} | "
                    f"{e['cells_copy_seconds']} | – | – |"
                )
            out += [
                "",
                f"- ratio export / COPY of its query: **{e['ratio']}×**; status {e['status']}; "
                f"{e['bytes']:,} bytes; stored lines at start: {e.get('lines', 'n/a')}; "
                f"COPY query: {e['copy_query']}",
            ]
            if e.get("cells_copy_seconds"):
                out.append(
                    f"- ratio export / COPY computing every cell: **{e['cells_ratio']}×**; "
                    f"that query: {e['cells_copy_query']}"
                )
            out += [
                f"- started once the app was idle (background cache build done): {e['idle_wait_s']} s wait",
            ]
        if self.import_:
            i = self.import_
            out += [
                "",
                "## Import",
                "",
                f"- {i['rows']:,} rows via {i['via']}: **{i['seconds']} s** "
                f"({i['rows_per_s']:,} rows/s), exit {i['status']}; {i.get('note', '')}",
                f"- cpu gauge right before: {i.get('cpu_gauge_s')} s for 5,000,000 Python additions",
            ]
            if i.get("server_cpu_s"):
                out.append(
                    f"- CPU: importer {i['importer_cpu_s']} s; PostgreSQL processes started meanwhile, "
                    f"busiest first: {', '.join(f'{c} s' for c in i['server_cpu_s'])} (the import's own "
                    "connection, then the one computing search documents)"
                )
        if self.load:
            ld = self.load
            out += [
                "",
                "## Load",
                "",
                f"- {ld['clients']} clients × {ld['seconds']} s on the timeline: "
                f"**{ld['requests']:,} requests, "
                f"{ld['rps']} req/s**, p50 {ld['p50_ms']} ms, p95 {ld['p95_ms']} ms (client round trip), "
                f"server p95 {ld['server_p95_ms']} ms, **errors {ld['errors']}**",
            ]
        return "\n".join(out) + "\n"


# ---- the app under test -------------------------------------------------------------------------
def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def libpq_url(url: str) -> str:
    """DATABASE_URL without a SQLAlchemy driver suffix, for psycopg."""
    return re.sub(r"^postgres(ql)?\+\w+://", "postgresql://", url)


def server_command(
    database_url: str, port: int, workers: int, factory: str = "app.main:create_app"
) -> tuple[list[str], dict[str, str]]:
    """The uvicorn command line and environment the benchmarks start the app with."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": database_url,
        "ENVIRONMENT": "development",
        "WARM_UP_AT_START": "true",  # measured as deployed, whatever the caller's environment says
        "SEED_DEMO_ON_FIRST_RUN": "false",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-" + secrets.token_hex(24)),
    }
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        factory,
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    return cmd, env


@contextmanager
def app_server(database_url: str, port: int, workers: int) -> Iterator[subprocess.Popen[bytes]]:
    """Run `uvicorn app.main:create_app --factory` until the block ends."""
    cmd, env = server_command(database_url, port, workers)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=None)
    try:
        # /healthz answers 200 once the facts copy is read (503 "starting" before): a slow machine needs time.
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the app did not start (see its output above)")
            time.sleep(0.2)
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def tree_rss(proc: psutil.Process) -> int:
    """Resident memory of a process and its children (uvicorn workers), in bytes."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def ensure_bench_user(conninfo: str, password: str) -> None:
    """Create (or reset) the analyst account the benchmark logs in with."""
    from app.auth.passwords import hash_password

    with psycopg.connect(conninfo) as conn:
        hashed = hash_password(password)
        updated = conn.execute(
            "UPDATE users SET password_hash = %s, role = 'analyst', is_active = true, "
            "must_change_password = false WHERE lower(username) = %s",
            (hashed, BENCH_USER),
        ).rowcount
        if not updated:
            conn.execute(
                "INSERT INTO users (username, password_hash, role) VALUES (%s, %s, 'analyst')",
                (BENCH_USER, hashed),
            )
        conn.execute("DELETE FROM login_attempts WHERE lower(username) = %s", (BENCH_USER,))


def login(base: str, password: str, timeout: float = 300) -> httpx.Client:
    """A client logged in through the real login form (CSRF token and all)."""
    client = httpx.Client(base_url=base, timeout=timeout, follow_redirects=False)
    page = client.get("/login")
    match = CSRF_RE.search(page.text)
    form = {"username": BENCH_USER, "password": password, "next": "/"}
    if match:
        form["csrf_token"] = match.group(1)
    r = client.post("/login", data=form)
    if r.status_code not in (302, 303):
        raise SystemExit(f"login failed: HTTP {r.status_code}")
    home = client.get("/account")
    token = CSRF_RE.search(home.text) or re.search(r'"X-CSRF-Token": "([^"]+)"', home.text)
    if token:
        client.headers["X-CSRF-Token"] = token.group(1)
    return client


def server_ms(response: httpx.Response) -> float | None:
    """The app's own time from the Server-Timing header, if present."""
    m = re.search(r"app;dur=([0-9.]+)", response.headers.get("server-timing", ""))
    return float(m.group(1)) if m else None


def timed_get(
    client: httpx.Client, path: str, t: Timing, headers: dict[str, str] | None = None
) -> httpx.Response:
    """GET once and record the sample."""
    began = time.perf_counter()
    r = client.get(path, headers=headers)
    t.client.append((time.perf_counter() - began) * 1000)
    s = server_ms(r)
    if s is not None:
        t.server.append(s)
    t.statuses.append(r.status_code)
    return r


# ---- what to ask for ----------------------------------------------------------------------------
def filter_sets(conninfo: str) -> dict[str, dict[str, str]]:
    """The filter combinations of the issue, with values picked from the data so each matches rows."""
    with psycopg.connect(conninfo) as conn:

        def one(sql: str, default: Any) -> Any:
            row = conn.execute(sql).fetchone()
            return row if row and row[0] is not None else default

        country = one(
            "SELECT country_code FROM event_countries GROUP BY 1 ORDER BY count(*) DESC LIMIT 1", ("RUS",)
        )[0]
        dyad = one(
            "SELECT s.country_code, r.country_code FROM event_countries s JOIN event_countries r "
            "ON r.event_id = s.event_id AND r.role = 'recipient' WHERE s.role = 'supplier' "
            "AND s.event_id IN (SELECT id FROM events ORDER BY id DESC LIMIT 20000) "
            "GROUP BY 1, 2 ORDER BY count(*) DESC LIMIT 1",
            ("RUS", "SYR"),
        )
        actor = one(
            "SELECT a.name FROM actors a JOIN event_actors ea ON ea.actor_id = a.id "
            "WHERE ea.event_id IN (SELECT id FROM events ORDER BY id DESC LIMIT 20000) "
            "GROUP BY a.name ORDER BY count(*) DESC LIMIT 1",
            ("nobody",),
        )[0]
        years = one(
            "SELECT extract(year FROM min(date_start))::int, extract(year FROM max(date_start))::int "
            "FROM events",
            (2015, 2025),
        )
    mid = (years[0] + years[1]) // 2
    return {
        "none": {},
        "country": {"country": country},
        "dyad": {"supplier": dyad[0], "recipient": dyad[1]},
        "actor": {"actor": actor},
        "kind+dates": {"kind": "transfer", "from": f"{mid - 2}-01", "to": f"{mid}-12"},
        "full text": {"q": "drones"},
        "several": {"supplier": dyad[0], "kind": "transfer", "from": str(mid - 4), "q": "air defence"},
        "due": {"due": "1"},
        "due+country": {"due": "1", "country": country},
        "corroborated": {"origins_min": "2"},
        "single origin": {"origins_min": "1", "origins_max": "1", "supplier": dyad[0]},
    }


def find_route(client: httpx.Client, *candidates: str) -> str | None:
    """The first candidate path the running app answers with 200 (probed with an empty result set)."""
    for c in candidates:
        if client.get(f"{c}?from=2999").status_code == 200:
            return c
    return None


# ---- the parts ----------------------------------------------------------------------------------
def bench_timeline(
    client: httpx.Client, sets: dict[str, dict[str, str]], repeat: int, deep: int
) -> list[dict[str, Any]]:
    """First page (HTMX rows partial and full page) and a deep page reached by following the cursor."""
    rows = []
    hx = {"HX-Request": "true"}
    for name, params in sets.items():
        qs = urlencode(params)
        # The first request of a filter computes its aggregates; later ones may come from the app's cache.
        cold = Timing(f"first page (full, cold) · {name}")
        timed_get(client, f"/?{qs}", cold)
        cold.note = "first request of this filter in the run (nothing of it cached yet)"
        rows.append(cold.row())
        t = Timing(f"first page (HTMX) · {name}")
        for _ in range(repeat):
            r = timed_get(client, f"/?{qs}", t, hx)
        rows.append(t.row())
        t = Timing(f"first page (full, warm) · {name}")
        for _ in range(max(1, repeat // 2)):
            timed_get(client, f"/?{qs}", t)
        rows.append(t.row())
        cursor, pages = None, 1
        while pages < deep:
            m = CURSOR_RE.search(r.text)
            if not m or (cursor is not None and m.group(1) == cursor):
                break
            cursor = m.group(1)
            r = client.get(f"/?{urlencode({**params, 'cursor': cursor})}", headers=hx)
            pages += 1
        if cursor:
            t = Timing(f"page {pages} (HTMX, cursor) · {name}")
            for _ in range(repeat):
                timed_get(client, f"/?{urlencode({**params, 'cursor': cursor})}", t, hx)
            rows.append(t.row())
    return rows


def bench_facets(
    client: httpx.Client, sets: dict[str, dict[str, str]], repeat: int, paths: list[str]
) -> list[dict[str, Any]]:
    """Facet counts and the chart per filter set: each endpoint, and both together."""
    rows = []
    for name, params in sets.items():
        qs = urlencode(params)
        # The first request of a filter computes (timeline pages no longer do): timed as "cold".
        cold = Timing(f"{' + '.join(paths)} (cold) · {name}")
        get_all(client, paths, qs, cold)
        rows.append(cold.row())
        total = Timing(f"{' + '.join(paths)} · {name}")
        for _ in range(repeat):
            get_all(client, paths, qs, total)
        rows.append(total.row())
    return rows


def get_all(client: httpx.Client, paths: list[str], qs: str, into: Timing) -> None:
    """GET each path with the query string once; record their summed times and the worst status."""
    server_sum = client_sum = 0.0
    status = 200
    for p in paths:
        one = Timing(p)
        timed_get(client, f"{p}?{qs}", one)
        server_sum += one.server[0] if one.server else 0.0
        client_sum += one.client[0]
        status = max(status, one.statuses[0])
    into.server.append(server_sum)
    into.client.append(client_sum)
    into.statuses.append(status)


def copy_sql(conninfo: str, params: dict[str, str]) -> list[tuple[str, str, str]]:
    """SQL text, label and session options of the queries the export is compared with under COPY.

    First the very statement the export streams (its stored lines, app.queries.transfer.export.line_select),
    then, in versions that had one, the statement that computed every cell in SQL; each under the
    settings the app applies to it with SET LOCAL.
    """
    from sqlalchemy import create_engine
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.orm import Session

    from app.db import to_psycopg_url
    from app.filters import EventFilter

    f = EventFilter.from_pairs(list(params.items()))
    statements: list[tuple[Any, str, dict[str, str]]] = []
    try:
        from app.queries.transfer import export as export_queries

        engine = create_engine(to_psycopg_url(conninfo))
        with Session(engine) as s:
            grouped = bool(getattr(export_queries, "use_grouped_plan", lambda *_: False)(s, f))
            if hasattr(export_queries, "line_select"):
                line_settings = dict(export_queries.line_settings(s, f))
                statements.append((export_queries.line_select(f), "line_select", line_settings))
        engine.dispose()
        if hasattr(export_queries, "export_select"):  # versions that computed cells in SQL
            try:
                stmt = export_queries.export_select(f, grouped=grouped)
            except TypeError:
                stmt = export_queries.export_select(f)
            settings = dict(getattr(export_queries, "PLAN_SETTINGS", {}))
            statements.append((stmt, f"export_select(grouped={grouped})", settings))
    except ImportError:
        from app.queries.events import event_select

        statements = [(event_select(f), "events.event_select (no export query found)", {})]
    out = []
    for stmt, label, settings in statements:
        # The app reads through a cursor, and PostgreSQL never runs a cursor's plan in parallel: hold the
        # COPY to the same serial plan so both sides run one identical plan.
        settings = {**settings, "max_parallel_workers_per_gather": "0"}
        options = " ".join(f"-c {k}={v.strip(chr(39))}" for k, v in settings.items())
        sql = str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
        described = ", ".join(f"{k}={v.strip(chr(39))}" for k, v in settings.items())
        out.append((sql, f"app.queries.{label}, literal binds, {described}", options))
    return out


def timed_copy(conninfo: str, sql: str, options: str) -> tuple[int, float]:
    """Rows and seconds of `COPY (sql) TO STDOUT WITH CSV HEADER`, read to the end.

    The rows are counted by a second, untimed query: a stored line holds its own CRLF, so counting line
    breaks in the COPY output would not count records.
    """
    began = time.perf_counter()
    with (
        psycopg.connect(conninfo, options=options) as conn,
        conn.cursor() as cur,
    ):
        with cur.copy(f"COPY ({sql}) TO STDOUT WITH CSV HEADER") as copy:
            for _ in copy:
                pass
        seconds = time.perf_counter() - began
        row = cur.execute(f"SELECT count(*) FROM ({sql}) AS counted").fetchone()
    return int(row[0]) if row else 0, seconds


def tree_cpu_seconds(proc: psutil.Process) -> float:
    """CPU time used so far by a process and its children."""
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        with suppress(psutil.Error):
            times = p.cpu_times()
            total += times.user + times.system
    return total


def wait_until_idle(server: psutil.Process, timeout: float = 600) -> None:
    """Wait until the app uses under 5 % of a core for 2 s (or `timeout` seconds have passed)."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        before = tree_cpu_seconds(server)
        time.sleep(2)
        if tree_cpu_seconds(server) - before < 0.1:
            break


def bench_export(
    client: httpx.Client, server: psutil.Process, conninfo: str, params: dict[str, str]
) -> dict[str, Any]:
    """Stream /export.csv to nowhere, sampling the server's memory, then COPY the same query."""
    qs = urlencode(params)
    began = time.monotonic()
    # The app builds its in-memory copy of the facts after it starts (in the background, or for the
    # first count asked for): let it finish so the export is not charged for it.
    if find_route(client, "/timeline/count"):
        client.get("/timeline/count", timeout=600)
    wait_until_idle(server)
    waited = round(time.monotonic() - began, 1)
    # Whether every event's CSV line was stored when the export started (the app fills them after start).
    lines_state = str(client.get("/healthz").json().get("lines", "n/a"))
    rss_start = tree_rss(server)
    peak = [rss_start]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], tree_rss(server))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    lines = size = 0
    began = time.perf_counter()
    with client.stream("GET", f"/export.csv?{qs}") as r:
        status = r.status_code
        for chunk in r.iter_bytes():
            size += len(chunk)
            lines += chunk.count(b"\n")
    seconds = time.perf_counter() - began
    stop.set()
    sampler.join()
    rows = max(0, lines - 1)  # the header row
    (sql, label, options), *others = copy_sql(conninfo, params)
    copy_rows, copy_seconds = timed_copy(conninfo, sql, options)
    cells: dict[str, Any] = {}
    for cells_sql, cells_label, cells_options in others:
        cells_rows, cells_seconds = timed_copy(conninfo, cells_sql, cells_options)
        cells = {
            "cells_copy_rows": cells_rows,
            "cells_copy_seconds": round(cells_seconds, 2),
            "cells_ratio": round(seconds / cells_seconds, 2) if cells_seconds else 0,
            "cells_copy_query": cells_label,
        }
    return {
        "status": status,
        "rows": rows,
        "bytes": size,
        "seconds": round(seconds, 2),
        "rows_per_s": int(rows / seconds) if seconds else 0,
        "server_rss_start_mb": round(rss_start / 2**20, 1),
        "server_rss_peak_mb": round(peak[0] / 2**20, 1),
        "copy_rows": copy_rows,
        "copy_seconds": round(copy_seconds, 2),
        "copy_rows_per_s": int(copy_rows / copy_seconds) if copy_seconds else 0,
        "ratio": round(seconds / copy_seconds, 2) if copy_seconds else 0,
        "copy_query": label,
        **cells,
        "lines": lines_state,
        "idle_wait_s": waited,
    }


@contextmanager
def new_postgres_cpu() -> Iterator[dict[int, float]]:
    """CPU seconds of each PostgreSQL process on this host that starts while the block runs, by pid.

    Polled every 0.2 s, as a connection's process is gone once the client disconnects; empty when the
    database runs on another host.
    """
    before = set(psutil.pids())
    seen: dict[int, float] = {}
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            for proc in psutil.process_iter(["name"]):
                if proc.pid in before or proc.info["name"] != "postgres":
                    continue
                with suppress(psutil.Error):
                    times = proc.cpu_times()
                    seen[proc.pid] = times.user + times.system
            stop.wait(0.2)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join()


# Tables an import writes to (the bench removes its rows again afterwards).
IMPORTED_TABLES = ("events", "event_countries", "event_actors", "event_systems", "sources", "audit_log")


def bench_import(
    client: httpx.Client, conninfo: str, database_url: str, n_rows: int, cli: bool
) -> dict[str, Any]:
    """Import n_rows taken from the app's own export, timed end to end, then remove what it added."""
    with psycopg.connect(conninfo) as conn:
        row = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()
        max_before = int(row[0]) if row else 0
    with tempfile.NamedTemporaryFile("wb", suffix=".csv", delete=False) as tmp:
        path = Path(tmp.name)
        kept = 0
        with client.stream("GET", "/export.csv") as r:
            # Records may hold quoted line breaks in theory; synthetic and demo text never does.
            buffer = b""
            for chunk in r.iter_bytes():
                buffer += chunk
                *complete, buffer = buffer.split(b"\n")
                for line in complete:
                    if kept > n_rows:
                        break
                    tmp.write(line + b"\n")
                    kept += 1
                if kept > n_rows:
                    break
    rows = kept - 1
    note = ""
    gauge = cpu_gauge()
    # Start from written-out buffers: a checkpoint due after the steps before (or a first fill of the
    # export's stored lines) would otherwise land inside the timed import.
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    began = time.perf_counter()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with new_postgres_cpu() as server_cpu:
        if cli:
            env = {**os.environ, "DATABASE_URL": database_url, "SEED_DEMO_ON_FIRST_RUN": "false"}
            proc = subprocess.run(
                [sys.executable, "-m", "app.cli", "import", str(path)],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            status = proc.returncode
            note = (proc.stderr.strip().splitlines() or [""])[-1][:200]
            via = "signalboard import"
        else:
            with path.open("rb") as fh:
                r = client.post("/import", files={"file": ("bench.csv", fh, "text/csv")})
            status = r.status_code
            via = "POST /import"
    seconds = time.perf_counter() - began
    # The import command is the only child that ends meanwhile (the app server runs on).
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    importer_cpu = (children.ru_utime - children_before.ru_utime) + (
        children.ru_stime - children_before.ru_stime
    )
    path.unlink()
    with psycopg.connect(conninfo) as conn:
        added = conn.execute("SELECT count(*) FROM events WHERE id > %s", (max_before,)).fetchone()
        n_added = int(added[0]) if added else 0
        # Leave the database as it was, so the next run measures the same N.
        conn.execute("DELETE FROM events WHERE id > %s", (max_before,))
    # And without the dead rows of what was removed, which slowed each following run's import.
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"VACUUM (ANALYZE) {', '.join(IMPORTED_TABLES)}")
    return {
        "rows": rows,
        "added": n_added,
        "via": via,
        "status": status,
        "seconds": round(seconds, 2),
        "rows_per_s": int(rows / seconds) if seconds else 0,
        "cpu_gauge_s": gauge,
        # Of the import command (zero through POST /import, whose work is the app server's).
        "importer_cpu_s": round(importer_cpu, 1),
        "server_cpu_s": [round(c, 1) for c in sorted(server_cpu.values(), reverse=True)[:3]],
        "note": f"{n_added:,} events added then removed. {note}".strip(),
    }


def bench_load(
    base: str, password: str, sets: dict[str, dict[str, str]], clients: int, seconds: float
) -> dict[str, Any]:
    """`clients` threads, each its own logged-in session, hitting timeline pages for `seconds`."""
    sessions = [login(base, password, timeout=60) for _ in range(clients)]
    queries = [urlencode(p) for p in sets.values()]
    lat: list[float] = []
    srv: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    deadline = [0.0]

    def worker(i: int, c: httpx.Client) -> None:
        n = i
        start.wait()
        while time.perf_counter() < deadline[0]:
            qs = queries[n % len(queries)]
            n += 1
            began = time.perf_counter()
            try:
                r = c.get(f"/?{qs}", headers={"HX-Request": "true"} if n % 2 else None)
                ok = r.status_code == 200
                s = server_ms(r)
                # Like a browser: the page's lazy placeholders (total, facets, chart) load next.
                for url in LAZY_RE.findall(r.text) if ok else []:
                    part = c.get(url.replace("&amp;", "&"), headers={"HX-Request": "true"})
                    if part.status_code != 200:
                        ok, r = False, part
                        break
            except httpx.HTTPError as exc:
                ok, s = False, None
                r = None
                with lock:
                    errors.append(type(exc).__name__)
            elapsed = (time.perf_counter() - began) * 1000
            with lock:
                lat.append(elapsed)
                if s is not None:
                    srv.append(s)
                if r is not None and not ok:
                    errors.append(f"HTTP {r.status_code}")

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(sessions)]
    for th in threads:
        th.start()
    deadline[0] = time.perf_counter() + seconds
    start.wait()
    began = time.perf_counter()
    for th in threads:
        th.join()
    wall = time.perf_counter() - began
    for c in sessions:
        c.close()
    return {
        "clients": clients,
        "seconds": round(wall, 1),
        "requests": len(lat),
        "rps": round(len(lat) / wall, 1) if wall else 0,
        "p50_ms": round(pct(lat, 50), 1),
        "p95_ms": round(pct(lat, 95), 1),
        "server_p95_ms": round(pct(srv, 95), 1),
        "errors": len(errors),
        "error_kinds": sorted(set(errors))[:5],
    }


# ---- corners: rare and empty filter values, dyad ladders, the other pages --------------------------
@dataclass
class Corner:
    """One filter value to measure: the parameter, rare or empty, the query and how many events match."""

    param: str
    which: str
    params: dict[str, str]
    matches: int = 0


def _sample_clause(conn: psycopg.Connection[Any], rows: int = 10_000) -> str:
    """TABLESAMPLE of about `rows` events for the statistics a corner value is picked from (all if few)."""
    row = conn.execute("SELECT reltuples FROM pg_class WHERE relname = 'events'").fetchone()
    estimate = float(row[0]) if row and row[0] else 0.0
    if estimate <= rows * 2:
        return ""
    return f"TABLESAMPLE SYSTEM ({max(0.01, round(100 * rows / estimate, 3))})"


def _least(counts: dict[str, int]) -> str | None:
    """The value with the fewest events (ties by name), None for none."""
    return min(counts, key=lambda k: (counts[k], k)) if counts else None


def corner_values(conninfo: str) -> tuple[list[Corner], list[str]]:
    """A rare and an empty value of every filter parameter, picked from the data.

    Rare: the value the fewest events hold (from a sample where counting all would scan the table).
    Empty: a valid value no event holds. Returns the corners and the parameters that have no empty value
    (every kind or status occurs, for instance).
    """
    from app.domain.countries import names_by_code
    from app.domain.vocab import KINDS, RELIABILITY, STAGES, STATUSES

    rare: dict[str, str | None] = {}
    empty: dict[str, str | None] = {}
    with psycopg.connect(conninfo) as conn:
        sample = _sample_clause(conn)

        def rows(sql: str, *args: Any) -> list[tuple[Any, ...]]:
            return list(conn.execute(sql, args).fetchall())

        by_role: dict[str, dict[str, int]] = {"country": {}}
        for role, code, n in rows("SELECT role, country_code, count(*) FROM event_countries GROUP BY 1, 2"):
            by_role.setdefault(role, {})[code] = int(n)
            by_role["country"][code] = by_role["country"].get(code, 0) + int(n)
        for param in ("country", "supplier", "recipient", "target"):
            held = by_role.get(param, {})
            rare[param] = _least(held)
            empty[param] = next((c for c in sorted(names_by_code()) if c not in held), None)
        for param, link, table, name in (
            ("actor", "actor_id", "actors", "name"),
            ("system", "system_id", "systems", "designation"),
        ):
            least = rows(
                f"SELECT t.{name} FROM {table} t JOIN (SELECT {link}, count(*) AS n FROM event_{table} "
                f"GROUP BY 1) c ON c.{link} = t.id ORDER BY c.n, t.{name} LIMIT 1"
            )
            rare[param] = least[0][0] if least else None
            unused = rows(
                f"SELECT {name} FROM {table} t WHERE NOT EXISTS "
                f"(SELECT 1 FROM event_{table} l WHERE l.{link} = t.id) ORDER BY 1 LIMIT 1"
            )
            empty[param] = unused[0][0] if unused else f"Nosuch {param.title()} Zzyx"
        columns: dict[str, dict[str, int]] = {"kind": {}, "status": {}, "stage_min": {}}
        for kind, status, stage, n in rows(
            "SELECT kind, status, stage, count(*) FROM events WHERE deleted_at IS NULL GROUP BY 1, 2, 3"
        ):
            for param, value in (("kind", kind), ("status", status), ("stage_min", str(stage))):
                columns[param][value] = columns[param].get(value, 0) + int(n)
        for param, vocab in (("kind", KINDS), ("status", STATUSES)):
            rare[param] = _least(columns[param])
            empty[param] = next((v for v in vocab if v not in columns[param]), None)
        top = max((int(s) for s in columns["stage_min"]), default=0)
        rare["stage_min"] = str(top)
        empty["stage_min"] = str(top + 1) if top + 1 in STAGES else None
        span = rows(
            "SELECT min(date_start), max(period_end), max(date_start) FROM events WHERE deleted_at IS NULL"
        )[0]
        if span[0] is not None:
            rare["from"], rare["to"] = span[1].isoformat(), span[0].isoformat()
            empty["from"], empty["to"] = str(span[1].year + 1), str(span[0].year - 1)
        publishers = rows(
            "SELECT min(publisher), count(*) FROM sources GROUP BY lower(publisher) ORDER BY 2, 1 LIMIT 1"
        )
        rare["source"] = publishers[0][0] if publishers else None
        empty["source"] = "Nosuch Gazette Zzyx"
        # Corroboration: the most origins any event has is the rare value; one more is the empty one.
        most = rows("SELECT coalesce(max(origin_count), 0) FROM events WHERE deleted_at IS NULL")[0][0]
        rare["origins_min"], empty["origins_min"] = str(max(int(most), 1)), str(int(most) + 1)
        best = rows("SELECT min(reliability) FROM sources")[0][0]
        rare["reliability_max"] = best
        empty["reliability_max"] = RELIABILITY[RELIABILITY.index(best) - 1] if best and best != "A" else None
        tags = dict(
            rows(
                f"SELECT t, count(*) FROM events {sample}, unnest(tags) AS t "
                "WHERE deleted_at IS NULL GROUP BY 1"
            )
        )
        rare["tag"], empty["tag"] = _least(tags), "nosuch"
        words = rows(
            "SELECT word FROM ts_stat($$SELECT search_vector FROM events "
            f"{sample} WHERE deleted_at IS NULL$$) WHERE word ~ '^[a-z]{{4,}}$' ORDER BY ndoc, word LIMIT 1"
        )
        rare["q"], empty["q"] = (words[0][0] if words else None), "zzyxnosuch"
    corners, missing = [], []
    for param in FILTER_PARAMS:
        for which, value in (("rare", rare.get(param)), ("empty", empty.get(param))):
            if value is None:
                missing.append(f"{param} ({which})")
            else:
                corners.append(Corner(param, which, {param: value}))
    return corners, missing


# Every parameter of the timeline's filter, in the order of the issue.
FILTER_PARAMS = (
    "q", "country", "supplier", "recipient", "target", "actor", "system", "kind", "status", "stage_min",
    "from", "to", "source", "reliability_max", "tag", "origins_min",
)  # fmt: skip


def count_matches(conninfo: str, corners: list[Corner]) -> None:
    """Fill in how many events each corner matches (PostgreSQL's count, the app's own conditions).

    Raises SystemExit when a value is not valid for the filter: an empty value must match nothing by
    the data, not be refused.
    """
    from sqlalchemy import create_engine, func, select
    from sqlalchemy.orm import Session

    from app.db import to_psycopg_url
    from app.filters import EventFilter
    from app.queries.events import matching_ids

    engine = create_engine(to_psycopg_url(conninfo))
    with Session(engine) as s:
        for c in corners:
            f = EventFilter.from_pairs(list(c.params.items()))
            if f.errors:
                raise SystemExit(f"corner value {c.params} is not valid: {f.errors}")
            c.matches = int(s.scalar(select(func.count()).select_from(matching_ids(f).subquery())) or 0)
    engine.dispose()


def bench_corners(
    client: httpx.Client, corners: list[Corner], repeat: int, lazy: list[str]
) -> list[dict[str, Any]]:
    """First page (cold, then repeated) and its lazy parts (cold, then repeated) for each corner value."""
    out = []
    hx = {"HX-Request": "true"}
    for c in corners:
        qs = urlencode(c.params)
        label = f"{c.param} {c.which} ({urlencode(c.params)}; {c.matches:,} events)"
        cold = Timing(f"first page (full, cold) · {label}")
        timed_get(client, f"/?{qs}", cold)
        out.append(cold.row())
        warm = Timing(f"first page (HTMX) · {label}")
        for _ in range(repeat):
            timed_get(client, f"/?{qs}", warm, hx)
        out.append(warm.row())
        if lazy:
            parts = Timing(f"{' + '.join(lazy)} (cold) · {label}")
            get_all(client, lazy, qs, parts)
            out.append(parts.row())
            parts = Timing(f"{' + '.join(lazy)} · {label}")
            for _ in range(max(2, repeat // 4)):
                get_all(client, lazy, qs, parts)
            out.append(parts.row())
    return out


def largest_dyads(conninfo: str, n: int = 3) -> list[tuple[str, str, int]]:
    """The n supplier -> recipient pairs with the most events."""
    with psycopg.connect(conninfo) as conn:
        found = conn.execute(
            "SELECT s.country_code, r.country_code, count(*) FROM event_countries s JOIN event_countries r "
            "ON r.event_id = s.event_id AND r.role = 'recipient' WHERE s.role = 'supplier' "
            "GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT %s",
            (n,),
        ).fetchall()
    return [(s, r, int(c)) for s, r, c in found]


def bench_ladders(
    client: httpx.Client, dyads: list[tuple[str, str, int]], repeat: int
) -> list[dict[str, Any]]:
    """/dyads?supplier=S&recipient=R (the dyad's ladder): the first request, then repeated."""
    out = []
    for s, r, n in dyads:
        path = f"/dyads?{urlencode({'supplier': s, 'recipient': r})}"
        cold = Timing(f"ladder (full, cold) · {s}→{r} ({n:,} events)")
        timed_get(client, path, cold)
        out.append(cold.row())
        warm = Timing(f"ladder (full, repeated) · {s}→{r} ({n:,} events)")
        for _ in range(repeat):
            timed_get(client, path, warm)
        out.append(warm.row())
    return out


def other_pages(conninfo: str) -> dict[str, str]:
    """The pages outside the timeline: the lists, the newest event's page and the API's first page."""
    with psycopg.connect(conninfo) as conn:
        row = conn.execute("SELECT max(id) FROM events WHERE deleted_at IS NULL").fetchone()
    pages = {"actors list": "/actors", "systems list": "/systems", "countries list": "/countries"}
    if row and row[0] is not None:
        pages["event page (newest)"] = f"/events/{row[0]}"
    pages["API first page"] = "/api/v1/events"
    pages["dyad matrix"] = "/dyads"
    pages["review queue"] = "/review"
    pages["review queue (one country)"] = "/review?country=RUS"
    pages["due count (top bar)"] = "/review/count"
    return pages


def bench_pages(client: httpx.Client, pages: dict[str, str], repeat: int) -> list[dict[str, Any]]:
    """Each page: the first request, then repeated."""
    out = []
    for name, path in pages.items():
        cold = Timing(f"{name} (cold) · {path}")
        timed_get(client, path, cold)
        out.append(cold.row())
        warm = Timing(f"{name} · {path}")
        for _ in range(repeat):
            timed_get(client, path, warm)
        out.append(warm.row())
    return out


def measure_corners(
    client: httpx.Client, conninfo: str, args: argparse.Namespace, report: Report, step: Callable[[str], None]
) -> None:
    """The corner parts of a run (rare and empty values, ladders, other pages), unless skipped."""
    if not args.skip_corners:
        step("rare and empty filter values")
        corners, missing = corner_values(conninfo)
        count_matches(conninfo, corners)
        report.meta["filter values without an empty value"] = ", ".join(missing) or "none"
        lazy = [p for p in (find_route(client, x) for x in LAZY_PATHS) if p]
        report.corners = bench_corners(client, corners, args.repeat, lazy)
    if not args.skip_ladders:
        step("dyad ladders")
        report.ladders = bench_ladders(client, largest_dyads(conninfo), args.repeat)
    if not args.skip_pages:
        step("lists, event page, API")
        report.pages = bench_pages(client, other_pages(conninfo), args.repeat)


# What the timeline loads after its first page, in the order the corner rows name them.
LAZY_PATHS = ("/timeline/facets", "/timeline/chart", "/timeline/count")


# ---- main ---------------------------------------------------------------------------------------
def cpu_gauge() -> float:
    """Seconds a fixed pure-Python loop of 5,000,000 additions takes.

    The benchmark VM's speed moved by 2x between hours (same code, same data), so each run carries this
    reading, taken at its start and again right before the import, to compare runs by.
    """
    began = time.perf_counter()
    total = 0
    for i in range(5_000_000):
        total += i
    return round(time.perf_counter() - began, 3)


def machine(conninfo: str) -> dict[str, Any]:
    """Where the figures come from."""
    with psycopg.connect(conninfo) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        count = conn.execute("SELECT count(*) FROM events WHERE deleted_at IS NULL").fetchone()
        settings: dict[str, str] = dict(
            conn.execute(
                "SELECT name, current_setting(name) FROM pg_settings WHERE name IN "
                "('shared_buffers', 'work_mem', 'jit', 'max_parallel_workers_per_gather')"
            ).fetchall()
        )
    return {
        "events": f"{int(count[0]) if count else 0:,}",
        "cpu": f"{os.cpu_count()} cores ({platform.processor() or platform.machine()})",
        "memory": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "postgresql": version[0] if version else "?",
        "pg settings": ", ".join(f"{k}={v}" for k, v in sorted(settings.items())),
        "python": platform.python_version(),
        "cpu gauge": f"{cpu_gauge()} s for 5,000,000 Python additions at the start (lower is faster)",
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options; every part can be skipped and every size set."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL"), help="default: $DATABASE_URL")
    p.add_argument("--port", type=int, default=0, help="port for the app (default: a free one)")
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    p.add_argument("--repeat", type=int, default=20, help="samples per timeline/facet measurement")
    p.add_argument("--deep", type=int, default=20, help="page number of the deep page (cursor followed)")
    p.add_argument("--import-rows", type=int, default=100_000)
    p.add_argument("--import-via", choices=["cli", "http"], default="cli")
    p.add_argument("--load-clients", type=int, default=32)
    p.add_argument("--load-seconds", type=float, default=30)
    p.add_argument(
        "--quick", action="store_true", help="tiny sizes: a smoke run that keeps the script working"
    )
    for part in ("timeline", "facets", "corners", "ladders", "pages", "export", "import", "load"):
        p.add_argument(f"--skip-{part}", action="store_true")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    if not args.database_url:
        p.error("set DATABASE_URL or pass --database-url")
    if args.quick:
        args.repeat, args.deep, args.import_rows = 2, 3, min(args.import_rows, 50)
        args.load_clients, args.load_seconds = min(args.load_clients, 4), min(args.load_seconds, 2)
    return args


def wait_for_facts(base: str, limit: float = 900) -> str:
    """Seconds until /healthz stops saying the facts copy is building."""
    began = time.monotonic()
    while time.monotonic() - began < limit:
        state = httpx.get(f"{base}/healthz", timeout=10).json().get("facts", "n/a")
        if state != "building":
            return f"{time.monotonic() - began:.1f} s after /healthz answered ({state})"
        time.sleep(0.2)
    raise SystemExit(f"the facts copy was not ready after {limit:.0f} s")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the report."""
    args = parse_args(argv)
    conninfo = libpq_url(args.database_url)
    password = "bench-" + secrets.token_urlsafe(18)
    subprocess.run(
        [sys.executable, "-m", "app.cli", "db", "upgrade"],
        cwd=ROOT,
        check=True,
        env={**os.environ, "DATABASE_URL": args.database_url},
        capture_output=True,
    )
    ensure_bench_user(conninfo, password)
    report = Report(meta=machine(conninfo))
    sets = filter_sets(conninfo)
    report.meta["filters"] = "; ".join(f"{k}: {urlencode(v) or '(none)'}" for k, v in sets.items())
    port = args.port or free_port()
    base = f"http://127.0.0.1:{port}"
    step: Callable[[str], None] = lambda msg: print(f"# {msg}", file=sys.stderr, flush=True)  # noqa: E731
    with app_server(args.database_url, port, args.workers) as proc:
        server = psutil.Process(proc.pid)
        step("waiting for the app's in-memory facts copy")
        report.meta["facts copy read at start"] = wait_for_facts(base)
        client = login(base, password)
        if not args.skip_timeline:
            step("timeline")
            report.timeline = bench_timeline(client, sets, args.repeat, args.deep)
        if not args.skip_facets:
            facet_path = find_route(
                client, "/facets", "/timeline/facets", "/api/v1/facets", "/api/v1/events/facets"
            )
            chart_path = find_route(
                client, "/chart", "/timeline/chart", "/chart.json", "/api/v1/chart", "/api/v1/events/chart"
            )
            count_path = find_route(client, "/timeline/count")
            paths = [p for p in (facet_path, chart_path, count_path) if p]
            if paths:
                step(f"facets and chart via {', '.join(paths)}")
                report.facets = bench_facets(client, sets, args.repeat, paths)
            else:
                step("no facet/chart endpoint found: the full timeline page above includes them")
        measure_corners(client, conninfo, args, report, step)
        if not args.skip_export and find_route(client, "/export.csv") is None:
            step("no /export.csv route in this app: export skipped")
        elif not args.skip_export:
            step("export")
            report.export = bench_export(client, server, conninfo, {})
        if not args.skip_load:
            step("load")
            report.load = bench_load(base, password, sets, args.load_clients, args.load_seconds)
        if not args.skip_import:
            step("import")
            report.import_ = bench_import(
                client, conninfo, args.database_url, args.import_rows, args.import_via == "cli"
            )
        client.close()
    text = report.markdown()
    print(text)
    if args.json:
        args.json.write_text(json.dumps(report.__dict__, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
