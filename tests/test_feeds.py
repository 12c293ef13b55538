"""Atom feeds: valid Atom 1.0 (feedparser), changes bring an event back, feed tokens open feeds only."""

from __future__ import annotations

import re
from html import unescape

import feedparser
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.feed_tokens import create_feed_token, revoke_feed_token
from app.models import AuditEntry, FeedToken, SavedView, User
from app.schemas import EventInput
from app.services.events import event_input, update_event
from tests.conftest import Client, make_user
from tests.factories import make_actor, make_event


def _token(db: Session, user: User | None = None) -> str:
    _, raw = create_feed_token(db, user or make_user(db, "viewer"), "reader")
    db.commit()
    return raw


def _fresh(client: Client) -> Client:
    """A client with no session: what a feed reader is."""
    return Client(client.http.app, client.db)


def _parse(body: bytes) -> feedparser.FeedParserDict:
    parsed = feedparser.parse(body)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    return parsed


def _set_status(db: Session, event_id: int, status: str, **more: object) -> None:
    from app.models import Event

    event = db.get(Event, event_id)
    assert event is not None
    data = event_input(event).model_dump()
    data.update(status=status, **more)
    update_event(db, event_id, EventInput.model_validate(data), None, event.version)
    db.commit()


def test_filter_feed_is_valid_atom_of_the_filter(client: Client, db: Session) -> None:
    make_event(db, title="Russia offers Kalibr")
    make_event(db, title="China ships drones", countries=[{"code": "CHN", "role": "supplier"}])
    raw = _token(db)
    r = _fresh(client).get(f"/feeds/{raw}/events.atom?supplier=RUS")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/atom+xml")
    feed = _parse(r.content)
    assert [e.title for e in feed.entries] == ["Russia offers Kalibr"]
    entry = feed.entries[0]
    assert entry.link.endswith(f"/events/{entry.id.split('/events/')[1].split('#')[0]}")
    assert "stage" in unescape(entry.content[0].value)
    assert feed.feed.title == "Signalboard: supplier Russia"
    # Everything, newest write first.
    everything = _parse(_fresh(client).get(f"/feeds/{raw}/events.atom").content)
    assert [e.title for e in everything.entries] == ["China ships drones", "Russia offers Kalibr"]


def test_status_change_brings_the_event_back_with_what_changed(client: Client, db: Session) -> None:
    claim = make_event(db, title="5,000 Igla-S deployed", status="claimed", kind="deployment")
    make_event(db, title="A later offer")
    db.commit()
    raw = _token(db)
    before = _parse(_fresh(client).get(f"/feeds/{raw}/events.atom").content)
    assert before.entries[0].title == "A later offer"
    first_id = next(e.id for e in before.entries if e.title.endswith("Igla-S deployed"))
    _set_status(db, claim.id, "confirmed")
    after = _parse(_fresh(client).get(f"/feeds/{raw}/events.atom").content)
    top = after.entries[0]
    assert top.title == "[status claimed → confirmed] 5,000 Igla-S deployed"
    assert top.id != first_id  # a new entry id: feed readers show it again
    assert "Status claimed → confirmed" in unescape(top.content[0].value)
    assert len(after.entries) == 2  # one entry per event
    # Moving up the ladder (kind) does too; an edit of the summary alone does not.
    _set_status(db, claim.id, "confirmed", kind="transfer")
    assert (
        _parse(_fresh(client).get(f"/feeds/{raw}/events.atom").content)
        .entries[0]
        .title.startswith("[kind deployment → transfer]")
    )
    other = make_event(db, title="Quiet event")
    db.commit()
    _set_status(db, claim.id, "confirmed", kind="transfer", summary="typo fixed")
    titles = [e.title for e in _parse(_fresh(client).get(f"/feeds/{raw}/events.atom").content).entries]
    assert titles[0] == other.title


@pytest.mark.parametrize(
    "token", ["nope", "sbf_short", "sbf_" + "A" * 43, "sb_" + "x" * 43, "sbf_" + "!" * 43]
)
def test_malformed_or_unknown_token_is_404_not_a_login_page(client: Client, token: str) -> None:
    r = _fresh(client).get(f"/feeds/{token}/events.atom")
    assert r.status_code == 404
    assert "location" not in r.headers


def test_revoked_token_and_disabled_user_get_404(client: Client, db: Session) -> None:
    user = make_user(db, "viewer")
    token, raw = create_feed_token(db, user, "reader")
    db.commit()
    assert _fresh(client).get(f"/feeds/{raw}/events.atom").status_code == 200
    assert db.get(FeedToken, token.id).last_used_at is not None  # type: ignore[union-attr]
    assert revoke_feed_token(db, user, token.id)
    db.commit()
    assert _fresh(client).get(f"/feeds/{raw}/events.atom").status_code == 404
    _, again = create_feed_token(db, user, "second")
    user.is_active = False
    db.commit()
    assert _fresh(client).get(f"/feeds/{again}/events.atom").status_code == 404


def test_feed_token_opens_no_page_and_no_api(client: Client, db: Session) -> None:
    raw = _token(db, make_user(db, "admin"))
    reader = _fresh(client)
    bearer = {"Authorization": f"Bearer {raw}"}
    assert reader.get("/api/v1/events", headers=bearer).status_code == 401
    assert reader.get("/", headers=bearer).status_code == 401
    assert reader.get(f"/?token={raw}").status_code == 303  # to the login page: not signed in
    assert reader.post("/api/v1/events", headers=bearer, json={}).status_code == 401
    assert reader.get(f"/feeds/{raw}/views/1.atom").status_code == 404


def test_view_feed_follows_the_view_and_its_privacy(client: Client, db: Session) -> None:
    make_event(db, title="Russia offers Kalibr")
    make_event(db, title="China ships drones", countries=[{"code": "CHN", "role": "supplier"}])
    owner = client.login("analyst")
    client.post("/views", data={"name": "China", "path": "/", "query": "supplier=CHN"})
    view = db.scalars(select(SavedView).where(SavedView.name == "China")).one()
    mine = _token(db, owner)
    feed = _parse(_fresh(client).get(f"/feeds/{mine}/views/{view.id}.atom").content)
    assert feed.feed.title == "Signalboard: China"
    assert [e.title for e in feed.entries] == ["China ships drones"]
    stranger = _token(db)
    assert _fresh(client).get(f"/feeds/{stranger}/views/{view.id}.atom").status_code == 404
    client.post(f"/views/{view.id}/share", data={"shared": "1"})
    assert _fresh(client).get(f"/feeds/{stranger}/views/{view.id}.atom").status_code == 200


def test_feed_keeps_working_when_a_name_is_gone_and_says_so(client: Client, db: Session) -> None:
    make_event(db)
    raw = _token(db)
    r = _fresh(client).get(f"/feeds/{raw}/events.atom?actor=Nobody+Known&kind=offer")
    feed = _parse(r.content)
    assert "Left out" in feed.feed.subtitle and "Nobody Known" in feed.feed.subtitle
    assert len(feed.entries) == 1


def test_subscribe_page_makes_the_feed_address_once(client: Client, db: Session) -> None:
    make_event(db)
    client.login("viewer")
    page = client.get("/feeds/new?path=/&supplier=RUS")
    assert page.status_code == 200 and "YOUR-FEED-TOKEN/events.atom?supplier=RUS" in page.text
    made = client.post("/feeds/new?path=/&supplier=RUS", data={"name": "My reader"})
    assert made.status_code == 200
    url = re.search(r'id="feed-url" class="token-value" value="([^"]+)"', made.text)
    assert url
    address = unescape(url.group(1))
    assert "/feeds/sbf_" in address and address.endswith("/events.atom?supplier=RUS")
    path = address.split("testserver", 1)[1]
    assert _parse(_fresh(client).get(path).content).entries
    refused = client.post("/feeds/new?path=/", data={"name": ""})
    assert refused.status_code == 422 and "name of 1–100" in refused.text
    assert client.db.scalars(
        select(AuditEntry).where(AuditEntry.entity_type == "feed_token", AuditEntry.action == "create")
    ).first()


def test_account_page_lists_creates_and_revokes_feed_tokens(client: Client, db: Session) -> None:
    user = client.login("viewer")
    r = client.post("/account/feed-tokens", data={"name": "Reader app"})
    assert r.status_code == 200
    shown = re.search(r'id="new-feed-token" class="token-value" value="(sbf_[^"]+)"', r.text)
    assert shown
    token = db.scalars(select(FeedToken).where(FeedToken.user_id == user.id)).one()
    assert token.token_hash != shown.group(1) and shown.group(1) not in client.get("/account").text  # hashed
    assert "Reader app" in client.get("/account").text
    assert client.post("/account/feed-tokens", data={"name": ""}).status_code == 422
    assert client.post(f"/account/feed-tokens/{token.id}/revoke").status_code == 303
    assert _fresh(client).get(f"/feeds/{shown.group(1)}/events.atom").status_code == 404
    assert "Reader app" not in client.get("/account").text
    other = make_user(db, "viewer")
    _, _raw = create_feed_token(db, other, "theirs")
    theirs = db.scalars(select(FeedToken).where(FeedToken.user_id == other.id)).one()
    db.commit()
    assert client.post(f"/account/feed-tokens/{theirs.id}/revoke").status_code == 404


def test_actor_alias_in_feed_filter(client: Client, db: Session) -> None:
    make_actor(db, "Sergei Ryabkov", aliases=["Sergey Rybakov"])
    make_event(db)
    raw = _token(db)
    feed = _parse(_fresh(client).get(f"/feeds/{raw}/events.atom?actor=Sergey+Rybakov").content)
    assert len(feed.entries) == 1


def test_wide_filters_walk_the_newest_writes_to_the_same_entries(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A filter of many events walks the audit log in keyset pages; the entries are the same as by id."""
    from app.queries import watch
    from tests.factories import from_mapping

    for i in range(5):
        make_event(db, title=f"Russian offer {i}")
    make_event(db, title="Chinese offer", countries=[{"code": "CHN", "role": "supplier"}])
    db.commit()
    first = db.scalars(select(AuditEntry.entity_id).where(AuditEntry.entity_type == "event")).first()
    assert first is not None
    _set_status(db, first, "confirmed")
    f = from_mapping({"supplier": "RUS"})
    by_id = [(i.event.id, i.audit_id) for i in watch.feed_items(db, f, 4)]
    monkeypatch.setattr(watch, "BY_ID_LIMIT", 0)
    monkeypatch.setattr(watch, "WALK_BATCH", 2)
    walked = [(i.event.id, i.audit_id) for i in watch.feed_items(db, f, 4)]
    assert walked == by_id and len(by_id) == 4 and by_id[0][0] == first
