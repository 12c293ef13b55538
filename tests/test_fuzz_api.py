"""API fuzzing: schemathesis drives every /api/v1 operation from /openapi.json, logged in with a token.

Every operation gets 100 generated cases (valid and invalid; FUZZ_CASES overrides) and every check
schemathesis has: no 5xx, valid requests accepted, invalid ones refused, and every response matching its
documented status codes, content type, headers and schema. Runs in-process against the ASGI app on a
database of its own holding a handful of events, so it stays within CI's time budget."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app import migrate
from app.auth.tokens import sha256
from app.db import get_read_session, get_session
from app.main import create_app
from app.models import ApiToken
from tests.conftest import make_user
from tests.factories import make_event
from tests.test_backup import scratch_database

pytestmark = [pytest.mark.fuzz, pytest.mark.slow]

CASES_PER_OPERATION = int(os.environ.get("FUZZ_CASES", "100"))


@pytest.fixture(scope="module")
def fuzz_db() -> Iterator[Engine]:
    """A database of its own: the demo-like handful of events the fuzzer reads, edits and deletes."""
    with scratch_database("signalboard_fuzz") as eng:
        with eng.connect() as conn:
            migrate.upgrade(conn)
            conn.commit()
        with Session(eng) as s:
            for i in range(5):
                make_event(s, title=f"Fuzz target {i}", date=f"2025-0{i + 1}")
            s.commit()
        yield eng


# The token schemathesis sends for the HTTPBearer scheme (known to it, so its missing-auth cases stay
# missing); the fixture below stores its hash for an admin.
RAW_TOKEN = "sbt_" + secrets.token_urlsafe(32)


@pytest.fixture(scope="module", autouse=True)
def token(fuzz_db: Engine) -> str:
    """A personal access token of an admin (every operation is allowed, so every code path is reached)."""
    raw = RAW_TOKEN
    with Session(fuzz_db) as s:
        user = make_user(s, "admin", f"fuzzer-{secrets.token_hex(2)}")
        s.add(ApiToken(user_id=user.id, name="fuzz", token_hash=sha256(raw), prefix=raw[:12]))
        s.commit()
    return raw


# Built at import: schemathesis parametrizes the test per operation at collection time. The schema comes
# from the app itself (no database needed); requests reach the fuzz database through the override below.
APP = create_app()
CONFIG = schemathesis.Config.from_dict(
    {
        "auth": {"openapi": {"HTTPBearer": {"bearer": RAW_TOKEN}}},
        # NUL in an address is refused by middleware before routing (400, tested below); PostgreSQL text
        # cannot hold it, so generating it would only re-test that one refusal on every operation.
        "generation": {"allow-x00": False},
        # Every check schemathesis has, with its default expectations: a schema-valid request must be
        # accepted (positive data acceptance), an invalid one refused (negative data rejection), and every
        # answer must be documented (status, content type, headers, body schema).
        "checks": {"enabled": True},
        "operations": [
            {
                # Rules no schema can state, refused with a 422 that names the field and why: names and
                # codes checked against the data (actor, system, country), a date in the future or an end
                # before its start, a cursor that does not decode, a system's parent that names nothing or
                # would make a loop, a designation another system owns. Only these operations may answer a
                # schema-valid request so; every other status stays as strict as the default.
                "include-name-regex": "^(GET /api/v1/events|(POST|PUT|PATCH) /api/v1/events.*"
                "|PATCH /api/v1/systems/.*)$",
                "checks": {
                    "positive_data_acceptance": {
                        "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]
                    }
                },
            }
        ],
    }
)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP, config=CONFIG).include(path_regex="^/api/v1/")


@pytest.fixture(scope="module", autouse=True)
def on_fuzz_db(fuzz_db: Engine) -> Iterator[None]:
    """Point the app's sessions at the fuzz database (real commits, as in production)."""

    def session() -> Iterator[Session]:
        with Session(fuzz_db, expire_on_commit=False) as s:
            yield s

    APP.dependency_overrides[get_session] = session
    APP.dependency_overrides[get_read_session] = session
    yield
    APP.dependency_overrides.clear()


@schema.parametrize()
@settings(
    max_examples=CASES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,  # the same cases on every run: a CI failure reproduces locally
)
def test_api_operation(case: schemathesis.Case) -> None:
    case.call_and_validate()


def test_every_api_operation_is_fuzzed(fuzz_db: Engine) -> None:
    """The fuzzer sees the whole API (a schema that lost its operations would pass vacuously)."""
    operations = {f"{op.method.upper()} {op.path}" for op in (r.ok() for r in schema.get_all_operations())}
    for expected in (
        "GET /api/v1/events",
        "POST /api/v1/events",
        "GET /api/v1/events/{event_id}",
        "PUT /api/v1/events/{event_id}",
        "DELETE /api/v1/events/{event_id}",
    ):
        assert expected in operations, sorted(operations)
    with fuzz_db.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM events")) >= 5


def test_nul_in_the_address_is_refused_cleanly(fuzz_db: Engine) -> None:
    from fastapi.testclient import TestClient

    with TestClient(APP) as http:
        r = http.get("/api/v1/events?q=a%00b", headers={"Authorization": f"Bearer {RAW_TOKEN}"})
    assert r.status_code == 400
    assert r.json() == {"detail": "The address contains a NUL character."}


def test_an_id_beyond_the_database_range_is_a_422_not_a_crash(fuzz_db: Engine) -> None:
    from fastapi.testclient import TestClient

    auth = {"Authorization": f"Bearer {RAW_TOKEN}"}
    with TestClient(APP) as http:
        for path in ("/api/v1/events/2147483648", "/api/v1/actors/9999999999", "/api/v1/systems/2147483648"):
            r = http.get(path, headers=auth)
            assert r.status_code == 422, (path, r.text)
            # Refused by the documented range of the path parameter (1..2^31-1) before the database.
            assert r.json()["detail"][0]["loc"][0] == "path"


def test_anonymous_api_writes_are_told_to_authenticate(fuzz_db: Engine) -> None:
    from fastapi.testclient import TestClient

    with TestClient(APP) as http:
        r = http.post("/api/v1/events", json={"title": "x"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"


def test_405_lists_every_method_of_the_path(fuzz_db: Engine) -> None:
    from fastapi.testclient import TestClient

    with TestClient(APP) as http:
        r = http.request("OPTIONS", "/api/v1/events/1", headers={"Authorization": f"Bearer {RAW_TOKEN}"})
    assert r.status_code == 405
    assert set(r.headers["allow"].split(", ")) >= {"GET", "PUT", "PATCH", "DELETE"}
