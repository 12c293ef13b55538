"""Links between events: shown on both event pages with the inverse wording, added and removed from the
page and the API, refused with a clear message when bad, in both histories, and offering a status."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import AuditEntry, Event, EventLink
from app.services.events import delete_event
from app.services.links import LinkRefused, add_link, parse_ref, remove_link
from tests.conftest import Client
from tests.factories import make_event


@pytest.fixture
def claim_and_denial(db: Session) -> tuple[int, int]:
    claim = make_event(db, title="5,000 Igla-S deployed in Venezuela", kind="deployment", status="claimed")
    denial = make_event(db, title="Kremlin denies Igla-S deployment", kind="denial", status="reported")
    db.commit()
    return claim.id, denial.id


def history(db: Session, event_id: int) -> list[AuditEntry]:
    stmt = select(AuditEntry).where(AuditEntry.entity_type == "event", AuditEntry.entity_id == event_id)
    return list(db.scalars(stmt.order_by(AuditEntry.id)))


def test_parse_ref() -> None:
    assert parse_ref("12") == parse_ref("#12") == parse_ref(" #12 · Kremlin denies") == 12
    assert parse_ref("Kremlin") is None and parse_ref("") is None
    assert parse_ref("2025 Igla-S deal") is None  # title words starting with a year name no event


def test_a_link_shows_on_both_pages_with_the_inverse_wording(
    analyst: Client, db: Session, claim_and_denial: tuple[int, int]
) -> None:
    claim, denial = claim_and_denial
    page = analyst.get(f"/events/{denial}").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token and 'id="link-form"' in page
    r = analyst.post(f"/events/{denial}/links", data={"type": "denies", "target": f"#{claim} · 5,000 Igla-S"})
    assert r.status_code == 303 and r.headers["location"].startswith(f"/events/{denial}")
    source_page = analyst.get(f"/events/{denial}").text
    target_page = analyst.get(f"/events/{claim}").text
    assert re.search(
        rf'link-words">denies</span>\s*<a href="/events/{claim}">#{claim} 5,000 Igla-S', source_page
    )
    assert re.search(
        rf'link-words">denied by</span>\s*<a href="/events/{denial}">#{denial} Kremlin', target_page
    )
    # Both histories say so; the claim's status is untouched without the box ticked.
    assert history(db, denial)[-1].action == "link" and history(db, claim)[-1].action == "link"
    assert history(db, claim)[-1].changes["links"]["after"] == f"denied by #{denial}"
    assert "Linked" in target_page  # the history's words
    assert analyst.get(f"/api/v1/events/{claim}").json()["status"] == "claimed"


def test_a_denial_offers_to_set_the_status(db: Session, claim_and_denial: tuple[int, int]) -> None:
    claim, denial = claim_and_denial
    add_link(db, denial, claim, "denies", None, set_status=True)
    rows = history(db, claim)
    assert rows[-1].action == "update" and rows[-1].changes["status"] == {
        "before": "claimed",
        "after": "denied",
    }
    assert rows[-1].reason == f"denied by #{denial}"
    retraction = make_event(db, title="TASS retracts", kind="statement")
    other = make_event(db, title="Another claim", status="claimed")
    add_link(db, retraction.id, other.id, "retracts", None, set_status=True)
    assert history(db, other.id)[-1].changes["status"]["after"] == "retracted"
    follow = make_event(db, title="Follow-up", status="claimed")
    add_link(db, follow.id, other.id, "follows_up", None, set_status=True)  # no status to offer
    assert history(db, other.id)[-1].action == "link"


def test_bad_links_get_a_clear_message(db: Session, claim_and_denial: tuple[int, int]) -> None:
    claim, denial = claim_and_denial
    with pytest.raises(LinkRefused, match="itself"):
        add_link(db, claim, claim, "same_as", None)
    with pytest.raises(LinkRefused, match="no event #999999"):
        add_link(db, claim, 999999, "confirms", None)
    with pytest.raises(LinkRefused, match="unknown link type"):
        add_link(db, claim, denial, "supports", None)
    with pytest.raises(LinkRefused, match="number"):
        add_link(db, claim, None, "confirms", None)
    add_link(db, denial, claim, "denies", None)
    with pytest.raises(LinkRefused, match="already denies"):
        add_link(db, denial, claim, "denies", None)
    gone = make_event(db, title="Deleted one")
    delete_event(db, gone.id, None)
    with pytest.raises(LinkRefused, match="was deleted"):
        add_link(db, claim, gone.id, "confirms", None)


def test_bad_links_on_the_page_keep_the_input(analyst: Client, claim_and_denial: tuple[int, int]) -> None:
    claim, _ = claim_and_denial
    for target, message in (
        (f"#{claim}", "itself"),
        ("#999999", "no event #999999"),
        ("Igla", "number"),
        ("#99999999999", "no event #99999999999"),
    ):
        r = analyst.post(f"/events/{claim}/links", data={"type": "confirms", "target": target})
        assert r.status_code == 422 and message in r.text
        assert f'value="{target}"' in r.text and 'aria-invalid="true"' in r.text


def test_removing_a_link_from_either_end(
    analyst: Client, db: Session, claim_and_denial: tuple[int, int]
) -> None:
    claim, denial = claim_and_denial
    link = add_link(db, denial, claim, "denies", None)
    db.commit()
    r = analyst.post(f"/events/{claim}/links/{link.id}/delete")
    assert r.status_code == 303
    assert db.get(EventLink, link.id) is None
    assert history(db, denial)[-1].action == "unlink" and history(db, claim)[-1].action == "unlink"
    with pytest.raises(LinkRefused):
        remove_link(db, link.id, claim, None)


def test_links_to_deleted_events_leave_the_pages(db: Session, analyst: Client) -> None:
    a = make_event(db, title="Kept")
    b = make_event(db, title="Soon deleted")
    add_link(db, a.id, b.id, "same_as", None)
    delete_event(db, b.id, None)
    db.commit()
    assert "Soon deleted" not in analyst.get(f"/events/{a.id}").text
    assert analyst.get(f"/api/v1/events/{a.id}").json()["links"] == []


def test_links_in_the_api(analyst: Client, db: Session, claim_and_denial: tuple[int, int]) -> None:
    claim, denial = claim_and_denial
    r = analyst.post(
        f"/api/v1/events/{denial}/links", json={"type": "denies", "target_id": claim, "set_status": True}
    )
    assert r.status_code == 201, r.text
    out = r.json()["links"]
    assert [(x["direction"], x["type"], x["words"], x["event_id"]) for x in out] == [
        ("out", "denies", "denies", claim)
    ]
    seen = analyst.get(f"/api/v1/events/{claim}").json()
    assert seen["status"] == "denied"
    assert [(x["direction"], x["words"], x["event_id"]) for x in seen["links"]] == [
        ("in", "denied by", denial)
    ]
    listed = analyst.get("/api/v1/events").json()["items"]
    assert {e["id"]: len(e["links"]) for e in listed} == {claim: 1, denial: 1}
    for body, field, message in (
        ({"type": "denies", "target_id": claim}, "target_id", "already"),
        ({"type": "denies", "target_id": denial}, "target_id", "itself"),
        ({"type": "endorses", "target_id": claim}, "type", "unknown link type"),
        ({"type": "confirms", "target_id": 999999}, "target_id", "no event"),
    ):
        bad = analyst.post(f"/api/v1/events/{denial}/links", json=body)
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", field], bad.json()
        assert message in bad.json()["detail"][0]["msg"]
    link_id = out[0]["id"]
    assert analyst.delete(f"/api/v1/events/{claim}/links/{link_id}").status_code == 204
    assert analyst.delete(f"/api/v1/events/{claim}/links/{link_id}").status_code == 404
    spec = analyst.get("/openapi.json").json()
    assert "/api/v1/events/{event_id}/links" in spec["paths"] and "LinkIn" in spec["components"]["schemas"]


def test_viewers_see_links_but_cannot_add(
    client: Client, db: Session, claim_and_denial: tuple[int, int]
) -> None:
    claim, denial = claim_and_denial
    add_link(db, denial, claim, "denies", None)
    db.commit()
    client.login("viewer")
    page = client.get(f"/events/{claim}").text
    assert "denied by" in page and 'id="link-form"' not in page
    assert client.post(f"/events/{claim}/links", data={"type": "confirms", "target": "1"}).status_code == 403
    assert (
        client.post(
            f"/api/v1/events/{claim}/links", json={"type": "confirms", "target_id": denial}
        ).status_code
        == 403
    )


def test_suggestions_by_title_words_and_number(analyst: Client, claim_and_denial: tuple[int, int]) -> None:
    claim, denial = claim_and_denial
    words = analyst.get(f"/suggest/events?exclude={denial}&target=igla dep").text
    assert f"#{claim} · 5,000 Igla-S deployed" in words and f"#{denial}" not in words
    assert f"#{denial} · Kremlin" in analyst.get(f"/suggest/events?target=%23{denial}").text
    assert analyst.get("/suggest/events?target=%25%27").status_code == 200
    # The event form's box is named link_target: the same suggestions come back for it.
    assert f"#{claim} · 5,000 Igla-S deployed" in analyst.get("/suggest/events?link_target=igla dep").text


def test_the_ladder_shows_pledged_then_delivered(analyst: Client, db: Session) -> None:
    dyad = [{"code": "RUS", "role": "supplier"}, {"code": "VEN", "role": "recipient"}]
    pledge = make_event(
        db,
        title="Russia agrees to supply Igla-S",
        kind="agreement",
        date="2025-03",
        countries=dyad,
        systems=[{"designation": "Igla-S", "quantity": 5000}],
    )
    delivery = make_event(
        db,
        title="First Igla-S batch arrives in Caracas",
        kind="transfer",
        date="2025-10-14",
        countries=dyad,
        systems=[{"designation": "Igla-S", "quantity": 1200}],
    )
    elsewhere = make_event(
        db, title="Agreement with Cuba", kind="agreement", countries=[{"code": "RUS", "role": "supplier"}]
    )
    add_link(db, delivery.id, pledge.id, "fulfils", None)
    add_link(db, delivery.id, elsewhere.id, "fulfils", None)
    db.commit()
    page = analyst.get("/dyads?supplier=RUS&recipient=VEN").text
    assert "Pledged → delivered" in page
    table = page[page.index('class="table fulfilments"') :]
    table = table[: table.index("</table>")]
    assert (
        "Mar 2025" in table
        and "14 Oct 2025" in table
        and "Igla-S ×5,000" in table
        and "Igla-S ×1,200" in table
    )
    assert table.index("Russia agrees") < table.index("First Igla-S batch") and "Cuba" not in table
    assert "227 days" in table  # 1 March to 14 October
    # No fulfilment under the filter: no section.
    assert "Pledged → delivered" not in analyst.get("/dyads?supplier=RUS&recipient=VEN&from=2026").text


def test_a_link_from_the_new_and_edit_forms(
    analyst: Client, db: Session, claim_and_denial: tuple[int, int]
) -> None:
    from tests.test_forms import FULL_FORM, created_id, post_new

    claim, denial = claim_and_denial
    form = {
        **FULL_FORM,
        "confirm_duplicate": "1",
        "link_type": "confirms",
        "link_target": f"#{claim} · 5,000",
    }
    made = created_id(post_new(analyst, form))
    assert "confirmed by" in analyst.get(f"/events/{claim}").text
    assert {(x["direction"], x["type"]) for x in analyst.get(f"/api/v1/events/{made}").json()["links"]} == {
        ("out", "confirms")
    }
    # Bad links on the form: nothing is saved, the message sits beside the field with the input kept.
    before = db.scalar(select(func.count()).select_from(Event))
    for link_type, target, message in (
        ("confirms", "#999999", "no event #999999"),
        ("", f"#{claim}", "pick what this event does"),
        ("confirms", "Igla", "by its number"),
    ):
        bad = post_new(analyst, {**form, "link_type": link_type, "link_target": target})
        assert bad.status_code == 422 and message in bad.text and f'value="{target}"' in bad.text
    assert db.scalar(select(func.count()).select_from(Event)) == before
    edit = analyst.get(f"/events/{denial}/edit").text
    assert 'name="link_target"' in edit
    version = re.search(r'name="version" value="(\d+)"', edit)
    assert version
    fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', edit))
    fields.update({"link_type": "denies", "link_target": str(denial), "version": version.group(1)})
    itself = analyst.post(f"/events/{denial}/edit", data=fields)
    assert itself.status_code == 422 and "cannot be linked to itself" in itself.text


def test_suggestions_never_fail_on_large_numbers(analyst: Client) -> None:
    for text in ("999999999999", "%23999999999999", "2147483648"):
        r = analyst.get(f"/suggest/events?target={text}")
        assert r.status_code == 200 and "<option" not in r.text
