"""A person attaches a PDF to a source in the form, saves, reads its SHA-256 and downloads the same bytes."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy.engine import Engine

from tests.conftest import browser_login

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


@pytest.mark.browser
def test_attach_a_pdf_save_see_its_sha256_and_download_it(page, live_user, engine: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "shots"
    out.mkdir()
    pdf = tmp_path / "tass-statement.pdf"
    pdf.write_bytes(PDF)
    digest = hashlib.sha256(PDF).hexdigest()
    page.set_viewport_size({"width": 1280, "height": 800})
    browser_login(page, live_user("analyst"))

    page.goto("/events/new")
    page.fill("#title", "Russia offers Pantsir batteries to Venezuela")
    page.select_option("#kind", "offer")
    page.fill("#date", "2025")
    page.select_option("#date-month", "10")
    page.fill("#countries-0-code", "RUS")
    page.fill("#countries-1-code", "VEN")
    page.fill("#sources-0-publisher", "TASS")
    page.fill("#sources-0-url", "https://tass.com/politics/1")
    page.select_option("#sources-0-reliability", "C")
    page.select_option("#sources-0-credibility", "3")
    page.fill("#sources-0-archive_url", "https://archive.ph/AbCdE")
    page.fill("#sources-0-accessed", "2025-10-15")
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    page.set_input_files("#sources-0-files", str(empty))  # said at once, before any save
    assert "is empty" in page.locator("#sources-0-files-error").inner_text()
    page.set_input_files("#sources-0-files", str(pdf))
    assert page.locator("#sources-0-files-error").count() == 0
    page.locator("#sources-row-0").screenshot(path=str(out / "form-source.png"))
    page.click("button.primary[name=save]")
    page.wait_for_url("**/events/*?saved=1")

    sources = page.locator(".sources-list > li")
    assert digest in sources.nth(0).inner_text()
    assert "Archived copy" in sources.nth(0).inner_text() and "15 Oct 2025" in sources.nth(0).inner_text()
    link = sources.nth(0).get_by_role("link", name="tass-statement.pdf")
    with page.expect_download() as info:
        link.click()
    download = info.value
    assert download.suggested_filename == "tass-statement.pdf"
    saved = tmp_path / "downloaded.pdf"
    download.save_as(saved)
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == digest
    assert "File attached" in page.locator("#history").inner_text()
    page.screenshot(path=str(out / "event.png"), full_page=True)


@pytest.mark.browser
def test_a_pdf_chosen_then_the_single_origin_question_then_save_anyway_keeps_the_file(  # type: ignore[no-untyped-def]
    page, live_user, engine: Engine, tmp_path
) -> None:
    out = tmp_path / "shots"
    out.mkdir()
    pdf = tmp_path / "mod-statement.pdf"
    pdf.write_bytes(PDF)
    digest = hashlib.sha256(PDF).hexdigest()
    page.set_viewport_size({"width": 1280, "height": 800})
    browser_login(page, live_user("analyst"))

    page.goto("/events/new")
    page.fill("#title", "Russia delivers Pantsir batteries to Venezuela")
    page.select_option("#kind", "transfer")
    page.select_option("#status", "confirmed")
    page.fill("#date", "2025")
    page.fill("#countries-0-code", "RUS")
    page.fill("#countries-1-code", "VEN")
    page.fill("#sources-0-publisher", "TASS")
    page.fill("#sources-0-url", "https://tass.com/defense/2")
    page.select_option("#sources-0-reliability", "B")
    page.select_option("#sources-0-credibility", "2")
    page.set_input_files("#sources-0-files", str(pdf))
    page.click("button.primary[name=save]")

    # The question comes back; the browser has forgotten the chosen file, the server has not.
    answer = page.get_by_role("button", name="Save anyway — confirmed on this evidence")
    answer.wait_for()
    kept = page.locator("#sources-0-files-kept")
    assert "1 file kept: mod-statement.pdf" in kept.inner_text()
    assert page.locator("#sources-0-files").input_value() == ""
    page.screenshot(path=str(out / "question.png"))
    page.locator("#sources-row-0").screenshot(path=str(out / "question-source.png"))
    answer.click()
    page.wait_for_url("**/events/*?saved=1")

    sources = page.locator(".sources-list > li")
    assert digest in sources.nth(0).inner_text()
    with page.expect_download() as info:
        sources.nth(0).get_by_role("link", name="mod-statement.pdf").click()
    saved = tmp_path / "downloaded.pdf"
    info.value.save_as(saved)
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == digest
