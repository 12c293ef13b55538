"""Headless Chromium: no injected script runs, CSP holds, first login, logout, cross-site forms refused."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.auth.bootstrap import ensure_first_admin
from app.models import ApiToken
from tests.conftest import browser_login
from tests.factories import make_event
from tests.test_xss import PAYLOAD, xss_event_data

pytestmark = pytest.mark.browser


def watch(page: Any) -> dict[str, list[str]]:
    """Record dialogs (alert/confirm/prompt) and CSP violations the page reports."""
    seen: dict[str, list[str]] = {"dialogs": [], "csp": []}

    def on_dialog(dialog: Any) -> None:
        seen["dialogs"].append(dialog.message)
        dialog.dismiss()

    def on_console(message: Any) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            seen["csp"].append(message.text)

    page.on("dialog", on_dialog)
    page.on("console", on_console)
    return seen


def test_no_injected_script_runs_anywhere(page, live_user, engine: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Every page that shows the poisoned event, full and via HTMX: no dialog, no CSP violation."""
    with Session(engine) as s:
        event = make_event(s, **xss_event_data())
        s.commit()
        event_id, actor_id, system_id = event.id, event.actors[0].actor_id, event.systems[0].system_id
    seen = watch(page)
    browser_login(page, live_user("admin"))
    paths = [
        "/",
        f"/events/{event_id}",
        f"/events/{event_id}/edit",
        f"/events/{event_id}/delete",
        "/dyads",
        "/dyads?supplier=RUS&recipient=VEN",
        "/actors",
        "/systems",
        "/countries",
        f"/actors/{actor_id}/edit",
        f"/systems/{system_id}/edit",
        "/admin",
        "/admin/users",
        "/account",
        f"/?q={quote(PAYLOAD)}",
        f"/?actor={quote(PAYLOAD)}&tag={quote(PAYLOAD)}",
        f"/login?next={quote('/' + PAYLOAD)}",
    ]
    for path in paths:
        response = page.goto(path)
        assert response is not None and response.status < 500, path
        page.wait_for_load_state("networkidle")
    # An HTMX partial: type in the timeline search, the results are swapped in place.
    page.goto("/")
    search = page.locator("#q")
    if search.count():
        search.fill(PAYLOAD)
        page.wait_for_timeout(600)
        page.wait_for_load_state("networkidle")
    # The payload is visible as text (escaped), not executed.
    page.goto(f"/events/{event_id}")
    assert "<script>alert(1)</script>" in page.locator("h1").inner_text()
    page.screenshot(path=str(tmp_path / "xss-event.png"), full_page=True)
    assert seen["dialogs"] == [], seen["dialogs"]
    assert seen["csp"] == [], seen["csp"]


def test_first_login_forces_a_new_password(page, live_server: str, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    """The printed one-time password works once; the admin must choose their own to go on."""
    with Session(engine) as s:
        password = ensure_first_admin(s)
    assert password
    browser_login(page, "admin", password)
    assert page.url.endswith("/account/password")
    page.goto("/")
    assert page.url.endswith("/account/password")  # held there
    page.fill("#current", password)
    page.fill("#new", "password1234")
    page.fill("#confirm", "password1234")
    page.click("form[action='/account/password'] button[type=submit]")
    assert page.locator("#new-error").inner_text().startswith("This password is too common")
    page.fill("#current", password)
    page.fill("#new", "lantern-quarry-olive-58")
    page.fill("#confirm", "lantern-quarry-olive-58")
    page.click("form[action='/account/password'] button[type=submit]")
    page.wait_for_url("**/?password=changed")
    assert "Your password was changed" in page.locator("main .alert.ok").inner_text()
    # Log out, then the browser's history cannot bring the session back.
    page.click("text=Log out")
    page.wait_for_url("**/login")
    page.goto("/")
    assert "/login" in page.url


def test_cross_site_form_is_refused(page, live_user, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    """A page on another site that posts to Signalboard gets nothing done, even with the user signed in."""
    browser_login(page, live_user("viewer"))
    base = page.url.rstrip("/").rsplit("/", 1)[0] if page.url.count("/") > 3 else page.url.rstrip("/")
    evil = f"""<html><body><form id="f" method="post" action="{base}/account/tokens">
      <input name="name" value="stolen"><input name="csrf_token" value="guess"></form></body></html>"""
    page.route(
        "https://evil.example/**",
        lambda route: route.fulfill(status=200, body=evil, content_type="text/html"),
    )
    page.goto("https://evil.example/page")
    with page.expect_navigation():
        page.evaluate("document.getElementById('f').submit()")
    assert page.locator("body").inner_text().strip() != ""
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(ApiToken)) == 0


def test_account_token_shown_once_in_the_browser(page, live_user, engine: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Create a token on the account page, see it once, revoke it."""
    browser_login(page, live_user("analyst"))
    page.goto("/account")
    page.fill("#token-name", "nightly export")
    page.click("text=Create token")
    value = page.locator("#new-token").input_value()
    assert value.startswith("sb_")
    page.screenshot(path=str(tmp_path / "account.png"), full_page=True)
    page.goto("/account")
    assert value not in page.content()
    assert page.locator("table.tokens tbody tr").count() == 1
    page.click("text=Revoke")
    page.wait_for_url("**/account?done=revoked")
    assert page.locator("table.tokens").count() == 0
