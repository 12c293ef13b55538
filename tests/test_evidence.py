"""Evidence on sources: files through the form and the API, downloads, roles, bad files, history, CSV."""

from __future__ import annotations

import csv
import hashlib
import html
import io
import re
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.config import get_settings
from app.csvio import HEADER
from app.models import AuditEntry, Event, SourceFile
from tests.conftest import Client
from tests.factories import make_event

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 17
HTML = b"<!DOCTYPE html><html><head><title>x</title></head><body><script>alert(1)</script></body></html>"

FORM: dict[str, Any] = {
    "title": "Russia ships Igla-S to Venezuela",
    "kind": "transfer",
    "status": "reported",
    "date_year": "2025",
    "date_month": "10",
    "countries-0-code": "RUS",
    "countries-0-role": "supplier",
    "countries-1-code": "VEN",
    "countries-1-role": "recipient",
    "sources-0-publisher": "TASS",
    "sources-0-url": "https://tass.com/a",
    "sources-0-reliability": "C",
    "sources-0-credibility": "3",
    "sources-0-archive_url": "https://archive.ph/abcde",
    "sources-0-accessed": "2025-10-15",
}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def post_new(client: Client, files: list[tuple[str, tuple[str, bytes, str]]], **extra: Any) -> Any:
    data = {"client_token": str(uuid.uuid4()), "confirm_duplicate": "1", **FORM, **extra}
    return client.post("/events/new", data=data, files=files)


def created_id(response: Any) -> int:
    assert response.status_code == 303, response.text[:3000]
    m = re.fullmatch(r"/events/(\d+)\?saved=1", response.headers["location"])
    assert m
    return int(m[1])


def history(db: Session, event_id: int, action: str) -> list[AuditEntry]:
    db.expire_all()
    stmt = select(AuditEntry).where(
        AuditEntry.entity_type == "event", AuditEntry.entity_id == event_id, AuditEntry.action == action
    )
    return list(db.scalars(stmt.order_by(AuditEntry.id)))


def files_of(db: Session, event_id: int) -> list[SourceFile]:
    db.expire_all()
    stmt = select(SourceFile).where(SourceFile.event_id == event_id)
    return list(db.scalars(stmt.order_by(SourceFile.source_position, SourceFile.id)))


@pytest.fixture
def small_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    """A 1 KiB evidence limit, so "over the limit" needs no 20 MiB body."""
    monkeypatch.setattr(get_settings(), "max_evidence_bytes", 1024)
    return 1024


def test_form_upload_download_round_trip_with_the_same_sha256(client: Client, db: Session) -> None:
    client.login("analyst")
    r = post_new(client, [("sources-0-files", ("report 14.10.pdf", PDF, "application/pdf"))])
    event_id = created_id(r)
    (stored,) = files_of(db, event_id)
    assert (stored.sha256, stored.size, stored.content_type) == (sha(PDF), len(PDF), "application/pdf")
    assert stored.filename == "report 14.10.pdf" and stored.source_position == 0
    page = client.get(f"/events/{event_id}").text
    assert sha(PDF) in page and "Archived copy" in page and "Accessed on" in page
    client.login("viewer")
    download = client.get(f"/events/{event_id}/files/{stored.id}")
    assert download.status_code == 200
    assert sha(download.content) == sha(PDF)
    headers = download.headers
    assert headers["content-type"] == "application/pdf"
    assert headers["content-disposition"].startswith("attachment;")
    assert "filename*=UTF-8''report%2014.10.pdf" in headers["content-disposition"]
    assert headers["x-content-type-options"] == "nosniff"
    assert (
        "sandbox" in headers["content-security-policy"]
        and "default-src 'none'" in headers["content-security-policy"]
    )
    assert headers["content-length"] == str(len(PDF))


def test_a_saved_html_page_is_never_served_as_html(client: Client, db: Session) -> None:
    client.login("analyst")
    event_id = created_id(post_new(client, [("sources-0-files", ('page"<x>.html', HTML, "text/html"))]))
    (stored,) = files_of(db, event_id)
    assert stored.content_type == "text/html"
    r = client.get(f"/events/{event_id}/files/{stored.id}")
    assert r.status_code == 200 and r.content == HTML
    assert r.headers["content-type"] == "application/octet-stream"
    disposition = r.headers["content-disposition"]
    assert (
        disposition.startswith("attachment;")
        and '"' not in disposition.split('filename="', 1)[1][:-1].split('";')[0]
    )
    assert "<" not in disposition and ">" not in disposition


def test_the_type_is_taken_from_the_content_not_the_upload_header(client: Client, db: Session) -> None:
    client.login("analyst")
    event_id = make_event(db).id
    r = client.post(
        f"/api/v1/events/{event_id}/sources/1/files", files={"file": ("scan.png", PNG, "text/html")}
    )
    assert r.status_code == 201, r.text
    assert r.json()["content_type"] == "image/png"
    assert client.get(r.json()["download"]).headers["content-type"] == "image/png"


def test_roles_anonymous_refused_viewer_downloads_but_cannot_upload(client: Client, db: Session) -> None:
    client.login("analyst")
    event_id = created_id(post_new(client, [("sources-0-files", ("a.pdf", PDF, "application/pdf"))]))
    (stored,) = files_of(db, event_id)
    anonymous = Client(client.http.app, db)
    page = anonymous.get(f"/events/{event_id}/files/{stored.id}")
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    api = anonymous.get(f"/api/v1/events/{event_id}/files/{stored.id}")
    assert api.status_code == 401
    client.login("viewer")
    assert client.get(f"/api/v1/events/{event_id}/files/{stored.id}").content == PDF
    refused = client.post(f"/api/v1/events/{event_id}/sources/1/files", files={"file": ("b.pdf", PDF + b"x")})
    assert refused.status_code == 403
    form = client.post("/events/new", data={**FORM, "client_token": str(uuid.uuid4())}, files=[])
    assert form.status_code == 403
    gone = client.delete(f"/api/v1/events/{event_id}/sources/1/files/{stored.id}")
    assert gone.status_code == 403
    assert len(files_of(db, event_id)) == 1


def test_public_read_does_not_open_the_files(
    client: Client, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.login("analyst")
    event_id = created_id(post_new(client, [("sources-0-files", ("a.pdf", PDF, "application/pdf"))]))
    (stored,) = files_of(db, event_id)
    monkeypatch.setattr(get_settings(), "public_read", True)
    anonymous = Client(client.http.app, db)
    assert anonymous.get(f"/events/{event_id}").status_code == 200
    assert anonymous.get(f"/events/{event_id}/files/{stored.id}").status_code == 303
    assert anonymous.get(f"/api/v1/events/{event_id}/files/{stored.id}").status_code == 401


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("empty.pdf", b"", "is empty"),
        ("big.pdf", PDF + b"0" * 2000, "each file can be at most 1 KiB"),
        ("photo.pdf", PNG, "is named as a PDF but its content is a PNG image"),
        ("notes.txt", PDF, "is named as a text file but its content is a PDF"),
        ("tool.exe", b"MZ\x90\x00", "is not a kind of file kept as evidence"),
    ],
)
def test_a_bad_file_comes_back_beside_its_field_with_the_form_kept_and_nothing_saved(
    client: Client, db: Session, small_limit: int, name: str, data: bytes, words: str
) -> None:
    client.login("analyst")
    events_before = db.scalar(select(func.count()).select_from(Event))
    r = post_new(
        client,
        [
            ("sources-0-files", ("fine.pdf", PDF, "application/pdf")),
            ("sources-1-files", (name, data, "application/octet-stream")),
        ],
        **{"sources-1-publisher": "Reuters", "sources-1-reliability": "B", "sources-1-credibility": "2"},
    )
    assert r.status_code == 422
    page = r.text
    error = re.search(r'<p class="field-error" id="sources-1-files-error">([^<]*)</p>', page)
    assert error, page[:3000]
    assert words in error[1] and "Choose the files again" in error[1]
    assert 'aria-invalid="true"' in page.split('id="sources-1-files"', 1)[1][:400]
    # The rest of the form is as typed.
    assert 'value="Russia ships Igla-S to Venezuela"' in page
    assert 'value="https://archive.ph/abcde"' in page and 'value="2025-10-15"' in page
    assert 'value="Reuters"' in page
    # The other source's good file is kept on the server for the corrected post.
    assert "1 file kept: fine.pdf" in page and "You had chosen fine.pdf" not in page
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(Event)) == events_before
    assert db.scalar(select(func.count()).select_from(SourceFile)) == 0


def kept_fields(page: str) -> dict[str, str]:
    """The hidden fields by which a form that came back carries the files the server kept for it."""
    found = re.findall(r'<input type="hidden" name="((?:sources-\d+-)?kept[a-z_]*)" value="([^"]*)">', page)
    return {name: html.unescape(value) for name, value in found}


def test_a_form_error_elsewhere_keeps_the_chosen_files_for_the_corrected_post(
    client: Client, db: Session
) -> None:
    client.login("analyst")
    token = str(uuid.uuid4())
    chosen = [("sources-0-files", ("a.pdf", PDF, "application/pdf"))]
    r = post_new(client, chosen, title="", client_token=token)
    assert r.status_code == 422
    assert "1 file kept: a.pdf" in r.text and "You had chosen" not in r.text
    assert db.scalar(select(func.count()).select_from(SourceFile)) == 0
    kept = kept_fields(r.text)
    assert kept["sources-0-kept"] == "0" and kept["kept_files"]
    event_id = created_id(post_new(client, [], client_token=token, **kept))
    assert [(f.filename, f.sha256) for f in files_of(db, event_id)] == [("a.pdf", sha(PDF))]
    (added,) = history(db, event_id, "file_add")
    assert "a.pdf" in str(added.changes)


def test_save_anyway_after_the_single_origin_question_saves_the_chosen_file(
    client: Client, db: Session
) -> None:
    client.login("analyst")
    token = str(uuid.uuid4())
    chosen = [("sources-0-files", ("a.pdf", PDF, "application/pdf"))]
    r = post_new(client, chosen, status="confirmed", client_token=token)
    assert r.status_code == 200 and "Save anyway — confirmed on this evidence" in r.text
    assert "1 file kept: a.pdf" in r.text
    # The browser answers without the file (it never re-sends one): the server still has it.
    answer = post_new(
        client, [], status="confirmed", client_token=token, confirm_single_origin="1", **kept_fields(r.text)
    )
    event_id = created_id(answer)
    assert [f.sha256 for f in files_of(db, event_id)] == [sha(PDF)]
    assert db.scalar(text("select count(*) from staged_imports")) == 0  # taken with the save


def test_the_edit_form_keeps_its_files_through_a_question_and_a_version_conflict(
    client: Client, db: Session
) -> None:
    client.login("analyst")
    event_id = created_id(post_new(client, []))
    page = client.get(f"/events/{event_id}/edit").text
    version = re.search(r'name="version" value="(\d+)"', page)
    assert version
    form = {**FORM, "version": version[1], "known_files": ""}
    r = client.post(
        f"/events/{event_id}/edit",
        data={**form, "title": ""},
        files=[("sources-0-files", ("a.pdf", PDF, "application/pdf"))],
    )
    assert r.status_code == 422 and "1 file kept: a.pdf" in r.text
    kept = kept_fields(r.text)
    # Someone else saves meanwhile: the conflict page re-posts the form, kept files included.
    other = client.get(f"/api/v1/events/{event_id}").json()
    changed = client.patch(f"/api/v1/events/{event_id}", json={"version": other["version"], "summary": "x"})
    assert changed.status_code == 200
    r = client.post(f"/events/{event_id}/edit", data={**form, **kept})
    assert r.status_code == 409
    conflict_kept = kept_fields(r.text)
    assert conflict_kept["kept_files"] != kept["kept_files"] and conflict_kept["sources-0-kept"] == "0"
    fresh = re.search(r'name="version" value="(\d+)"', r.text)
    assert fresh
    r = client.post(f"/events/{event_id}/edit", data={**form, "version": fresh[1], **conflict_kept})
    assert r.status_code == 303, r.text[:3000]
    assert [(f.source_position, f.sha256) for f in files_of(db, event_id)] == [(0, sha(PDF))]


def test_kept_files_gone_or_of_another_account_are_named_beside_the_source_not_dropped(
    client: Client, db: Session
) -> None:
    client.login("analyst")
    r = post_new(client, [("sources-0-files", ("a.pdf", PDF, "application/pdf"))], title="")
    kept = kept_fields(r.text)
    client.login("analyst", "someone_else")
    r = post_new(client, [], **kept)
    assert r.status_code == 422
    assert "The files kept for this source (a.pdf) are gone: they were kept for another account" in r.text
    assert "Choose the files again" in r.text
    r = post_new(client, [], **kept)  # the refused attempt did not consume them, but they are not yours
    assert r.status_code == 422
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(SourceFile)) == 0


def test_files_need_a_source(client: Client, db: Session) -> None:
    client.login("analyst")
    r = post_new(
        client,
        [("sources-1-files", ("a.pdf", PDF, "application/pdf"))],
        **{"sources-1-reliability": "", "sources-1-credibility": ""},
    )
    assert r.status_code == 422
    assert "These files need a source" in r.text


def test_edit_adds_removes_and_moves_files_with_their_source_each_in_the_history(
    client: Client, db: Session
) -> None:
    client.login("analyst")
    event_id = created_id(
        post_new(
            client,
            [
                ("sources-0-files", ("first.pdf", PDF, "application/pdf")),
                ("sources-1-files", ("second.png", PNG, "image/png")),
            ],
            **{"sources-1-publisher": "Reuters", "sources-1-reliability": "B", "sources-1-credibility": "2"},
        )
    )
    first, second = files_of(db, event_id)
    assert [len(history(db, event_id, "file_add")), second.source_position] == [2, 1]
    form = client.get(f"/events/{event_id}/edit").text
    assert f'name="sources-0-file_ids" value="{first.id}"' in form
    assert f'name="sources-1-file_ids" value="{second.id}"' in form
    version = re.search(r'name="version" value="(\d+)"', form)[1]  # type: ignore[index]
    # Source 1 (TASS) is removed; Reuters becomes source 1 and keeps its file; a text file is added to it.
    known = re.search(r'name="known_files" value="([\d,]+)"', form)[1]  # type: ignore[index]
    assert known == f"{first.id},{second.id}"
    data = {
        **{k: v for k, v in FORM.items() if not k.startswith("sources-")},
        "version": version,
        "known_files": known,
        "sources-1-publisher": "Reuters",
        "sources-1-reliability": "B",
        "sources-1-credibility": "2",
        "sources-1-file_ids": str(second.id),
    }
    r = client.post(
        f"/events/{event_id}/edit",
        data=data,
        files=[("sources-1-files", ("notes.txt", b"saved text", "text/plain"))],
    )
    assert r.status_code == 303, r.text[:3000]
    kept = files_of(db, event_id)
    assert [(f.filename, f.source_position) for f in kept] == [("second.png", 0), ("notes.txt", 0)]
    (removed,) = history(db, event_id, "file_remove")
    assert "first.pdf" in removed.changes["file"]["before"] and sha(PDF) in removed.changes["file"]["before"]
    added = history(db, event_id, "file_add")[-1]
    assert (
        added.changes["file"]["after"].startswith("notes.txt (text/plain")
        and added.username == client.user.username
    )
    # Ticking "remove" drops a file on save, recorded once.
    form = client.get(f"/events/{event_id}/edit").text
    version = re.search(r'name="version" value="(\d+)"', form)[1]  # type: ignore[index]
    ids = ",".join(str(f.id) for f in kept)
    data = {
        **data,
        "version": version,
        "known_files": ids,
        "sources-1-file_ids": ids,
        "sources-1-drop_files": str(kept[1].id),
        "reason": "notes were a draft",
    }
    assert client.post(f"/events/{event_id}/edit", data=data).status_code == 303
    assert [f.filename for f in files_of(db, event_id)] == ["second.png"]
    assert [h.reason for h in history(db, event_id, "file_remove")] == [None, "notes were a draft"]
    # The same bytes chosen again for that source are already kept: nothing is added.
    form = client.get(f"/events/{event_id}/edit").text
    version = re.search(r'name="version" value="(\d+)"', form)[1]  # type: ignore[index]
    data = {**data, "version": version, "sources-1-file_ids": str(second.id), "sources-1-drop_files": ""}
    again = [("sources-1-files", ("again.png", PNG, "image/png"))]
    assert client.post(f"/events/{event_id}/edit", data=data, files=again).status_code == 303
    assert [f.filename for f in files_of(db, event_id)] == ["second.png"]
    assert len(history(db, event_id, "file_add")) == 3
    page = client.get(f"/events/{event_id}").text
    assert "File attached" in page and "File removed" in page


def test_a_forged_file_id_from_another_event_is_not_taken(client: Client, db: Session) -> None:
    client.login("analyst")
    other = created_id(post_new(client, [("sources-0-files", ("a.pdf", PDF, "application/pdf"))]))
    (theirs,) = files_of(db, other)
    mine = created_id(post_new(client, [], **{"sources-0-file_ids": str(theirs.id)}))
    assert files_of(db, mine) == []
    assert [f.id for f in files_of(db, other)] == [theirs.id]


def test_api_upload_list_detail_duplicate_and_delete(client: Client, db: Session, small_limit: int) -> None:
    client.login("analyst")
    event = make_event(db)
    base = f"/api/v1/events/{event.id}/sources"
    r = client.post(f"{base}/1/files", files={"file": ("a.pdf", PDF, "application/pdf")})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["sha256"] == sha(PDF) and body["size"] == len(PDF) and body["source"] == 1
    assert r.headers["location"] == body["url"]
    assert client.get(body["download"]).content == PDF
    detail = client.get(f"/api/v1/events/{event.id}").json()
    assert detail["sources"][0]["files"] == [body]
    assert client.get(f"{base}/1/files").json() == [body]
    assert client.get(body["url"]).json() == body
    again = client.post(f"{base}/1/files", files={"file": ("copy.pdf", PDF, "application/pdf")})
    assert again.status_code == 409 and "same SHA-256" in again.json()["detail"]
    assert client.post(f"{base}/2/files", files={"file": ("a.pdf", PDF)}).status_code == 404
    assert (
        client.post("/api/v1/events/999999/sources/1/files", files={"file": ("a.pdf", PDF)}).status_code
        == 404
    )
    too_big = client.post(f"{base}/1/files", files={"file": ("b.pdf", PDF + b"0" * 2000)})
    assert too_big.status_code == 413 and "1 KiB" in too_big.json()["detail"]
    empty = client.post(f"{base}/1/files", files={"file": ("c.pdf", b"")})
    assert empty.status_code == 422 and "empty" in empty.json()["detail"]
    wrong = client.post(f"{base}/1/files", files={"file": ("c.pdf", PNG)})
    assert wrong.status_code == 422 and "PNG" in wrong.json()["detail"]
    assert client.post(f"{base}/1/files", data={"x": "1"}).status_code == 422
    assert client.delete(body["url"] + "?reason=wrong+file").status_code == 204
    assert client.get(body["url"]).status_code == 404
    assert client.delete(body["url"]).status_code == 404
    (removed,) = history(db, event.id, "file_remove")
    assert removed.reason == "wrong file" and sha(PDF) in removed.changes["file"]["before"]
    assert len(history(db, event.id, "file_add")) == 1


def test_openapi_documents_the_file_statuses(client: Client) -> None:
    spec = client.get("/openapi.json").json()
    upload = spec["paths"]["/api/v1/events/{event_id}/sources/{n}/files"]["post"]
    assert {"201", "401", "403", "404", "409", "413", "422"} <= set(upload["responses"])
    assert "multipart/form-data" in upload["requestBody"]["content"]
    delete = spec["paths"]["/api/v1/events/{event_id}/sources/{n}/files/{file_id}"]["delete"]
    assert {"204", "401", "403", "404"} <= set(delete["responses"])


def test_api_put_that_drops_a_source_drops_its_files_in_the_history(client: Client, db: Session) -> None:
    client.login("analyst")
    event = make_event(
        db, sources=[{"publisher": "TASS", "reliability": "C", "credibility": 3}, {"publisher": "RIA"}]
    )
    r = client.post(f"/api/v1/events/{event.id}/sources/2/files", files={"file": ("a.pdf", PDF)})
    assert r.status_code == 201
    current = client.get(f"/api/v1/events/{event.id}").json()
    body = {k: current[k] for k in ("title", "kind", "status", "date", "summary", "tags", "version")}
    body["sources"] = [{"publisher": "TASS", "reliability": "C", "credibility": 3}]
    assert client.put(f"/api/v1/events/{event.id}", json=body).status_code == 200
    assert files_of(db, event.id) == []
    (removed,) = history(db, event.id, "file_remove")
    assert removed.reason == "its source was removed"


def test_soft_delete_keeps_files_until_the_row_goes(client: Client, db: Session) -> None:
    client.login("analyst")
    event_id = created_id(post_new(client, [("sources-0-files", ("a.pdf", PDF, "application/pdf"))]))
    (stored,) = files_of(db, event_id)
    assert client.delete(f"/api/v1/events/{event_id}").status_code == 204
    assert len(files_of(db, event_id)) == 1
    assert client.get(f"/events/{event_id}/files/{stored.id}").status_code == 404  # not visible to an analyst
    client.login("admin")
    assert client.get(f"/events/{event_id}/files/{stored.id}").content == PDF  # admins still reach it
    db.execute(text("DELETE FROM events WHERE id = :id"), {"id": event_id})
    assert files_of(db, event_id) == []


def test_csv_carries_archive_accessed_and_hashes_and_the_import_round_trips(
    client: Client, db: Session
) -> None:
    client.login("analyst")
    event_id = created_id(
        post_new(
            client,
            [
                ("sources-0-files", ("a.pdf", PDF, "application/pdf")),
                ("sources-0-files", ("b.png", PNG, "image/png")),
            ],
            **{"sources-1-publisher": "Reuters", "sources-1-reliability": "B", "sources-1-credibility": "2"},
        )
    )
    export = client.get("/export.csv").content.decode()
    rows = list(csv.DictReader(io.StringIO(export)))
    (row,) = [r for r in rows if r["id"] == str(event_id)]
    assert list(rows[0]) == list(HEADER)
    assert row["source_archive_urls"] == "https://archive.ph/abcde; "
    assert row["source_accessed"] == "2025-10-15; "
    assert row["source_files"] == f"sha256:{sha(PDF)},sha256:{sha(PNG)}; "
    # Import: archive URL and accessed date come back; files do not travel in CSV (the column is ignored).
    single = export.split("\r\n", 1)[0] + "\r\n" + export[export.index(f"\r\n{event_id},") + 2 :]
    preview = client.post("/import", files={"file": ("mine.csv", single.encode(), "text/csv")})
    assert preview.status_code == 200, preview.text
    token = html.unescape(re.search(r'name="token" value="([^"]*)"', preview.text)[1])  # type: ignore[index]
    assert client.post("/import/commit", data={"token": token}).status_code == 200
    db.expire_all()
    newest = db.scalars(select(Event).order_by(Event.id.desc()).limit(1)).one()
    assert newest.id != event_id
    assert [(s.archive_url, str(s.accessed_on)) for s in newest.sources] == [
        ("https://archive.ph/abcde", "2025-10-15"),
        (None, "None"),
    ]
    assert files_of(db, newest.id) == []
    again = list(csv.DictReader(io.StringIO(client.get("/export.csv").content.decode())))
    (copy,) = [r for r in again if r["id"] == str(newest.id)]
    assert copy["source_files"] == ""
    same = ("source_archive_urls", "source_accessed", "source_publishers", "title")
    assert {k: copy[k] for k in same} == {k: row[k] for k in same}


def test_accessed_on_must_be_a_past_day(client: Client, db: Session) -> None:
    client.login("analyst")
    r = post_new(client, [], **{"sources-0-accessed": "2999-01-01", "sources-0-archive_url": "ftp://x"})
    assert r.status_code == 422
    assert 'id="sources-0-accessed-error"' in r.text and "in the future" in r.text
    assert 'id="sources-0-archive_url-error"' in r.text


def test_a_form_over_the_request_cap_gets_a_page_that_says_what_to_do(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_headers import small_app

    client = Client(small_app(db, monkeypatch, limit=4096), db)
    client.login("analyst")
    r = post_new(client, [("sources-0-files", ("big.pdf", PDF + b"0" * 8000, "application/pdf"))])
    assert r.status_code == 413
    assert r.headers["content-type"].startswith("text/html")
    assert "at most 4 KiB can be sent at once" in r.text and "attach large files one save at a time" in r.text
    api = client.post("/api/v1/events/1/sources/1/files", files={"file": ("big.pdf", PDF + b"0" * 8000)})
    assert api.status_code == 413 and "4 KiB" in api.json()["detail"]


def test_a_file_added_while_the_form_was_open_is_not_dropped_by_its_save(client: Client, db: Session) -> None:
    client.login("analyst")
    event_id = created_id(post_new(client, [("sources-0-files", ("a.pdf", PDF, "application/pdf"))]))
    form = client.get(f"/events/{event_id}/edit").text
    # Meanwhile a colleague attaches a second file through the API.
    r = client.post(f"/api/v1/events/{event_id}/sources/1/files", files={"file": ("b.png", PNG)})
    assert r.status_code == 201
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
    data = {**{k: v for k, v in FORM.items()}, **fields, "title": "Edited while a file came in"}
    data.pop("client_token", None)
    assert client.post(f"/events/{event_id}/edit", data=data).status_code == 303
    assert [f.filename for f in files_of(db, event_id)] == ["a.pdf", "b.png"]


def test_a_file_of_several_chunks_streams_back_whole(client: Client, db: Session) -> None:
    client.login("analyst")
    event = make_event(db)
    big = (b"saved page line, " * 200_000)[: 2 * 1024 * 1024 + 12_345]  # two 1 MiB pieces and a tail
    r = client.post(f"/api/v1/events/{event.id}/sources/1/files", files={"file": ("page.txt", big)})
    assert r.status_code == 201, r.text
    download = client.get(r.json()["download"])
    assert download.headers["content-type"] == "text/plain; charset=utf-8"
    assert len(download.content) == len(big) and sha(download.content) == sha(big) == r.json()["sha256"]


def test_api_create_takes_archive_url_and_accessed(client: Client, db: Session) -> None:
    client.login("analyst")
    body = {
        "title": "Archived",
        "kind": "statement",
        "date": "2025-10",
        "sources": [{"publisher": "TASS", "archive_url": "https://archive.ph/q", "accessed": "2025-10-15"}],
    }
    r = client.post("/api/v1/events", json=body)
    assert r.status_code == 201, r.text
    (source,) = r.json()["sources"]
    assert (source["archive_url"], source["accessed"], source["files"]) == (
        "https://archive.ph/q",
        "2025-10-15",
        [],
    )
    body["sources"][0]["accessed"] = "15/10/2025"
    bad = client.post("/api/v1/events", json=body)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "accessed"


TASS = {"publisher": "TASS", "url": "https://tass.com/a", "reliability": "C", "credibility": 3}
RIA = {"publisher": "RIA", "reliability": "D", "credibility": 4}  # no URL: publisher, title and date


def two_sources_with_files(client: Client, db: Session) -> tuple[int, dict[str, Any]]:
    """An event sourced [TASS, RIA], a PDF on TASS and a PNG on RIA; the body a PUT would start from."""
    event = make_event(db, sources=[TASS, RIA])
    for n, (name, data) in ((1, ("tass.pdf", PDF)), (2, ("ria.png", PNG))):
        r = client.post(f"/api/v1/events/{event.id}/sources/{n}/files", files={"file": (name, data)})
        assert r.status_code == 201
    current = client.get(f"/api/v1/events/{event.id}").json()
    body = {k: current[k] for k in ("title", "kind", "status", "date", "summary", "tags", "version")}
    return event.id, body


def placed(db: Session, event_id: int) -> list[tuple[int, str]]:
    return [(f.source_position, f.filename) for f in files_of(db, event_id)]


def test_api_put_that_removes_the_first_source_keeps_the_second_ones_file_on_it(
    client: Client, db: Session
) -> None:
    client.login("analyst")
    event_id, body = two_sources_with_files(client, db)
    r = client.put(f"/api/v1/events/{event_id}", json={**body, "sources": [RIA]})
    assert r.status_code == 200, r.text
    assert placed(db, event_id) == [(0, "ria.png")]  # not TASS's PDF passed off as RIA's evidence
    (removed,) = history(db, event_id, "file_remove")
    assert removed.reason == "its source was removed"
    assert "tass.pdf" in str(removed.changes)
    files = client.get(f"/api/v1/events/{event_id}").json()["sources"][0]["files"]
    assert [f["sha256"] for f in files] == [sha(PNG)]


def test_api_put_and_patch_that_reorder_sources_move_files_with_them(client: Client, db: Session) -> None:
    client.login("analyst")
    event_id, body = two_sources_with_files(client, db)
    r = client.put(f"/api/v1/events/{event_id}", json={**body, "sources": [RIA, TASS]})
    assert r.status_code == 200, r.text
    assert placed(db, event_id) == [(0, "ria.png"), (1, "tass.pdf")]
    # A fixed publisher typo keeps the file of a source with a URL; a regrade keeps any source's.
    sources = [{**TASS, "publisher": "TASS agency"}, {**RIA, "reliability": "B"}, {"publisher": "Reuters"}]
    r = client.patch(f"/api/v1/events/{event_id}", json={"version": r.json()["version"], "sources": sources})
    assert r.status_code == 200, r.text
    assert placed(db, event_id) == [(0, "tass.pdf"), (1, "ria.png")]
    assert history(db, event_id, "file_remove") == []


def test_api_edit_with_two_sources_of_one_identity_is_refused_not_guessed(
    client: Client, db: Session
) -> None:
    client.login("analyst")
    event_id, body = two_sources_with_files(client, db)
    twins = [RIA, TASS, {**TASS, "credibility": 2}]
    r = client.put(f"/api/v1/events/{event_id}", json={**body, "sources": twins})
    assert r.status_code == 422
    (item,) = r.json()["detail"]
    assert item["type"] == "ambiguous_source"
    assert item["loc"] == ["body", "sources", 2]
    assert "Sources 2 and 3 are both https://tass.com/a" in item["msg"]
    assert placed(db, event_id) == [(0, "tass.pdf"), (1, "ria.png")]
    assert client.get(f"/api/v1/events/{event_id}").json()["version"] == body["version"]
    # Sources that keep their identities and order never ask, even when two of them are alike.
    r = client.patch(f"/api/v1/events/{event_id}", json={"version": body["version"], "title": "Renamed"})
    assert r.status_code == 200, r.text


def test_openapi_says_files_follow_their_source_on_put_and_patch(client: Client) -> None:
    spec = client.get("/openapi.json").json()["paths"]["/api/v1/events/{event_id}"]
    for verb in ("put", "patch"):
        assert "same identity" in spec[verb]["description"]
        assert "ambiguous_source" in spec[verb]["responses"]["422"]["description"]


def test_files_kept_for_questions_never_evict_an_import_preview_nor_open_as_one(
    client: Client, db: Session
) -> None:
    from app.queries.transfer import staging

    user = client.login("analyst")
    preview = staging.stage(db, user.id, "title\n", {"dry": True})
    db.commit()
    for _ in range(staging.PER_USER + 1):
        r = post_new(client, [("sources-0-files", ("a.pdf", PDF, "application/pdf"))], title="")
        assert r.status_code == 422
    db.expire_all()
    kinds = db.scalars(text("select coalesce(options->>'kind', 'import') from staged_imports")).all()
    assert kinds.count("evidence") == staging.PER_USER and "import" in kinds
    # An evidence token is no import preview (and a preview token no set of kept files).
    token = kept_fields(r.text)["kept_files"]
    with pytest.raises(staging.StagingRefused):
        staging.take(db, token, user.id)
    db.rollback()
    forged = {"kept_files": preview, "sources-0-kept": "0", "sources-0-kept_names": "x"}
    r = post_new(client, [], title="", **forged)
    assert "are gone" in r.text
    assert staging.take(db, preview, user.id).text == "title\n"
