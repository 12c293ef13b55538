"""Error pages after a rollback: each write route that rolls back and then fails renders the app's page.

The request's session is closed before the error handler renders (as in production, unlike the shared
`app` fixture, whose session outlives the request), so a page that read the signed-in user from the ORM
after a rollback would fail with DetachedInstanceError and answer a bare 500.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.db import get_read_session, get_session
from app.main import create_app
from app.services.events import delete_event
from app.web import admin, event_forms, reference_edit, transfer
from tests.conftest import Client
from tests.factories import make_event
from tests.test_csv_import import commit_form, upload
from tests.test_forms import FULL_FORM as FORM


@pytest.fixture
def closing_client(connection: Connection, db: Session) -> Client:
    """A client whose requests each get a session of their own, closed when the request ends."""
    application = create_app()

    def own_session() -> Iterator[Session]:
        with Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False) as s:
            yield s

    application.dependency_overrides[get_session] = own_session
    application.dependency_overrides[get_read_session] = own_session
    return Client(application, db)


def _assert_page(response: Any, status: int, username: str) -> None:
    """The app's own error page, with the signed-in user in its header (read after the rollback)."""
    assert response.status_code == status, response.text[:500]
    assert "text/html" in response.headers["content-type"]
    assert "<h1>" in response.text and username in response.text
    assert "Traceback" not in response.text


def test_restoring_an_event_that_does_not_exist_is_the_404_page(closing_client: Client) -> None:
    admin_user = closing_client.login("admin")
    _assert_page(closing_client.post("/admin/events/999999/restore"), 404, admin_user.username)


def _database_down(*args: object, **kwargs: object) -> None:
    raise OperationalError("UPDATE events", {}, Exception("server closed the connection unexpectedly"))


def _deleted_event(db: Session) -> int:
    event = make_event(db)
    delete_event(db, event.id, None)
    db.commit()
    return event.id


# (route, module whose name the route calls, that name, the form it posts, role) for every web route that
# catches an error, rolls back and raises it on to the error handlers.
WRITE_ROUTES: list[tuple[str, Callable[[Session], str], Any, str, dict[str, str], str]] = [
    (
        "restore",
        lambda db: f"/admin/events/{_deleted_event(db)}/restore",
        admin,
        "restore_event",
        {},
        "admin",
    ),
    ("create", lambda db: "/events/new", event_forms, "create_event", FORM, "analyst"),
    (
        "update",
        lambda db: f"/events/{make_event(db).id}/edit",
        event_forms,
        "update_event",
        {**FORM, "version": "1"},
        "analyst",
    ),
    ("delete", lambda db: f"/events/{make_event(db).id}/delete", event_forms, "delete_event", {}, "analyst"),
    (
        "actor",
        lambda db: f"/actors/{make_event(db).actors[0].actor.id}/edit",
        reference_edit,
        "update_entry",
        {"name": "Sergei Ryabkov", "type": "person"},
        "analyst",
    ),
    (
        "system",
        lambda db: f"/systems/{make_event(db).systems[0].system.id}/edit",
        reference_edit,
        "update_entry",
        {"designation": "Kalibr"},
        "analyst",
    ),
]


@pytest.mark.parametrize(
    ("route", "path", "module", "name", "form", "role"), WRITE_ROUTES, ids=[r[0] for r in WRITE_ROUTES]
)
def test_a_failed_write_after_a_rollback_is_the_503_page(
    closing_client: Client,
    db: Session,
    monkeypatch: pytest.MonkeyPatch,
    route: str,
    path: Callable[[Session], str],
    module: Any,
    name: str,
    form: dict[str, str],
    role: str,
) -> None:
    user = closing_client.login(role)
    target = path(db)
    db.commit()
    monkeypatch.setattr(module, name, _database_down)
    data = {"client_token": str(uuid.uuid4()), **form, "confirm_duplicate": "1"}
    _assert_page(closing_client.post(target, data=data), 503, user.username)


def test_a_failed_merge_after_a_rollback_is_the_503_page(
    closing_client: Client, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = closing_client.login("admin")
    make_event(db)
    make_event(db, actors=[{"name": "Sergey Rybakov", "role": "speaker"}])
    db.commit()
    monkeypatch.setattr(reference_edit, "merge_entries", _database_down)
    form = {"keep": "Sergei Ryabkov", "drop": "Sergey Rybakov", "confirm": "1"}
    _assert_page(closing_client.post("/actors/merge", data=form), 503, user.username)


def test_a_failed_import_after_a_rollback_is_the_503_page(
    closing_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = closing_client.login("analyst")
    csv = "date,title,kind,status,suppliers,recipients\n2025-01,Imported,offer,reported,RUS,VEN\n"
    form = commit_form(upload(closing_client, csv).text)
    monkeypatch.setattr(transfer, "commit_import", _database_down)
    _assert_page(closing_client.post("/import/commit", data=form), 503, user.username)


def test_templates_read_the_principal_s_plain_values_not_its_orm_user() -> None:
    """What a page shows of the requester survives a rollback (see Principal); the ORM user may not."""
    from app.templating import ROOT

    readers = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "templates").rglob("*.html")
        if "principal.user." in path.read_text()
    ]
    assert not readers, f"read principal.username / .role / .user_id instead in {readers}"
