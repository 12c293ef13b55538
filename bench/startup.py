"""Seconds from `uvicorn --workers N` start until every worker's /healthz says 200, and their memory.

    PYTHONPATH=. python -m bench.startup --workers 2 --repeat 3  (DATABASE_URL, else sb_bench on localhost)

uvicorn's workers share one listening socket, so a poll reaches whichever worker accepts it. The app is
started through `app_with_pid` below, which adds the answering process's id as a response header, so the
probe knows when *every* worker has answered 200 (a poll that reached a ready worker says nothing about
the other one). Each run prints the CPU gauge of bench/run.py beside its figures: the machine is shared.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgresql://postgres@127.0.0.1/sb_bench"


def app_with_pid() -> Any:
    """The app (uvicorn --factory), each response saying which process answered (X-Worker-Pid)."""
    from app.main import create_app

    app = create_app()

    @app.middleware("http")
    async def worker_pid(request: Any, call_next: Any) -> Any:
        response = await call_next(request)
        response.headers["X-Worker-Pid"] = str(os.getpid())
        return response

    return app


class ServerCpu:
    """CPU seconds of the PostgreSQL backends serving the app's processes (the server runs on this host).

    Sampled at every poll: the backends of the start-up read exit when it is done, so each keeps the
    last reading seen (a few tens of milliseconds short at most).
    """

    def __init__(self, database_url: str) -> None:
        import psycopg

        self.conn = psycopg.connect(database_url, autocommit=True)
        self.port = self.conn.info.port
        self.seen: dict[int, float] = {}  # a server elsewhere: nothing to see (the figure stays 0)

    def sample(self, app: psutil.Process) -> None:
        ports = []
        for p in [app, *app.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                conns = p.net_connections(kind="tcp")
                ports += [c.laddr.port for c in conns if c.raddr and c.raddr.port == self.port]
        if not ports:
            return
        rows = self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE client_port = ANY(%s)", (ports,)
        ).fetchall()
        for (pid,) in rows:
            with contextlib.suppress(psutil.Error):
                self.seen[pid] = max(self.seen.get(pid, 0.0), sum(psutil.Process(pid).cpu_times()[:2]))

    def total(self) -> float:
        return sum(self.seen.values())


def start_once(database_url: str, workers: int, timeout: float, settle: float) -> dict[str, Any]:
    """Start the app, poll /healthz until every worker said 200, stop it; seconds and RSS per worker."""
    from bench.run import free_port, server_command  # here, not at the top: the workers import this module

    port = free_port()
    cmd, env = server_command(database_url, port, workers, factory="bench.startup:app_with_pid")
    began = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    app = psutil.Process(proc.pid)
    server = ServerCpu(database_url)
    first_answer: dict[int, float] = {}  # pid -> seconds to its first answer (503 while starting)
    ready: dict[int, float] = {}  # pid -> seconds to its first 200
    try:
        deadline = time.monotonic() + timeout
        while len(ready) < workers:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the app did not start or not every worker became ready")
            server.sample(app)
            try:
                # A new connection per poll, so polls spread over the workers.
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2, headers={"Connection": "close"})
            except httpx.HTTPError:
                time.sleep(0.05)
                continue
            now = time.perf_counter() - began
            pid = int(r.headers.get("X-Worker-Pid", "0"))
            first_answer.setdefault(pid, now)
            if r.status_code == 200:
                ready.setdefault(pid, now)
            time.sleep(0.05)
        rss, cpu = {}, {}
        for pid in ready:
            try:
                worker = psutil.Process(pid)
                rss[pid] = worker.memory_info().rss / 2**20
                cpu[pid] = sum(worker.cpu_times()[:2])
            except psutil.Error:
                rss[pid] = cpu[pid] = float("nan")
        # Later: the start-up work that does not gate readiness (export lines, quick add) has run.
        time.sleep(settle)
        settled = {}
        for pid in ready:
            try:
                settled[pid] = psutil.Process(pid).memory_info().rss / 2**20
            except psutil.Error:
                settled[pid] = float("nan")
        return {
            "settled_rss_mb": sorted(settled.values()),
            "all_ready_s": max(ready.values()),
            "ready_s": sorted(ready.values()),
            "first_answer_s": sorted(first_answer.values()),
            "rss_mb": sorted(rss.values()),
            "cpu_s": sorted(cpu.values()),
            "server_cpu_s": server.total(),
        }
    finally:
        server.conn.close()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def main(argv: list[str] | None = None) -> int:
    """Measure start-up `--repeat` times and print one line per run plus the median."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--settle", type=float, default=10, help="seconds after ready to read RSS again")
    args = parser.parse_args(argv)
    from bench.run import cpu_gauge

    totals = []
    for i in range(args.repeat):
        gauge = cpu_gauge()
        load = os.getloadavg()[0]
        run = start_once(args.database_url, args.workers, args.timeout, args.settle)
        totals.append(run["all_ready_s"])
        print(
            f"run {i + 1}: every worker ready {run['all_ready_s']:.2f} s"
            f" (workers {', '.join(f'{s:.2f}' for s in run['ready_s'])};"
            f" first answer {', '.join(f'{s:.2f}' for s in run['first_answer_s'])})"
            f" | RSS MB {', '.join(f'{m:.0f}' for m in run['rss_mb'])}"
            f" ({', '.join(f'{m:.0f}' for m in run['settled_rss_mb'])} {args.settle:.0f} s later)"
            f" | CPU s: workers {', '.join(f'{c:.1f}' for c in run['cpu_s'])},"
            f" their PostgreSQL backends {run['server_cpu_s']:.1f}"
            f" | gauge {gauge:.3f} s, load {load:.1f}",
            flush=True,
        )
        time.sleep(2)  # let the closed connections' backends go
    print(f"median every-worker-ready: {statistics.median(totals):.2f} s over {len(totals)} runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
