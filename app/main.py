"""create_app(): mounts routers, static files, middleware and error pages."""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import quote

import anyio
import psycopg
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth.deps import (
    PRE_SESSION_COOKIE,
    CsrfFailed,
    Forbidden,
    LoginRequired,
    PasswordChangeRequired,
    csrf_protect,
)
from app.config import get_settings
from app.http.security_headers import SecurityHeadersMiddleware, headers_for
from app.http.timing import ServerTimingMiddleware
from app.templating import ROOT, render

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


@dataclass(frozen=True)
class Refusal:
    """How one kind of failure is answered: status, page title and message (None: the exception's own)."""

    status: int
    title: str
    message: str | None = None
    log: Callable[[Request, Exception], None] | None = None  # one line, or the traceback of a crash
    retry_after: bool = False  # a transient state: clients and load balancers back off and retry
    as_field_error: bool = False  # the API's detail is a one-item list, like any validation error
    health: dict[str, str] | None = None  # /healthz's JSON body (monitors read it, not a page)


def _logged(logger: logging.Logger, level: int, what: str) -> Callable[[Request, Exception], None]:
    def write(request: Request, exc: Exception) -> None:
        logger.log(
            level, "%s on %s %s: %s", what, request.method, request.url.path, getattr(exc, "orig", exc)
        )

    return write


def _log_denied(request: Request, exc: Exception) -> None:
    if not getattr(request.state, "denied", False):  # role checks audit their own denials
        principal = getattr(request.state, "principal", None)
        security_log.warning(
            "denied user=%s %s %s: %s",
            principal.username if principal else "-",
            request.method,
            request.url.path,
            exc,
        )


def _log_crash(request: Request, exc: Exception) -> None:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)


TRY_AGAIN = "Nothing was saved; please try again in a moment."
# The database is unreachable (restart, failover) or refused transiently: a 503 to retry, not a crash.
# Pre-ping reconnects by itself once it is back.
DATABASE_DOWN = Refusal(
    503,
    "Database unavailable",
    "The database is not answering right now. " + TRY_AGAIN,
    log=_logged(log, logging.WARNING, "database unavailable"),
    retry_after=True,
    health={"status": "unavailable", "database": "down"},
)
# Exception class → answer. A class missing here is answered by its nearest listed base class.
REFUSALS: dict[type[Exception], Refusal] = {
    Forbidden: Refusal(403, "Not allowed", log=_log_denied),
    CsrfFailed: Refusal(403, "Request refused"),
    # A value that passed validation but not the database (an id beyond its integer range): the request
    # is wrong, not the server.
    DataError: Refusal(
        422,
        "Invalid request",
        "A value in this request is out of range or not valid here.",
        log=_logged(log, logging.INFO, "value refused by the database"),
        as_field_error=True,
    ),
    OperationalError: DATABASE_DOWN,
    # Raised by the export's cursor, which runs straight on the driver's connection.
    psycopg.OperationalError: DATABASE_DOWN,
    # Every pooled connection stayed busy for the whole pool_timeout: overloaded, not broken.
    PoolTimeoutError: Refusal(
        503,
        "Server busy",
        "The server has too much to do right now. " + TRY_AGAIN,
        log=_logged(log, logging.WARNING, "connection pool exhausted"),
        retry_after=True,
        health={"status": "busy"},
    ),
    Exception: Refusal(
        500,
        "Something went wrong",
        "The server could not finish this request. Nothing was saved; please try again.",
        log=_log_crash,
    ),
}


def _refusal_for(exc: Exception) -> Refusal:
    for cls in type(exc).__mro__:
        if cls in REFUSALS:
            return REFUSALS[cls]
    return REFUSALS[Exception]


async def refuse(request: Request, exc: Exception) -> Response:
    """Answer any exception of REFUSALS as its table row says."""
    row = _refusal_for(exc)
    if row.log is not None:
        row.log(request, exc)
    message = row.message or str(exc)
    response: Response
    if row.health is not None and request.url.path == "/healthz":
        response = JSONResponse(row.health, status_code=row.status)
    elif row.as_field_error and _wants_json(request):
        detail = [{"loc": ["request"], "msg": message, "type": "value_error"}]
        response = JSONResponse({"detail": detail}, status_code=row.status)
    else:
        response = _error(request, row.status, row.title, message)
    if row.retry_after:
        response.headers["Retry-After"] = "5"
    # The 500 handler runs in Starlette's outermost middleware, outside SecurityHeadersMiddleware (which
    # adds only what is missing, so the others are unchanged).
    response.headers.update(headers_for(request.url.path))
    return response


async def login_required(request: Request, exc: Exception) -> Response:
    """Scripts get 401; people go to the login page and come back."""
    if _wants_json(request) or request.headers.get("authorization"):
        return JSONResponse(
            {"detail": "Log in or send a valid API token."},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": f"/login?next={target}"})
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


async def password_change(request: Request, exc: Exception) -> Response:
    """A one-time password must be replaced before anything else."""
    if _wants_json(request):
        return JSONResponse({"detail": "Change your one-time password first."}, status_code=403)
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": "/account/password"})
    return RedirectResponse("/account/password", status_code=303)


HTTP_TITLES = {404: "Not found", 405: "Not allowed", 413: "Too large", 429: "Too many attempts"}


async def http_error(request: Request, exc: Exception) -> Response:
    """An HTTPException raised by a route or by routing (404, 405), as page or JSON."""
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else "The request could not be handled."
    if exc.status_code == 400 and detail == "There was an error parsing the body":
        # FastAPI's answer to a body that is not even text (bad UTF-8): the same documented 422 as any
        # other malformed body.
        message = "The body is not valid JSON (or not UTF-8 text)."
        if _wants_json(request):
            return JSONResponse(
                {"detail": [{"loc": ["body"], "msg": message, "type": "json_invalid"}]}, status_code=422
            )
        return _error(request, 422, "Invalid request", message)
    if exc.status_code == 404 and detail == "Not Found":
        detail = "There is nothing at this address. It may have been deleted or never existed."
    response = _error(request, exc.status_code, HTTP_TITLES.get(exc.status_code, "Error"), detail)
    for k, v in (exc.headers or {}).items():
        response.headers[k] = v
    if exc.status_code == 405:
        # Starlette lists only the first route that matched the path; a path served by several routes
        # (GET and POST /api/v1/events) must list every method it accepts.
        response.headers["Allow"] = _allowed_methods(request)
    return response


async def validation_error(request: Request, exc: Exception) -> Response:
    """Each bad field or parameter: a list for the API, one sentence on the page."""
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    if _wants_json(request):
        return JSONResponse({"detail": errors}, status_code=422)
    message = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'request'}: {e['msg']}" for e in errors)
    return _error(request, 422, "Invalid request", message)


# Failures whose answer is more than a status and a message: redirects, lists of field errors.
HANDLERS: dict[type[Exception], Callable[[Request, Exception], Awaitable[Response]]] = {
    LoginRequired: login_required,
    PasswordChangeRequired: password_change,
    StarletteHTTPException: http_error,
    RequestValidationError: validation_error,
}


def install_error_handlers(app: FastAPI) -> None:
    """Map auth failures, HTTP errors and crashes to clear responses (see REFUSALS and HANDLERS)."""
    for cls in REFUSALS:
        app.add_exception_handler(cls, refuse)
    for cls, handler in HANDLERS.items():
        app.add_exception_handler(cls, handler)


class PreSessionCookie:
    """Sets the anonymous visitor's CSRF cookie that get_principal chose (pure ASGI: streams stay streams).

    A BaseHTTPMiddleware here ended a cut stream (an export whose database went away) as if complete.
    """

    def __init__(self, app: ASGIApp, secure: bool) -> None:
        self.app = app
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Add the Set-Cookie header to the response start when the request made a new pre-session."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: Message) -> None:
            pre = scope.get("state", {}).get("new_pre_cookie")
            if message["type"] == "http.response.start" and pre:
                cookie = Response()
                cookie.set_cookie(PRE_SESSION_COOKIE, pre, httponly=True, samesite="lax", secure=self.secure)
                set_cookie = [(k, v) for k, v in cookie.raw_headers if k == b"set-cookie"]
                message = {**message, "headers": [*message.get("headers", []), *set_cookie]}
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def _warm_caches() -> None:
    """Load what a first quick add and a first login with an unknown name would otherwise wait for."""
    from app.auth.passwords import dummy_hash
    from app.quickadd import warm_up as quickadd_warm_up

    quickadd_warm_up()
    dummy_hash()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start reading the in-memory facts copy and re-making outdated export lines."""
    from app.db import WORKER_THREADS, get_engine, get_replica_engine
    from app.queries.aggregates.facts import start_warm_up
    from app.queries.transfer import export_lines

    anyio.to_thread.current_default_thread_limiter().total_tokens = WORKER_THREADS

    if get_settings().warm_up_at_start:
        # Lines of an older format version are made again, on the primary (a replica receives them).
        export_lines.announce_remake()
        lines = threading.Thread(
            target=export_lines.remake_at_start, args=(get_engine(),), name="export-lines", daemon=True
        )
        # dateparser loads its language data on first use: a second the first quick add would wait; the
        # dummy password hash (unknown user names at login) would cost that login a hash more.
        quickadd = threading.Thread(target=_warm_caches, name="warm-caches", daemon=True)
        # Pages read the primary's copy, counts the read engine's (the replica's, when one is configured);
        # /healthz answers 503 until both are read. The other two start after: they do not hold back
        # readiness, and on a small machine they would slow the read that does.
        start_warm_up(*dict.fromkeys((get_engine(), get_replica_engine())), then=(lines, quickadd))
        # Everything loaded so far (modules, ORM mappers, compiled templates) lives as long as the process:
        # out of the collector's sight, a full collection no longer walks it (a pause in some
        # timeline requests before).
        gc.freeze()
    yield


def create_app() -> FastAPI:
    """Build the ASGI app."""
    from app.api import docs as api_docs
    from app.api import events as api_events
    from app.api import evidence as api_evidence
    from app.api import notes as api_notes
    from app.api import reference as api_reference
    from app.web import (
        accounts,
        admin,
        dyads,
        event_forms,
        events,
        evidence,
        feeds,
        health,
        links,
        quick,
        reference,
        reference_edit,
        review,
        suggest,
        timeline,
        transfer,
        users,
        views,
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

    app.add_middleware(PreSessionCookie, secure=not settings.is_development)

    install_error_handlers(app)
    app.mount("/static", StaticFiles(directory=str(ROOT / "static")), name="static")
    for module in (
        health,
        accounts,
        users,
        timeline,
        quick,
        event_forms,
        events,
        evidence,
        dyads,
        review,
        links,
        reference_edit,
        reference,
        suggest,
        transfer,
        admin,
        views,
        feeds,
    ):
        # HTML pages and forms: the OpenAPI document describes the JSON API only.
        app.include_router(module.router, include_in_schema=False)
    app.include_router(api_events.router, prefix="/api/v1")
    app.include_router(api_evidence.router, prefix="/api/v1")
    app.include_router(api_reference.router, prefix="/api/v1")
    app.include_router(api_notes.router, prefix="/api/v1")
    app.include_router(api_docs.router)
    return app
