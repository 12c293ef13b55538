"""Security headers on every response, and a cap on request body size (413)."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.http.streaming import StreamCut

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# /docs loads Swagger UI's inline bootstrap; it gets a looser policy of its own.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; frame-ancestors 'none'"
)


def headers_for(path: str) -> dict[str, str]:
    """The security headers for a response to `path` (also used by the 500 handler, which runs outside)."""
    headers = {
        "content-security-policy": DOCS_CSP if path in ("/docs", "/docs/oauth2-redirect") else CSP,
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
        "referrer-policy": "same-origin",
        "cross-origin-opener-policy": "same-origin",
    }
    if not path.startswith("/static/"):  # CSS/JS/icons hold no data and may be cached
        headers["cache-control"] = "no-store"
    return headers


class SecurityHeadersMiddleware:
    """Pure ASGI middleware (streams stay streams): adds headers, refuses oversized bodies."""

    def __init__(self, app: ASGIApp, max_body: int, secure_cookies: bool = False) -> None:
        self.app = app
        self.max_body = max_body
        self.secure_cookies = secure_cookies  # kept for callers; cookies set their own Secure flag

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        headers = dict((k.lower(), v) for k, v in scope.get("headers", []))
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                raw = list(message.get("headers", []))
                names = {k.lower() for k, _ in raw}
                for name, value in headers_for(path).items():
                    if name.encode() not in names:
                        raw.append((name.encode(), value.encode()))
                message["headers"] = raw
            await send(message)

        raw_query: bytes = scope.get("query_string", b"")
        if b"%00" in raw_query or b"\x00" in raw_query or "\x00" in path:
            # PostgreSQL text cannot hold NUL; refuse it once here rather than in every filter.
            await _bad_request(scope, receive, send_with_headers, "The address contains a NUL character.")
            return

        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            # Refused before the app reads a byte; the body is never received.
            await _too_large(scope, receive, send_with_headers, self.max_body)
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    # Chunked uploads without Content-Length are stopped as soon as they pass the cap.
                    raise BodyTooLarge()
            return message

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except BodyTooLarge:
            # Raised while reading outside FastAPI's handlers (the app's own handler renders it otherwise).
            if not started:
                await _too_large(scope, receive, send_with_headers, self.max_body)
        except StreamCut:
            # Logged where it failed; returning without the body's end makes the server close the connection.
            if not started:
                raise


class BodyTooLarge(HTTPException):
    """The body went past the configured limit while streaming in (an HTTP 413 the error handlers render)."""

    def __init__(self) -> None:
        super().__init__(413, "The request is too large.")


async def _too_large(scope: Scope, receive: Receive, send: Send, max_body: int) -> None:
    """A 413 in the app's own style: JSON for the API, the error page for people (a form with large
    evidence files lands here), naming the limit."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    from app.domain.evidence_types import mebibytes
    from app.templating import render

    request = Request(scope, receive)
    message = f"The request is too large: at most {mebibytes(max_body)} can be sent at once."
    if request.url.path.startswith("/api/"):
        response: Response = JSONResponse({"detail": message}, status_code=413)
    else:
        message += " Nothing was saved: go back, and attach large files one save at a time."
        context = {"status": 413, "title": "Too large", "message": message}
        response = render(request, "error.html", context, status_code=413)
    await response(scope, receive, send)


async def _bad_request(scope: Scope, receive: Receive, send: Send, message: str) -> None:
    """A 400 in the app's own style: JSON for the API, the friendly error page for people."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    from app.templating import render

    request = Request(scope, receive)
    if request.url.path.startswith("/api/"):
        response: Response = JSONResponse({"detail": message}, status_code=400)
    else:
        context = {"status": 400, "title": "Bad request", "message": message}
        response = render(request, "error.html", context, status_code=400)
    await response(scope, receive, send)
