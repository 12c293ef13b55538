"""A person filters the timeline, clicks "Export these N events (CSV)" and gets exactly those rows."""

from __future__ import annotations

import csv
import io
import re
from datetime import date

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.csvio import HEADER, restore
from tests.conftest import browser_login
from tests.factories import make_event


def _seed(engine: Engine) -> None:
    with Session(engine) as s:
        for i in range(8):
            make_event(
                s,
                title=f"Russian offer number {i}, with a comma" if i % 2 else f"Chinese statement {i}",
                kind="offer" if i % 2 else "statement",
                date=f"2025-{(i % 9) + 1:02d}",
                countries=[
                    {"code": "RUS" if i % 2 else "CHN", "role": "supplier"},
                    {"code": "VEN", "role": "recipient"},
                ],
                summary="=1+1 looks like a formula" if i == 3 else "Ясно; 中文",
            )
        s.commit()


@pytest.mark.browser
def test_filter_click_export_and_read_the_file(page, live_user, engine: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _seed(engine)
    browser_login(page, live_user("viewer"))
    page.goto("/?supplier=RUS&kind=offer")
    rows = page.locator(".event-row")
    on_screen = [t.strip() for t in page.locator(".event-row .title").all_inner_texts()]
    assert rows.count() == 4 and len(on_screen) == 4
    link = page.get_by_role("link", name=re.compile(r"Export these 4 events \(CSV\)"))
    assert link.is_visible()
    with page.expect_download() as info:
        link.click()
    download = info.value
    today = date.today().isoformat()
    assert download.suggested_filename == f"signalboard-{today}-supplier-RUS_kind-offer.csv"
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw

    records = list(csv.DictReader(io.StringIO(raw.decode("utf-8"), newline="")))
    assert list(records[0].keys()) == list(HEADER)
    assert [r["title"] for r in records] == on_screen
    assert {r["suppliers"] for r in records} == {"RUS"} and {r["kind"] for r in records} == {"offer"}
    formula = next(r for r in records if "number 3" in r["title"])
    assert formula["summary"] == "'=1+1 looks like a formula"
    assert restore(formula["summary"]) == "=1+1 looks like a formula"

    pandas = pytest.importorskip("pandas")
    frame = pandas.read_csv(path, dtype=str, keep_default_na=False)
    assert list(frame["title"]) == on_screen
    assert list(frame["id"]) == [r["id"] for r in records]

    # The Excel variant beside it: same rows, with a BOM.
    with page.expect_download() as excel_info:
        page.get_by_role("link", name="for Excel").click()
    excel = excel_info.value
    excel_path = tmp_path / "excel.csv"
    excel.save_as(excel_path)
    assert excel_path.read_bytes() == b"\xef\xbb\xbf" + raw
    page.screenshot(path=str(tmp_path / "timeline-export.png"), full_page=True)


@pytest.mark.browser
def test_import_a_file_through_the_page(page, live_user, engine: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    browser_login(page, live_user("analyst"))
    page.goto("/import")
    good = tmp_path / "good.csv"
    good.write_text(
        "Title,Date,Kind,Supplier,Recipient,Actor\r\n"
        "Imported in the browser,2025-10,statement,Russia,VEN,Brand New Speaker (speaker)\r\n",
        encoding="utf-8",
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("Title,Date,Kind\r\nNo kind here,2025-10,\r\n", encoding="utf-8")

    page.set_input_files("#import-file", str(bad))
    page.get_by_role("button", name="Check file").click()
    page.wait_for_load_state()
    assert page.locator(".import-errors tbody tr").count() == 1
    assert "2" in page.locator(".import-errors tbody tr td").first.inner_text()
    assert page.get_by_role("button", name=re.compile("^Import ")).count() == 0

    page.set_input_files("#import-file", str(good))
    page.get_by_role("button", name="Check file").click()
    page.wait_for_load_state()
    assert page.get_by_text("Brand New Speaker").is_visible()
    page.screenshot(path=str(tmp_path / "import-preview.png"), full_page=True)
    page.get_by_role("button", name="Import 1 event").click()
    page.wait_for_load_state()
    assert page.get_by_text("Imported 1 event").is_visible()
    assert page.get_by_role("heading", level=1).inner_text() == "Import done"
    page.get_by_role("link", name="Open the timeline").click()
    page.wait_for_load_state()
    assert page.get_by_text("Imported in the browser").is_visible()


@pytest.mark.browser
def test_skip_the_likely_duplicates_through_the_page(page, live_user, engine: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The second button's choice travels although the page disables both buttons once one is clicked."""
    browser_login(page, live_user("analyst"))
    page.goto("/import")
    twice = tmp_path / "twice.csv"
    twice.write_text(
        "Title,Date,Kind\r\n"
        "Skipped twin headline,2025-10,statement\r\n"
        "Skipped twin headline,2025-10,statement\r\n"
        "Kept lone headline,2025-09,statement\r\n",
        encoding="utf-8",
    )
    page.set_input_files("#import-file", str(twice))
    page.get_by_role("button", name="Check file").click()
    page.wait_for_load_state()
    page.get_by_role("button", name="Skip the likely duplicates: import 2 events").click()
    page.wait_for_load_state()
    assert page.get_by_text("Imported 2 events").is_visible()
    assert page.get_by_text("skipped 1 likely duplicate").is_visible()
    with engine.connect() as conn:
        titles = conn.scalars(
            text("SELECT title FROM events WHERE title LIKE '%headline' ORDER BY title")
        ).all()
    assert titles == ["Kept lone headline", "Skipped twin headline"]
