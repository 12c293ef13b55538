"""Names that find each other: a new actor or system close to a known one is asked about before it is made.

The form, the import preview and the API each offer "Volodymyr Zelensky" for "Зеленський" or
"Zelenskyy", "Sergei Ryabkov" for "Sergey Rybakov" and "Shahed-136" for "Shahed 136"; an exact name or
alias is never asked about.
"""

from __future__ import annotations

import html
import re
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.accounts import create_token
from app.events_service import load_event
from app.models import Actor, Event, StagedImport, System
from app.queries.new_names import near_names
from app.textkeys import match_keys
from tests.conftest import Client, browser_login, make_user
from tests.factories import event_data
from tests.test_csv_import import commit_form, upload
from tests.test_forms import FULL_FORM, created_id, post_new


@pytest.fixture
def catalogue(db: Session) -> dict[str, int]:
    """Known entries: Zelensky (with a Russian alias), Ryabkov, Shahed-136; name -> id."""
    entries: list[Actor | System] = [
        Actor(
            name="Volodymyr Zelensky",
            aliases=["Владимир Зеленский"],
            match_keys=match_keys("Volodymyr Zelensky", ["Владимир Зеленский"]),
            type="person",
            country_code="UKR",
        ),
        Actor(name="Sergei Ryabkov", aliases=[], match_keys=match_keys("Sergei Ryabkov"), type="person"),
        System(designation="Shahed-136", aliases=[], match_keys=match_keys("Shahed-136")),
    ]
    db.add_all(entries)
    db.flush()
    return {getattr(e, "name", None) or getattr(e, "designation", ""): e.id for e in entries}


def count(db: Session, model: type) -> int:  # type: ignore[type-arg]
    return int(db.scalar(select(func.count()).select_from(model)) or 0)


def test_the_helper_offers_close_names_in_any_script(db: Session, catalogue: dict[str, int]) -> None:
    typed = ["Зеленський", "Zelenskyy", "Sergey Rybakov", "Владимир Зеленский", "volodymyr ZELENSKY"]
    found = {n.typed: n.suggestions for n in near_names(db, "actor", typed)}
    assert found == {
        "Зеленський": ("Volodymyr Zelensky",),
        "Zelenskyy": ("Volodymyr Zelensky",),
        "Sergey Rybakov": ("Sergei Ryabkov",),
    }  # an exact alias and a name in other case are known: not asked about
    systems = near_names(db, "system", ["Shahed 136", "Brand-new Thing"])
    assert [(n.typed, n.suggestions) for n in systems] == [("Shahed 136", ("Shahed-136",))]
    assert near_names(db, "actor", ["Zelenskyy"], confirmed=["actor:zelenskyy"]) == []


# ---- the event form ----------------------------------------------------------------------------------


def form_with(**rows: str) -> dict[str, Any]:
    """FULL_FORM with other actor and system rows."""
    form = {k: v for k, v in FULL_FORM.items() if not k.startswith(("actors-", "systems-"))}
    return form | {"actors-0-role": "speaker"} | rows


def test_the_form_asks_then_uses_the_known_actor(
    analyst: Client, db: Session, catalogue: dict[str, int]
) -> None:
    before = (count(db, Event), count(db, Actor))
    token = str(uuid.uuid4())
    form = form_with(**{"actors-0-name": "Зеленський"}) | {"client_token": token}
    asked = analyst.post("/events/new", data=form)
    assert asked.status_code == 200, asked.text[:2000]  # a question, not an error
    page = html.unescape(asked.text)
    assert "Did you mean “Volodymyr Zelensky”?" in page
    assert "No, create “Зеленський” as a new actor" in page
    assert 'value="Russia ships S-300 batteries to Venezuela"' in page  # everything typed is kept
    assert 'value="La Guaira port"' in page
    assert (count(db, Event), count(db, Actor)) == before  # nothing saved yet
    # The suggestion's button replaces the typed name and saves.
    saved = analyst.post("/events/new", data=form | {"use_name": "actors-0:Volodymyr Zelensky"})
    event = load_event(db, created_id(saved))
    assert [a.actor_id for a in event.actors] == [catalogue["Volodymyr Zelensky"]]
    assert event.location == "La Guaira port"
    assert count(db, Actor) == before[1]


def test_the_form_creates_the_typed_name_when_told(
    analyst: Client, db: Session, catalogue: dict[str, int]
) -> None:
    form = form_with(**{"actors-0-name": "Zelenskyy", "systems-0-designation": "Shahed 136"})
    form["client_token"] = str(uuid.uuid4())
    asked = analyst.post("/events/new", data=form)
    page = html.unescape(asked.text)
    assert asked.status_code == 200 and "Did you mean “Shahed-136”?" in page
    assert "Did you mean “Volodymyr Zelensky”?" in page
    # "No, create" for the actor: the system is still asked about, and the answer is carried along.
    again = analyst.post("/events/new", data=form | {"create_new": "actors-0"})
    page = html.unescape(again.text)
    assert again.status_code == 200 and "Did you mean “Shahed-136”?" in page
    assert "No, create “Zelenskyy”" not in page
    carried = re.search(r'name="new_names" value="([^"]*)"', again.text)
    assert carried and html.unescape(carried[1]) == '["actor:zelenskyy"]'
    assert count(db, Event) == 0 and count(db, Actor) == 2
    saved = analyst.post(
        "/events/new",
        data=form | {"new_names": html.unescape(carried[1]), "use_name": "systems-0:Shahed-136"},
    )
    event = load_event(db, created_id(saved))
    assert [a.actor.name for a in event.actors] == ["Zelenskyy"]  # created as typed
    assert [s.system_id for s in event.systems] == [catalogue["Shahed-136"]]


def test_an_exact_alias_is_not_asked_about(analyst: Client, db: Session, catalogue: dict[str, int]) -> None:
    saved = post_new(analyst, form_with(**{"actors-0-name": "Владимир Зеленский"}))
    event = load_event(db, created_id(saved))
    assert [a.actor_id for a in event.actors] == [catalogue["Volodymyr Zelensky"]]


def test_a_forged_choice_is_ignored_and_asked_again(
    analyst: Client, db: Session, catalogue: dict[str, int]
) -> None:
    form = form_with(**{"actors-0-name": "Sergey Rybakov"})
    for forged in ("actors-0:Nobody Known", "actors-9:Sergei Ryabkov", "bogus", "actors-0"):
        r = post_new(analyst, form, use_name=forged)
        assert r.status_code == 200 and "Did you mean “Sergei Ryabkov”?" in html.unescape(r.text)
    for bad in ("not json", '{"a": 1}', "[1, 2]"):
        r = post_new(analyst, form, new_names=bad, create_new="systems-7")
        assert r.status_code == 200 and "Did you mean" in r.text
    assert count(db, Event) == 0


def test_the_edit_form_asks_too_and_works_with_htmx(
    analyst: Client, db: Session, catalogue: dict[str, int]
) -> None:
    event_id = created_id(post_new(analyst, form_with(**{"actors-0-name": "Sergei Ryabkov"})))
    page = analyst.get(f"/events/{event_id}/edit").text
    version = re.search(r'name="version" value="(\d+)"', page)
    assert version
    form = form_with(**{"actors-0-name": "Sergey Rybakov"}) | {"version": version[1]}
    asked = analyst.post(f"/events/{event_id}/edit", data=form, headers={"HX-Request": "true"})
    assert asked.status_code == 200 and "Did you mean “Sergei Ryabkov”?" in html.unescape(asked.text)
    assert load_event(db, event_id).version == int(version[1])  # not saved
    done = analyst.post(f"/events/{event_id}/edit", data=form | {"use_name": "actors-0:Sergei Ryabkov"})
    assert done.status_code == 303
    assert [a.actor.name for a in load_event(db, event_id).actors] == ["Sergei Ryabkov"]
    assert count(db, Actor) == 2  # no second Ryabkov


# ---- the import preview ------------------------------------------------------------------------------

NEAR_CSV = (
    "title,date,kind,suppliers,recipients,actors,systems\r\n"
    "Kyiv asks for air defence,2025-10-01,request,,UKR,Зеленський (requester),\r\n"
    "Moscow comments on the offer,2025-10-02,statement,RUS,,Sergey Rybakov (speaker),Shahed 136\r\n"
    "A third row,2025-10-03,statement,RUS,,Brand New Person (speaker),Shahed 136 ×2\r\n"
)


def near_choices(page: str) -> dict[str, tuple[str, list[str]]]:
    """The preview's near-name table: typed name -> (radio group name, the offered known names)."""
    out = {}
    text = html.unescape(page)
    for typed, cell in re.findall(r"(?:Actor|System) “([^”]+)”</td>\s*<td>(.*?)</td>", text, re.S):
        group = re.search(r'name="(near-\d+)"', cell)
        assert group
        out[typed] = (group[1], re.findall(r"Use the known \w+ “([^”]+)”", cell))
    return out


def test_the_import_preview_offers_known_names_and_the_commit_follows_the_choices(
    analyst: Client, db: Session, catalogue: dict[str, int]
) -> None:
    preview = upload(analyst, NEAR_CSV)
    assert preview.status_code == 200, preview.text[:2000]
    choices = near_choices(preview.text)
    assert choices == {
        "Sergey Rybakov": (choices["Sergey Rybakov"][0], ["Sergei Ryabkov"]),
        "Зеленський": (choices["Зеленський"][0], ["Volodymyr Zelensky"]),
        "Shahed 136": (choices["Shahed 136"][0], ["Shahed-136"]),
    }
    assert "Brand New Person" in preview.text  # a new name close to nothing is simply new
    form = commit_form(preview.text)
    # A choice the preview did not offer is refused, and the file waits for a corrected commit.
    forged = analyst.post("/import/commit", data=form | {choices["Зеленський"][0]: "5"})
    assert forged.status_code == 422 and "choose again" in forged.text
    assert count(db, Event) == 0 and count(db, StagedImport) == 1
    answers = {
        choices["Зеленський"][0]: "0",
        choices["Sergey Rybakov"][0]: "0",
        choices["Shahed 136"][0]: "new",
    }
    done = analyst.post("/import/commit", data=form | answers)
    assert done.status_code == 200, done.text[:2000]
    events = {e.title: load_event(db, e.id) for e in db.scalars(select(Event))}
    kyiv = events["Kyiv asks for air defence"]
    assert [a.actor_id for a in kyiv.actors] == [catalogue["Volodymyr Zelensky"]]
    moscow = events["Moscow comments on the offer"]
    assert [a.actor_id for a in moscow.actors] == [catalogue["Sergei Ryabkov"]]
    assert [s.system.designation for s in moscow.systems] == ["Shahed 136"]  # created as written
    assert {a.name for a in db.scalars(select(Actor))} == {
        "Volodymyr Zelensky",
        "Sergei Ryabkov",
        "Brand New Person",
    }
    assert {s.designation for s in db.scalars(select(System))} == {"Shahed-136", "Shahed 136"}


def test_the_import_preview_does_not_ask_about_exact_aliases(
    analyst: Client, db: Session, catalogue: dict[str, int]
) -> None:
    body = "title,date,kind,actors\r\nA statement,2025-10-01,statement,Владимир Зеленский (speaker)\r\n"
    preview = upload(analyst, body)
    assert preview.status_code == 200 and near_choices(preview.text) == {}
    assert "Names close to known ones" not in preview.text


# ---- the API -----------------------------------------------------------------------------------------


@pytest.fixture
def headers(db: Session) -> dict[str, str]:
    user = make_user(db, "analyst")
    _, raw = create_token(db, user, "tests")
    db.commit()
    return {"Authorization": f"Bearer {raw}"}


def api_event(**overrides: Any) -> dict[str, Any]:
    """An API body naming no actor or system unless told."""
    return event_data(**({"actors": [], "systems": []} | overrides))


def test_the_api_refuses_a_close_new_name_then_accepts_the_flag_or_the_suggestion(
    client: Client, db: Session, catalogue: dict[str, int], headers: dict[str, str]
) -> None:
    body = api_event(
        actors=[{"name": "Sergei Ryabkov", "role": "speaker"}, {"name": "Зеленський", "role": "recipient"}],
        systems=[{"designation": "Shahed 136"}],
    )
    r = client.post("/api/v1/events", json=body, headers=headers)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert [(d["loc"], d["type"], d["input"], d["suggestions"]) for d in detail] == [
        (["body", "actors", 1, "name"], "near_name", "Зеленський", ["Volodymyr Zelensky"]),
        (["body", "systems", 0, "designation"], "near_name", "Shahed 136", ["Shahed-136"]),
    ]
    assert "“Зеленський” is not a known actor; did you mean “Volodymyr Zelensky”?" in detail[0]["msg"]
    assert "create_new_names=true" in detail[0]["msg"]
    assert count(db, Event) == 0 and count(db, Actor) == 2
    # With the suggested names: linked to the known entries.
    body["actors"][1]["name"] = "Volodymyr Zelensky"
    body["systems"][0]["designation"] = "Shahed-136"
    made = client.post("/api/v1/events", json=body, headers=headers)
    assert made.status_code == 201, made.text
    assert count(db, Actor) == 2 and count(db, System) == 1
    # With the flag: created as typed.
    flagged = api_event(title="Another one", actors=[{"name": "Zelenskyy", "role": "speaker"}])
    made = client.post("/api/v1/events?create_new_names=true", json=flagged, headers=headers)
    assert made.status_code == 201, made.text
    assert [a["name"] for a in made.json()["actors"]] == ["Zelenskyy"]
    assert count(db, Actor) == 3


def test_the_api_asks_on_put_and_patch_but_not_for_an_exact_alias(
    client: Client, db: Session, catalogue: dict[str, int], headers: dict[str, str]
) -> None:
    made = client.post(
        "/api/v1/events",
        json=api_event(actors=[{"name": "Владимир Зеленский", "role": "speaker"}]),
        headers=headers,
    )
    assert made.status_code == 201, made.text  # an exact alias: no question
    event = made.json()
    assert [a["name"] for a in event["actors"]] == ["Volodymyr Zelensky"]
    url = f"/api/v1/events/{event['id']}"
    patch = {"version": event["version"], "systems": [{"designation": "Shahed 136"}]}
    refused = client.patch(url, json=patch, headers=headers)
    assert refused.status_code == 422 and refused.json()["detail"][0]["suggestions"] == ["Shahed-136"]
    put = api_event(version=event["version"], actors=[{"name": "Sergey Rybakov", "role": "speaker"}])
    refused = client.put(url, json=put, headers=headers)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "actors", 0, "name"]
    assert client.put("/api/v1/events/999999", json=put, headers=headers).status_code == 404
    patched = client.patch(url + "?create_new_names=true", json=patch, headers=headers)
    assert patched.status_code == 200, patched.text
    assert [s["designation"] for s in patched.json()["systems"]] == ["Shahed 136"]


def test_the_flag_is_in_the_openapi_schema(client: Client) -> None:
    spec = client.get("/openapi.json").json()
    for method, path in (("post", "/api/v1/events"), ("put", "/api/v1/events/{event_id}")):
        op = spec["paths"][path][method]
        assert "create_new_names" in [p["name"] for p in op["parameters"]]
        assert "near_name" in op["responses"]["422"]["description"]


# ---- in a browser ------------------------------------------------------------------------------------


@pytest.mark.browser
def test_the_form_offers_the_known_name_in_a_browser(page, live_user, engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Type "Зеленський", get "did you mean", pick the suggestion, save: the event names the known actor."""
    from sqlalchemy.orm import Session as Plain

    from tests.test_browser_forms import shots

    out = shots(tmp_path)
    with Plain(engine) as s:
        known = Actor(name="Volodymyr Zelensky", aliases=[], match_keys=match_keys("Volodymyr Zelensky"))
        s.add(known)
        s.commit()
        known_id = known.id
    page.set_viewport_size({"width": 1280, "height": 900})
    browser_login(page, live_user("analyst"))
    page.goto("/events/new")
    page.fill("#title", "Kyiv asks for more air defence")
    page.select_option("#kind", "request")
    page.fill("#date", "2025")
    page.fill("#countries-0-code", "")
    page.fill("#countries-1-code", "UKR")
    page.fill("#actors-0-name", "Зеленський")
    page.select_option("#actors-0-role", "requester")
    page.fill("#sources-0-publisher", "Ukrinform")
    page.select_option("#sources-0-reliability", "B")
    page.select_option("#sources-0-credibility", "2")
    page.click("button.primary[name=save]")
    page.wait_for_selector("#near-names")
    page.screenshot(path=str(out / "near-name.png"), full_page=True)
    assert page.evaluate("document.activeElement.id") == "near-names"
    row = page.locator("#actors-row-0 .near-name")
    assert "Did you mean “Volodymyr Zelensky”?" in row.inner_text()
    assert page.input_value("#title") == "Kyiv asks for more air defence"  # nothing typed is lost
    row.get_by_role("button", name="Use “Volodymyr Zelensky”").click()
    page.wait_for_url("**/events/*?saved=1")
    page.screenshot(path=str(out / "near-name-saved.png"), full_page=True)
    actors = page.locator("section.card", has=page.locator("h2", has_text="Actors"))
    assert actors.get_by_role("link", name="Volodymyr Zelensky").is_visible()
    event_id = int(page.url.split("/events/")[1].split("?")[0])
    with Plain(engine) as s:
        assert [a.actor_id for a in load_event(s, event_id).actors] == [known_id]
        assert s.scalar(select(func.count()).select_from(Actor)) == 1
