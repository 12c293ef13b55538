"""/docs: Swagger UI served from the vendored swagger-ui-dist (no CDN), reading /openapi.json."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

SWAGGER = "/static/vendor/swagger-ui-5.35.0"

router = APIRouter(include_in_schema=False)


@router.get("/docs", response_class=HTMLResponse)
def swagger_ui() -> HTMLResponse:
    """The interactive API description; public like /openapi.json, since it shows shapes, never data."""
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Signalboard API",
        swagger_js_url=f"{SWAGGER}/swagger-ui-bundle.js",
        swagger_css_url=f"{SWAGGER}/swagger-ui.css",
        swagger_favicon_url="/static/favicon.svg",
        swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": False},
    )
