"""/openapi.json describes every API route with its answers; /docs renders offline in a real browser."""

from __future__ import annotations

import re

import pytest

from tests.conftest import Client, browser_login

API_PATHS = {
    "/api/v1/events": {"get": {"200", "401", "403", "422"}, "post": {"200", "201", "401", "403", "422"}},
    "/api/v1/events/{event_id}": {
        "get": {"200", "401", "403", "404", "422"},
        "put": {"200", "401", "403", "404", "409", "422"},
        "patch": {"200", "401", "403", "404", "409", "422"},
        "delete": {"204", "401", "403", "404", "409", "422"},
    },
    "/api/v1/actors": {"get": {"200", "401", "403", "422"}},
    "/api/v1/actors/{actor_id}": {"get": {"200", "401", "403", "404", "422"}},
    "/api/v1/systems": {"get": {"200", "401", "403", "422"}},
    "/api/v1/systems/{system_id}": {"get": {"200", "401", "403", "404", "422"}},
    "/api/v1/countries": {"get": {"200", "401", "403", "422"}},
    "/api/v1/countries/{code}": {"get": {"200", "401", "403", "404", "422"}},
}


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
