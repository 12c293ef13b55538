"""XSS: script payloads in every text field come back escaped on every page and partial."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy.orm import Session

from app.auth.accounts import create_token
from app.filters import PARAMS
from app.models import Actor
from tests.conftest import Client
from tests.factories import event_data, make_event
from tests.test_role_matrix import ROUTES, _fill

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
SVG = "'><svg/onload=alert(1)>"
PAYLOAD = SCRIPT + IMG + SVG
# Markup that must never reach a page unescaped (any one of them would run or inject).
RAW_MARKERS = ("<script>alert", "<img src=x", "<svg/onload", "onerror=alert(1)>")
JS_URL = re.compile(r"""(?:href|src|action|formaction|hx-get|hx-post)\s*=\s*["']?\s*javascript:""", re.I)


def xss_event_data() -> dict[str, Any]:
    """An event whose every free-text field carries the payloads (a field name in front of each)."""
    return event_data(
        title=f"T {PAYLOAD}",
        summary=f"S {PAYLOAD}\njavascript:alert(1)",
        location=f"L {PAYLOAD}",
        tags=[f"g {SCRIPT}", f"h {IMG}"],
        countries=[{"code": "RUS", "role": "supplier"}, {"code": "VEN", "role": "recipient"}],
        actors=[
            {
                "name": f"A {PAYLOAD}"[:200],
                "role": "speaker",
                "type": "person",
                "country": "RUS",
                "title": f"AT {PAYLOAD}",
            }
        ],
        systems=[
            {
                "designation": f"D {PAYLOAD}"[:200],
                "quantity_note": f"QN {PAYLOAD}",
                "category": f"C {PAYLOAD}",
                "origin": "RUS",
            }
        ],
        sources=[
            {
                "publisher": f"P {PAYLOAD}"[:200],
                "url": 'https://example.com/"><script>alert(1)</script>',
                "title": f"ST {PAYLOAD}",
                "quote": f"Q {PAYLOAD}",
                "note": f"N {PAYLOAD}",
                "reliability": "B",
                "credibility": 2,
            }
        ],
    )


def assert_escaped(body: str, where: str) -> None:
    """No payload markup and no javascript: link in an HTML body."""
    for marker in RAW_MARKERS:
        assert marker not in body, f"{where}: raw {marker!r}"
    assert not JS_URL.search(body), f"{where}: javascript: URL in an attribute"


@pytest.fixture
def xss(db: Session) -> dict[str, Any]:
    """The poisoned event (with an actor alias too) and ids for path parameters."""
    event = make_event(db, **xss_event_data())
    actor = db.get(Actor, event.actors[0].actor_id)
    assert actor is not None
    actor.aliases = [f"AL {PAYLOAD}"]
    db.commit()
    return {
        "event": event,
        "ids": {
            "event_id": event.id,
            "actor_id": event.actors[0].actor_id,
            "system_id": event.systems[0].system_id,
            "group": "source",
        },
    }


def _html(response: Any) -> bool:
    return "html" in response.headers.get("content-type", "")


def test_the_payload_really_is_stored(xss: dict[str, Any]) -> None:
    """Guard: the test would prove nothing if validation had stripped the payloads."""
    event = xss["event"]
    assert SCRIPT in event.title and IMG in event.location and event.sources[0].quote.endswith(SVG)


def test_every_get_route_escapes_the_payload(client: Client, db: Session, xss: dict[str, Any]) -> None:
    """Every GET route of the app, as a full page and as an HTMX partial, as admin (who sees most)."""
    client.login("admin")
    owner = client.user
    assert owner is not None
    create_token(db, owner, f"K {PAYLOAD}")
    db.commit()
    checked = 0
    for route in ROUTES:
        if route.method != "GET":
            continue
        url = _fill(route.path, route.path_params, xss["ids"])
        for headers in ({}, {"HX-Request": "true"}):
            response = client.get(url, headers=headers)
            assert response.status_code < 500, (url, response.status_code)
            if _html(response):
                assert_escaped(response.text, f"GET {url} {headers}")
                checked += 1
    assert checked > 20


@pytest.mark.parametrize(
    "path",
    ["/", "/events/{id}", "/events/{id}/edit", "/actors", "/systems", "/account"],
)
def test_payload_is_shown_escaped_not_dropped(client: Client, xss: dict[str, Any], path: str) -> None:
    """Pages that show the text show it HTML-escaped (so the analyst still reads what was typed)."""
    client.login("admin")
    if path == "/account":
        assert client.user is not None
        create_token(client.db, client.user, f"K {PAYLOAD}")
        client.db.commit()
    response = client.get(path.replace("{id}", str(xss["event"].id)))
    assert response.status_code == 200, path
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text, path
    assert_escaped(response.text, path)


def test_source_url_link_is_escaped(client: Client, xss: dict[str, Any]) -> None:
    """The source link keeps its quotes inside the attribute."""
    client.login("viewer")
    body = client.get(f"/events/{xss['event'].id}").text
    assert 'href="https://example.com/&#34;&gt;&lt;script&gt;' in body or "example.com/%22%3E" in body


@pytest.mark.parametrize(
    "bad", ["javascript:alert(1)", "JavaScript:alert(1)", "data:text/html,<script>x</script>"]
)
def test_javascript_urls_are_refused(bad: str) -> None:
    """A source URL must be http(s): javascript: and data: links can never be stored."""
    from pydantic import ValidationError

    from app.schemas import EventInput

    with pytest.raises(ValidationError):
        EventInput.model_validate(
            event_data(sources=[{"publisher": "X", "url": bad, "reliability": "C", "credibility": 3}])
        )


@pytest.mark.parametrize("param", [*PARAMS, "cursor", "page"])
def test_reflected_filter_values_are_escaped(client: Client, xss: dict[str, Any], param: str) -> None:
    """Every filter parameter echoed back (inputs, chips, messages, links) is escaped, page and partial."""
    client.login("viewer")
    for headers in ({}, {"HX-Request": "true"}):
        response = client.get(f"/?{param}={quote(PAYLOAD)}", headers=headers)
        assert response.status_code in (200, 422), (param, response.status_code)
        assert_escaped(response.text, f"/?{param}=… {headers}")


@pytest.mark.parametrize(
    "path",
    [
        "/suggest/actors",
        "/suggest/systems",
        "/suggest/countries",
        "/actors",
        "/systems",
        "/countries",
        "/dyads",
    ],
)
def test_reflected_query_on_lists_and_suggestions(client: Client, xss: dict[str, Any], path: str) -> None:
    """Autocomplete and list searches echo the typed text escaped."""
    client.login("viewer")
    for key in ("q", "supplier", "name"):
        response = client.get(f"{path}?{key}={quote(PAYLOAD)}", headers={"HX-Request": "true"})
        assert response.status_code < 500
        if _html(response):
            assert_escaped(response.text, f"{path}?{key}")


def test_login_next_and_username_are_escaped(client: Client) -> None:
    """The login page reflects `next` and the typed username."""
    page = client.get(f"/login?next={quote('/' + PAYLOAD)}")
    assert_escaped(page.text, "/login?next")
    from tests.conftest import csrf_from

    token = csrf_from(page.text)
    response = client.post("/login", data={"username": PAYLOAD, "password": "x", "csrf_token": token})
    assert response.status_code == 401
    assert_escaped(response.text, "POST /login")
    assert "&lt;script&gt;" in response.text


def test_error_pages_escape_the_path(client: Client) -> None:
    """A 404 for a crafted path does not echo it raw."""
    client.login("viewer")
    response = client.get("/" + quote(PAYLOAD))
    assert response.status_code == 404
    assert_escaped(response.text, "404")


def test_templates_never_mark_user_data_safe() -> None:
    """No |safe or autoescape off in any template (a grep, so a new template is covered too)."""
    from app.templating import ROOT

    offenders = []
    for path in (ROOT / "templates").rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        if re.search(r"\|\s*safe\b|autoescape\s+false|Markup\(", text):
            offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, offenders


def test_templates_have_no_inline_script_or_handlers() -> None:
    """CSP forbids them anyway; keep the templates honest so nothing silently breaks.

    JSON data islands (`<script type="application/json">{{ x|tojson }}</script>`) are data, not code:
    tojson escapes <, >, & and ', so they are allowed.
    """
    from app.templating import ROOT

    offenders = []
    pattern = re.compile(
        r"<script(?![^>]*\b(?:src=|type=\"application/json\"))[^>]*>|\son[a-z]+\s*=|\bhx-on|style\s*=\s*\"",
        re.I,
    )
    for path in (ROOT / "templates").rglob("*.html"):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()[:80]}")
    assert not offenders, offenders
