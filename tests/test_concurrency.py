"""Many hands at once through HTTP: one success per version, conflicts for the rest, no duplicates."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.auth.sessions import COOKIE_NAME, start_session
from app.models import AuditEntry, Event
from app.schemas import EventInput
from app.services.events import create_event, event_input, load_event
from app.web.forms import form_from_input
from tests.conftest import make_user
from tests.factories import event_data

pytestmark = [pytest.mark.concurrency, pytest.mark.slow]

WRITERS = 50
ROUNDS = 3


def sessions(engine: Engine, base: str, n: int) -> list[httpx.Client]:
    """n HTTP clients, each logged in as its own analyst (sessions made directly: no login rate limit)."""
    clients = []
    with Session(engine) as s:
        for _ in range(n):
            user = make_user(s, "analyst")
            token = start_session(s, user, "127.0.0.1", "pytest-concurrency")
            s.flush()
            from app.auth.sessions import load_session

            found = load_session(s, token)
            assert found is not None
            clients.append(
                httpx.Client(
                    base_url=base,
                    cookies={COOKIE_NAME: token},
                    headers={"X-CSRF-Token": found.csrf_token},
                    follow_redirects=False,
                    timeout=120,
                )
            )
        s.commit()
    return clients


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def post_form(client: httpx.Client, url: str, pairs: list[tuple[str, str]]) -> httpx.Response:
    """POST repeated-key form pairs exactly as a browser would."""
    return client.post(url, content=urlencode(pairs), headers=FORM)


def all_at_once(clients: list[httpx.Client], call: Callable[[int, httpx.Client], Any]) -> list[Any]:
    """Run call(i, client) for every client in its own thread, released together by a barrier."""
    barrier = threading.Barrier(len(clients))

    def run(i: int) -> Any:
        barrier.wait(30)
        return call(i, clients[i])

    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        return list(pool.map(run, range(len(clients))))


@pytest.fixture
def clients(engine: Engine, live_server: str) -> Iterator[list[httpx.Client]]:
    """WRITERS logged-in analysts against the live server."""
    made = sessions(engine, live_server, WRITERS)
    yield made
    for c in made:
        c.close()


def audited_titles(engine: Engine, event_id: int) -> list[str]:
    """The title each audited update of the event wrote, in order."""
    with Session(engine) as s:
        updates = s.scalars(
            select(AuditEntry)
            .where(AuditEntry.entity_type == "event", AuditEntry.entity_id == event_id)
            .where(AuditEntry.action == "update")
            .order_by(AuditEntry.id)
        ).all()
    return [u.changes["title"]["after"] for u in updates]


def new_event(engine: Engine) -> int:
    """One committed event to fight over."""
    with Session(engine) as s:
        event_id = create_event(s, EventInput.model_validate(event_data()), None).id
        s.commit()
    return event_id


def test_fifty_concurrent_form_edits_one_wins_per_version(
    engine: Engine, live_server: str, clients: list[httpx.Client]
) -> None:
    event_id = new_event(engine)
    winners: list[str] = []
    for round_no in range(ROUNDS):
        with Session(engine) as s:
            loaded = load_event(s, event_id)
            version = loaded.version
            base_form = form_from_input(event_input(loaded), version).pairs()

        def edit(i: int, client: httpx.Client, round_no: int = round_no, base_form: Any = base_form) -> Any:
            title = f"Round {round_no} edit by writer {i}"
            data = [(k, v) for k, v in base_form if k != "title"] + [("title", title)]
            r = post_form(client, f"/events/{event_id}/edit", data)
            return title, r.status_code, r.text

        results = all_at_once(clients, edit)
        codes = sorted(code for _, code, _ in results)
        assert codes.count(303) == 1, f"round {round_no}: {codes}"
        assert codes.count(409) == WRITERS - 1, f"round {round_no}: {codes}"
        for _, code, text in results:
            if code == 409:
                assert "Someone saved this event while you were editing" in text
                assert f'name="version" value="{version + 1}"' in text
        winners.append(next(title for title, code, _ in results if code == 303))

    with Session(engine) as s:
        event = s.get(Event, event_id)
        assert event is not None
        assert event.version == 1 + ROUNDS
        assert event.title == winners[-1]  # exactly the last winner's change, nothing else
    # One audit row per success, each holding that winner's title: no change lost or doubled.
    assert audited_titles(engine, event_id) == winners


def test_twenty_identical_form_creates_make_one_event(
    engine: Engine, live_server: str, clients: list[httpx.Client]
) -> None:
    token = str(uuid.uuid4())
    data = EventInput.model_validate(event_data(title="Posted twenty times at once"))
    form = [*form_from_input(data).pairs(), ("client_token", token), ("confirm_duplicate", "1")]

    def create(i: int, client: httpx.Client) -> tuple[int, str]:
        r = post_form(client, "/events/new", form)
        return r.status_code, r.headers.get("location", "")

    results = all_at_once(clients[:20], create)
    with Session(engine) as s:
        made = s.scalars(select(Event).where(Event.client_token == uuid.UUID(token))).all()
        assert len(made) == 1
        event_id = made[0].id
        creates = s.scalar(
            select(func.count(AuditEntry.id)).where(
                AuditEntry.entity_type == "event", AuditEntry.action == "create"
            )
        )
        assert creates == 1
    # Every poster is sent to the one event that exists.
    assert results == [(303, f"/events/{event_id}?saved=1")] * 20


# ---- the JSON API ----------------------------------------------------------------------------------
def api_clients(engine: Engine, base: str, n: int) -> list[httpx.Client]:
    """n HTTP clients, each with the personal access token of its own analyst."""
    from app.auth.tokens import new_token, sha256
    from app.models import ApiToken

    clients = []
    with Session(engine) as s:
        for _ in range(n):
            user = make_user(s, "analyst")
            raw = new_token()
            s.add(ApiToken(user_id=user.id, name="concurrency", token_hash=sha256(raw), prefix=raw[:8]))
            clients.append(
                httpx.Client(base_url=base, headers={"Authorization": f"Bearer {raw}"}, timeout=120)
            )
        s.commit()
    return clients


@pytest.fixture
def api_users(engine: Engine, live_server: str) -> Iterator[list[httpx.Client]]:
    """WRITERS API clients against the live server."""
    made = api_clients(engine, live_server, WRITERS)
    yield made
    for c in made:
        c.close()


def test_fifty_concurrent_api_edits_one_wins_per_version(
    engine: Engine, live_server: str, api_users: list[httpx.Client]
) -> None:
    event_id = new_event(engine)
    winners: list[str] = []
    for round_no in range(ROUNDS):
        version = api_users[0].get(f"/api/v1/events/{event_id}").json()["version"]

        def edit(i: int, client: httpx.Client, round_no: int = round_no, version: int = version) -> Any:
            title = f"API round {round_no} edit by client {i}"
            r = client.patch(f"/api/v1/events/{event_id}", json={"title": title, "version": version})
            return title, r.status_code, r.json()

        results = all_at_once(api_users, edit)
        codes = sorted(code for _, code, _ in results)
        assert codes.count(200) == 1, f"round {round_no}: {codes}"
        assert codes.count(409) == WRITERS - 1, f"round {round_no}: {codes}"
        winner = next(title for title, code, _ in results if code == 200)
        for _, code, body in results:
            if code == 409:
                # Every loser is told the version that won, with the winner's change in it.
                assert body["current_version"] == version + 1
                assert body["current"]["title"] == winner
        winners.append(winner)

    final = api_users[0].get(f"/api/v1/events/{event_id}").json()
    assert (final["version"], final["title"]) == (1 + ROUNDS, winners[-1])
    assert audited_titles(engine, event_id) == winners


def test_twenty_identical_api_creates_with_one_client_token_make_one_event(
    engine: Engine, live_server: str, api_users: list[httpx.Client]
) -> None:
    token = str(uuid.uuid4())
    payload = event_data(title="Created twenty times at once by the API", client_token=token)

    def create(i: int, client: httpx.Client) -> tuple[int, int]:
        r = client.post("/api/v1/events", json=payload)
        return r.status_code, r.json()["id"]

    results = all_at_once(api_users[:20], create)
    assert {code for code, _ in results} <= {200, 201}, results
    ids = {event_id for _, event_id in results}
    assert len(ids) == 1, results  # everyone got the same event back
    with Session(engine) as s:
        made = s.scalars(select(Event).where(Event.client_token == uuid.UUID(token))).all()
        assert [e.id for e in made] == list(ids)
        creates = s.scalar(
            select(func.count(AuditEntry.id)).where(
                AuditEntry.entity_type == "event", AuditEntry.action == "create"
            )
        )
        assert creates == 1
