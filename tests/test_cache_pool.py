"""The aggregate cache computes once per key under concurrency; the pool is sized and bounded; JIT is off."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from app.db import CONNECT_ARGS, MAX_OVERFLOW, POOL_SIZE, WORKER_THREADS, get_engine, get_session
from app.main import create_app
from app.queries import cache


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


def run_threads(n: int, target) -> list[object]:
    results: list[object] = [None] * n

    def run(i: int) -> None:
        try:
            results[i] = target()
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return results


def test_concurrent_misses_compute_once() -> None:
    calls = []

    def compute() -> int:
        calls.append(1)
        time.sleep(0.3)
        return 42

    results = run_threads(12, lambda: cache.cached(("k", 1), compute))
    assert results == [42] * 12
    assert len(calls) == 1


def test_waiters_see_the_leaders_error_and_the_next_call_retries() -> None:
    calls = []

    def failing() -> int:
        calls.append(1)
        time.sleep(0.2)
        raise RuntimeError("boom")

    results = run_threads(5, lambda: cache.cached(("e", 1), failing))
    assert all(isinstance(r, RuntimeError) for r in results)
    assert len(calls) == 1
    assert cache.cached(("e", 1), lambda: 7) == 7  # an error is not cached


def test_expired_entry_is_served_stale_while_one_thread_refreshes(monkeypatch: pytest.MonkeyPatch) -> None:
    assert cache.cached(("s", 1), lambda: "old") == "old"
    monkeypatch.setattr(cache, "MAX_AGE_SECONDS", 0.0)
    started = threading.Event()
    release = threading.Event()

    def slow_refresh() -> str:
        started.set()
        release.wait(5)
        return "new"

    leader = threading.Thread(target=lambda: cache.cached(("s", 1), slow_refresh))
    leader.start()
    assert started.wait(5)
    t0 = time.monotonic()
    assert cache.cached(("s", 1), lambda: "should not run") == "old"
    assert time.monotonic() - t0 < 0.5
    release.set()
    leader.join(5)
    monkeypatch.setattr(cache, "MAX_AGE_SECONDS", 60.0)
    assert cache.cached(("s", 1), lambda: "x") == "new"


def test_app_connections_run_without_jit_and_the_pool_covers_the_threadpool(engine: Engine) -> None:
    with get_engine().connect() as conn:
        assert conn.scalar(text("SHOW jit")) == "off"
    assert POOL_SIZE + MAX_OVERFLOW >= WORKER_THREADS + 2  # every route thread, plus background reads
    # Two workers and a CLI cannot exhaust a default PostgreSQL (max_connections 100, 3 reserved).
    assert 3 * (POOL_SIZE + MAX_OVERFLOW) <= 97


def test_the_app_runs_sync_routes_on_the_bounded_threadpool(engine: Engine) -> None:
    """The lifespan bounds the threads that run sync routes, so they cannot outnumber the pool."""
    import anyio.to_thread
    from fastapi.testclient import TestClient

    with TestClient(create_app()) as web:
        assert web.portal is not None
        tokens = web.portal.call(lambda: anyio.to_thread.current_default_thread_limiter().total_tokens)
    assert tokens == WORKER_THREADS


def test_exhausted_pool_answers_503_with_retry_after(engine: Engine, db: Session) -> None:
    """A real one-connection pool, held by the test, so the request's checkout times out."""
    tiny = create_engine(engine.url, pool_size=1, max_overflow=0, pool_timeout=0.2, connect_args=CONNECT_ARGS)
    app = create_app()

    def session_from_tiny() -> Iterator[Session]:
        with Session(bind=tiny) as s:
            s.execute(text("SELECT 1"))
            yield s

    app.dependency_overrides[get_session] = session_from_tiny
    from fastapi.testclient import TestClient

    held = tiny.connect()
    try:
        client = TestClient(app, raise_server_exceptions=False)
        response = client.get("/login")
        json_response = client.get("/api/v1/actors", headers={"Accept": "application/json"})
    finally:
        held.close()
        tiny.dispose()
    for r in (response, json_response):
        assert r.status_code == 503, r.text[:300]
        assert r.headers["Retry-After"] == "5"
        assert "Traceback" not in r.text and "QueuePool" not in r.text
    assert "Server busy" in response.text


def test_a_request_takes_one_connection_without_a_replica(db: Session) -> None:
    """The read session is the request's own session: a route taking both holds one connection."""
    from app.db import get_read_session

    reads = get_read_session(db)
    assert next(reads) is db
    with pytest.raises(StopIteration):
        next(reads)
