"""create_app(): mounts routers, static files, middleware and error pages."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.auth.deps import (
    PRE_SESSION_COOKIE,
    CsrfFailed,
    Forbidden,
    LoginRequired,
    PasswordChangeRequired,
    csrf_protect,
)
from app.config import get_settings
from app.security_headers import SecurityHeadersMiddleware, headers_for
from app.templating import ROOT, render
from app.timing import ServerTimingMiddleware

log = logging.getLogger(__name__)
security_log = logging.getLogger("signalboard.security")


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "application/json" in request.headers.get("accept", "")


def _error(request: Request, status: int, title: str, message: str) -> Response:
    """A JSON error for the API, a friendly page for people; never a stack trace."""
    if _wants_json(request):
        return JSONResponse({"detail": message}, status_code=status)
    return render(
        request, "error.html", {"status": status, "title": title, "message": message}, status_code=status
    )


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path, for the Allow header of a 405."""
    from starlette.routing import Match

    allowed = []
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
        # Ask the router itself (included routers are matched lazily, their routes are not listed).
        probe = {**request.scope, "method": method}
        if any(route.matches(probe)[0] == Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return ", ".join(allowed)


def install_error_handlers(app: FastAPI) -> None:
    """Map auth failures, HTTP errors and crashes to clear responses."""

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        if _wants_json(request) or request.headers.get("authorization"):  # scripts get 401, not a page
            return JSONResponse(
                {"detail": "Log in or send a valid API token."},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={"HX-Redirect": f"/login?next={target}"})
        from urllib.parse import quote

        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    @app.exception_handler(PasswordChangeRequired)
    async def password_change(request: Request, exc: PasswordChangeRequired) -> Response:
        if _wants_json(request):
            return JSONResponse({"detail": "Change your one-time password first."}, status_code=403)
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={"HX-Redirect": "/account/password"})
        return RedirectResponse("/account/password", status_code=303)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        if not getattr(request.state, "denied", False):  # role checks audit their own denials
            principal = getattr(request.state, "principal", None)
            security_log.warning(
                "denied user=%s %s %s: %s",
                principal.username if principal else "-",
                request.method,
                request.url.path,
                exc.message,
            )
        return _error(request, 403, "Not allowed", exc.message)

    @app.exception_handler(CsrfFailed)
    async def csrf_failed(request: Request, exc: CsrfFailed) -> Response:
        return _error(request, 403, "Request refused", exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        titles = {404: "Not found", 405: "Not allowed", 413: "Too large", 429: "Too many attempts"}
        detail = exc.detail if isinstance(exc.detail, str) else "The request could not be handled."
        if exc.status_code == 400 and detail == "There was an error parsing the body":
            # FastAPI's answer to a body that is not even text (bad UTF-8): the same documented 422
            # as any other malformed body.
            message = "The body is not valid JSON (or not UTF-8 text)."
            if _wants_json(request):
                return JSONResponse(
                    {"detail": [{"loc": ["body"], "msg": message, "type": "json_invalid"}]}, status_code=422
                )
            return _error(request, 422, "Invalid request", message)
        if exc.status_code == 404 and detail == "Not Found":
            detail = "There is nothing at this address. It may have been deleted or never existed."
        response = _error(request, exc.status_code, titles.get(exc.status_code, "Error"), detail)
        for k, v in (exc.headers or {}).items():
            response.headers[k] = v
        if exc.status_code == 405:
            # Starlette lists only the first route that matched the path; a path served by several
            # routes (GET and POST /api/v1/events) must list every method it accepts.
            response.headers["Allow"] = _allowed_methods(request)
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        if _wants_json(request):
            return JSONResponse({"detail": errors}, status_code=422)
        message = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'request'}: {e['msg']}" for e in errors
        )
        return _error(request, 422, "Invalid request", message)

    @app.exception_handler(DataError)
    async def bad_value(request: Request, exc: DataError) -> Response:
        # A value that passed validation but not the database (an id beyond its integer range):
        # the request is wrong, not the server.
        log.info("value refused by the database on %s %s: %s", request.method, request.url.path, exc.orig)
        message = "A value in this request is out of range or not valid here."
        if _wants_json(request):
            return JSONResponse(
                {"detail": [{"loc": ["request"], "msg": message, "type": "value_error"}]}, status_code=422
            )
        return _error(request, 422, "Invalid request", message)

    @app.exception_handler(OperationalError)
    async def database_down(request: Request, exc: OperationalError) -> Response:
        # The database is unreachable (restart, failover) or refused transiently: a 503 to retry,
        # not a crash. Pre-ping reconnects by itself once it is back.
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc.orig)
        if request.url.path == "/healthz":
            response: Response = JSONResponse({"status": "unavailable", "database": "down"}, status_code=503)
        else:
            response = _error(
                request,
                503,
                "Database unavailable",
                "The database is not answering right now. Nothing was saved; please try again in a moment.",
            )
        response.headers["Retry-After"] = "5"
        return response

    @app.exception_handler(PoolTimeoutError)
    async def pool_busy(request: Request, exc: PoolTimeoutError) -> Response:
        # Every pooled connection stayed busy for the whole pool_timeout: the server is overloaded, not
        # broken. A 503 with Retry-After lets clients (and load balancers) back off and try again.
        log.warning("connection pool exhausted on %s %s", request.method, request.url.path)
        if request.url.path == "/healthz":
            response: Response = JSONResponse({"status": "busy"}, status_code=503)
        else:
            response = _error(
                request,
                503,
                "Server busy",
                "The server has too much to do right now. Nothing was saved; please try again in a moment.",
            )
        response.headers["Retry-After"] = "5"
        return response

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        response = _error(
            request,
            500,
            "Something went wrong",
            "The server could not finish this request. Nothing was saved; please try again.",
        )
        # This handler runs in Starlette's outermost middleware, outside SecurityHeadersMiddleware.
        response.headers.update(headers_for(request.url.path))
        return response


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start building the in-memory copy of the filterable facts and filling the export's stored lines."""
    from app.db import WORKER_THREADS, get_engine, get_replica_engine
    from app.queries import export_lines
    from app.queries.facts import start_warm_up

    anyio.to_thread.current_default_thread_limiter().total_tokens = WORKER_THREADS

    # Tests build it where they need it; a thread per TestClient would race their truncations.
    if get_settings().environment != "test":
        # Pages read the primary's copy, counts the read engine's (the replica's, when one is configured);
        # /healthz answers 503 until both are read.
        start_warm_up(*dict.fromkeys((get_engine(), get_replica_engine())))
        # Lines are written, so on the primary; a replica receives them by replication.
        export_lines.start(get_engine())
        # Everything loaded so far (modules, ORM mappers, compiled templates) lives as long as the process:
        # out of the collector's sight, a full collection no longer walks it (a ~70 ms pause in 1 of 20
        # timeline requests before).
        gc.freeze()
    try:
        yield
    finally:
        export_lines.stop()


def create_app() -> FastAPI:
    """Build the ASGI app."""
    from app.api import docs as api_docs
    from app.api import events as api_events
    from app.api import reference as api_reference
    from app.web import (
        accounts,
        admin,
        dyads,
        event_forms,
        events,
        health,
        reference,
        reference_edit,
        suggest,
        timeline,
        transfer,
        users,
    )

    settings = get_settings()
    app = FastAPI(
        title="Signalboard",
        version="0.1.0",
        description="Foreign military support signals: events, sources, actors, systems and countries.",
        lifespan=lifespan,
        dependencies=[Depends(csrf_protect)],
        docs_url=None,  # served by app.api.docs from the vendored Swagger UI (no CDN)
        redoc_url=None,
    )
    app.add_middleware(
        SecurityHeadersMiddleware,
        max_body=settings.max_request_bytes,
        secure_cookies=not settings.is_development,
    )
    # Outermost, so the figure covers every middleware too (read by bench/run.py).
    app.add_middleware(ServerTimingMiddleware)

    @app.middleware("http")
    async def pre_session_cookie(request: Request, call_next):
        response = await call_next(request)
        pre = getattr(request.state, "new_pre_cookie", None)
        if pre:
            response.set_cookie(
                PRE_SESSION_COOKIE, pre, httponly=True, samesite="lax", secure=not settings.is_development
            )
        return response

    install_error_handlers(app)
    app.mount("/static", StaticFiles(directory=str(ROOT / "static")), name="static")
    for module in (
        health,
        accounts,
        users,
        timeline,
        event_forms,
        events,
        dyads,
        reference_edit,
        reference,
        suggest,
        transfer,
        admin,
    ):
        app.include_router(module.router)
    app.include_router(api_events.router, prefix="/api/v1")
    app.include_router(api_reference.router, prefix="/api/v1")
    app.include_router(api_docs.router)
    return app
