"""In headless Chromium, as an analyst would: sources of one origin and of another with a PDF attached,
"2 origins", the filter, the file downloaded with the same SHA-256, the single-origin question and its
"save anyway"."""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.domain.textkeys import match_keys
from app.models import Event, Origin
from tests.conftest import browser_login
from tests.factories import make_event

pytestmark = pytest.mark.browser

TITLE = "Il-76 flights carry air-defence parts to Caracas"
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def _source(page, i: int, publisher: str, origin: str, reliability: str, credibility: str) -> None:  # type: ignore[no-untyped-def]
    if i:
        page.click("#add-source")
        page.wait_for_selector(f"#sources-{i}-publisher")
    page.fill(f"#sources-{i}-publisher", publisher)
    page.fill(f"#sources-{i}-origin", origin)
    page.select_option(f"#sources-{i}-reliability", reliability)
    page.select_option(f"#sources-{i}-credibility", credibility)


def test_two_origins_over_three_sources(page, live_user, engine: Engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        s.add(
            Origin(
                name="The Times",
                aliases=["Times (London)"],
                match_keys=match_keys("The Times", ["Times (London)"]),
            )
        )
        make_event(s, title="A claim resting on TASS alone", kind="statement", date="2025-06")
        s.commit()
    browser_login(page, live_user("analyst"))

    page.goto("/events/new")
    page.fill("#title", TITLE)
    page.select_option("#kind", "transfer")
    page.fill("#date", "2025")
    page.select_option("#date-month", "11")
    page.fill("#countries-0-code", "RUS")
    page.fill("#countries-1-code", "VEN")
    _source(page, 0, "The Times", "", "B", "3")
    _source(page, 1, "Latin Times", "Times (Lon", "C", "3")
    # The origin box suggests catalogue entries as one types (an alias finds The Times).
    page.wait_for_selector("#origin-options option[value='The Times']", state="attached")
    page.fill("#sources-1-origin", "The Times")
    _source(page, 2, "Reuters", "", "B", "2")
    pdf = tmp_path / "flight-manifest.pdf"
    pdf.write_bytes(PDF)
    page.set_input_files("#sources-2-files", str(pdf))
    page.select_option("#likelihood", "likely")
    page.fill("#likelihood_rationale", "two independent origins")
    page.click("button.primary[name=save]")
    page.wait_for_url("**/events/*?saved=1")
    heading = page.locator("#sources-head").inner_text()
    assert "2 origins · 3 sources" in heading
    assert "Latin Times, relaying The Times" in page.locator(".origin-group").first.inner_text()
    event_url = page.url

    page.goto("/")
    page.wait_for_load_state("networkidle")
    assert "2 origins · 3 sources" in page.locator(f".event-row:has-text('{TITLE}')").inner_text()
    page.select_option("#f-origins", "2")
    page.wait_for_url("**/?*origins_min=2*")
    page.wait_for_load_state("networkidle")
    titles = page.locator(".event-row .title").all_inner_texts()
    assert titles == [TITLE]
    # The export link gives the same rows, with the corroboration columns.
    with page.expect_download() as download:
        page.click("text=Export this 1 event (CSV)")
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text("utf-8-sig"), newline="")))
    assert [(r["title"], r["origin_count"], r["origins"]) for r in rows] == [
        (TITLE, "2", "The Times; Reuters")
    ]

    # The attached file: its SHA-256 on the event page, and the download gives the same bytes.
    digest = hashlib.sha256(PDF).hexdigest()
    page.goto(event_url)
    reuters = page.locator(".sources-list > li", has_text="Reuters")
    assert digest in reuters.inner_text()
    with page.expect_download() as info:
        reuters.get_by_role("link", name="flight-manifest.pdf").click()
    saved = tmp_path / "downloaded.pdf"
    info.value.save_as(saved)
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == digest
    page.goto("/?origins_min=2")
    page.wait_for_load_state("networkidle")

    # One click: the events that rest on a single origin.
    page.click("#facet-origins a:has-text('1 origin')")
    page.wait_for_url("**/?*origins_max=1*")
    page.wait_for_load_state("networkidle")
    assert page.locator(".event-row .title").all_inner_texts() == ["A claim resting on TASS alone"]

    # Confirming on one origin asks first; "save anyway" saves.
    page.goto("/events/new")
    page.fill("#title", "Kremlin confirms Oreshnik talks")
    page.select_option("#kind", "statement")
    page.select_option("#status", "confirmed")
    page.fill("#date", "2025")
    _source(page, 0, "Latin Times", "TASS", "C", "3")
    page.click("button.primary[name=save]")
    page.wait_for_selector("#single-origin")
    assert page.input_value("#sources-0-origin") == "TASS"  # nothing lost
    page.click("button[name=confirm_single_origin]")
    page.wait_for_url("**/events/*?saved=1")
    with Session(engine) as s:
        saved = s.scalars(select(Event).where(Event.title == "Kremlin confirms Oreshnik talks")).one()
        assert (saved.status, saved.origin_count) == ("confirmed", 1)
