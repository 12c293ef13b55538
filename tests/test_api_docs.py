"""/openapi.json describes every API route with its answers; /docs renders offline in a real browser."""

from __future__ import annotations

import re

import pytest

from tests.conftest import Client, browser_login

# Every operation may answer these (NUL in the address, authentication, role, body too large, invalid
# input, database down or busy); each path adds its own.
COMMON = {"400", "401", "403", "413", "422", "503"}
API_PATHS = {
    "/api/v1/events": {"get": COMMON | {"200"}, "post": COMMON | {"200", "201", "409"}},
    "/api/v1/events/{event_id}": {
        "get": COMMON | {"200", "404"},
        "put": COMMON | {"200", "404", "409"},
        "patch": COMMON | {"200", "404", "409"},
        "delete": COMMON | {"204", "404", "409"},
    },
    "/api/v1/events/{event_id}/notes": {"get": COMMON | {"200", "404"}, "post": COMMON | {"201", "404"}},
    "/api/v1/events/{event_id}/notes/{note_id}": {
        "patch": COMMON | {"200", "404"},
        "delete": COMMON | {"204", "404"},
    },
    "/api/v1/events/{event_id}/links": {"post": COMMON | {"201", "404"}},
    "/api/v1/events/{event_id}/links/{link_id}": {"delete": COMMON | {"204", "404"}},
    "/api/v1/events/{event_id}/review": {"post": COMMON | {"200", "404"}},
    "/api/v1/events/{event_id}/sources/{n}/files": {
        "get": COMMON | {"200", "404"},
        "post": COMMON | {"201", "404", "409"},
    },
    "/api/v1/events/{event_id}/sources/{n}/files/{file_id}": {
        "get": COMMON | {"200", "404"},
        "delete": COMMON | {"204", "404"},
    },
    "/api/v1/events/{event_id}/files/{file_id}": {"get": COMMON | {"200", "404"}},
    "/api/v1/actors": {"get": COMMON | {"200"}},
    "/api/v1/actors/{actor_id}": {"get": COMMON | {"200", "404"}},
    "/api/v1/systems": {"get": COMMON | {"200"}},
    "/api/v1/systems/{system_id}": {"get": COMMON | {"200", "404"}},
    "/api/v1/origins": {"get": COMMON | {"200"}},
    "/api/v1/origins/{origin_id}": {"get": COMMON | {"200", "404"}},
    "/api/v1/countries": {"get": COMMON | {"200"}},
    "/api/v1/countries/{code}": {"get": COMMON | {"200", "404"}},
}


def test_openapi_holds_the_json_api_only_with_the_constraints_the_code_enforces(client: Client) -> None:
    doc = client.get("/openapi.json").json()
    assert set(doc["paths"]) == set(API_PATHS)  # no HTML page declared as JSON
    for path, param in (
        ("/api/v1/events/{event_id}", "event_id"),
        ("/api/v1/actors/{actor_id}", "actor_id"),
        ("/api/v1/systems/{system_id}", "system_id"),
        ("/api/v1/origins/{origin_id}", "origin_id"),
    ):
        (schema,) = [p["schema"] for p in doc["paths"][path]["get"]["parameters"] if p["name"] == param]
        assert (schema["minimum"], schema["maximum"]) == (1, 2**31 - 1), path
    params = {p["name"]: p["schema"] for p in doc["paths"]["/api/v1/events"]["get"]["parameters"]}
    assert (
        "transfer" in params["kind"]["anyOf"][0]["enum"]
        and "denied" in params["status"]["anyOf"][1]["items"]["enum"]
    )
    assert set(params["reliability_max"]["enum"]) >= set("ABCDEF")
    assert set(params["stage_min"]["enum"]) == {"", *"0123456"}
    dates = params["from"]["pattern"]
    assert re.fullmatch(dates, "2025-10-14") and not re.fullmatch(dates, "14/10/2025")
    url = doc["components"]["schemas"]["SourceInput"]["properties"]["url"]["anyOf"][0]["pattern"]
    assert re.search(url, "https://tass.com/a") and not re.search(url, "ftp://x.org/a")
    for code, answer in doc["paths"]["/api/v1/events"]["post"]["responses"].items():
        if code[0] in "45":
            ref = answer["content"]["application/json"]["schema"]["$ref"]
            assert ref == "#/components/schemas/Problem", code  # one error model for every refusal


def test_openapi_lists_every_route_with_its_status_codes(client: Client) -> None:
    r = client.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    for path, methods in API_PATHS.items():
        assert path in doc["paths"], path
        for method, codes in methods.items():
            operation = doc["paths"][path][method]
            assert set(operation["responses"]) == codes, (path, method, set(operation["responses"]))
            assert operation["summary"] and operation["description"], (path, method)
            assert operation["security"] == [{"HTTPBearer": []}]
            for code, answer in operation["responses"].items():
                assert answer["description"], (path, method, code)
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_openapi_documents_filters_models_and_examples(client: Client) -> None:
    doc = client.get("/openapi.json").json()
    params = {p["name"] for p in doc["paths"]["/api/v1/events"]["get"]["parameters"]}
    assert params >= {
        "q",
        "country",
        "supplier",
        "recipient",
        "target",
        "actor",
        "system",
        "kind",
        "status",
        "stage_min",
        "from",
        "to",
        "source",
        "reliability_max",
        "tag",
        "origins_min",
        "origins_max",
        "likelihood",
        "confidence",
        "cursor",
        "limit",
    }
    schemas = doc["components"]["schemas"]
    for name in (
        "EventOut",
        "EventPage",
        "EventInput",
        "EventUpdate",
        "EventPatch",
        "VersionConflictOut",
        "Problem",
        "ActorOut",
        "SystemOut",
        "CountryOut",
    ):
        assert name in schemas, name
    assert "version" in schemas["EventPatch"]["required"]
    assert set(schemas["EventUpdate"]["required"]) >= {"title", "kind", "date", "version"}
    body = doc["paths"]["/api/v1/events"]["post"]["requestBody"]["content"]["application/json"]
    assert body["examples"]["offer"]["value"]["kind"] == "offer"
    ok = doc["paths"]["/api/v1/events/{event_id}"]["get"]["responses"]["200"]["content"]["application/json"]
    assert ok["schema"] == {"$ref": "#/components/schemas/EventOut"}


def test_docs_page_uses_the_vendored_swagger_ui(client: Client) -> None:
    r = client.get("/docs")
    assert r.status_code == 200
    assert "cdn" not in r.text.lower()
    assets = re.findall(r'(?:href|src)="(/static/vendor/swagger-ui-[^"]+)"', r.text)
    assert len(assets) == 2
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    assert "script-src 'self' 'unsafe-inline'" in r.headers["content-security-policy"]


@pytest.mark.browser
def test_swagger_ui_renders_offline(page, live_user) -> None:  # type: ignore[no-untyped-def]
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    failed: list[str] = []
    page.on("requestfailed", lambda req: failed.append(req.url))
    # Anything off this host would fail in the sandbox anyway; make sure nothing tries.
    page.route(
        re.compile(r"^https?://(?!127\.0\.0\.1).*"),
        lambda route: (failed.append(route.request.url), route.abort()),
    )
    browser_login(page, live_user("viewer"))
    page.goto("/docs")
    page.wait_for_selector(".opblock", timeout=15000)
    assert page.locator(".opblock").count() >= 11
    assert page.get_by_text("/api/v1/events/{event_id}").first.is_visible()
    assert page.locator(".info .title").inner_text().startswith("Signalboard")
    assert not failed, failed
    assert not [e for e in errors if "Content Security Policy" in e], errors
