"""Who is asking (session cookie or API token), role checks and CSRF, as FastAPI dependencies."""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.sessions import COOKIE_NAME, load_session
from app.auth.tokens import new_token, same, sha256, sign
from app.config import get_settings
from app.db import SessionDep
from app.domain import clock
from app.models import ApiToken, User, UserSession
from app.services.audit import security_event

log = logging.getLogger("signalboard.security")

ROLE_RANK = {"viewer": 1, "analyst": 2, "admin": 3}
PRE_SESSION_COOKIE = "sb_pre"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Pages a user who must change the password may still reach.
PASSWORD_CHANGE_PATHS = ("/account/password", "/logout", "/login", "/static/", "/healthz")


class LoginRequired(Exception):
    """No logged-in user where one is needed: 303 to /login for pages, 401 for the API."""


class Forbidden(Exception):
    """The user's role does not allow this: 403."""

    def __init__(self, message: str = "Your role does not allow this.") -> None:
        super().__init__(message)
        self.message = message


class PasswordChangeRequired(Exception):
    """The account still has its one-time password: send the user to change it."""


class CsrfFailed(Exception):
    """An unsafe request without the right CSRF token or from another origin: 403."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class Principal:
    """The requester: a user (or None when anonymous), how they authenticated, their CSRF token.

    What pages and error handlers show of the user (name, role, id) is copied into plain values when the
    principal is made: a rollback expires the ORM user, and an error page rendered after the request's
    session closed could no longer load it (DetachedInstanceError, a bare 500 instead of the page).
    """

    user: User | None
    session: UserSession | None
    via_token: bool
    csrf_token: str
    user_id: int | None = field(init=False)
    username: str = field(init=False)
    role: str | None = field(init=False)
    must_change_password: bool = field(init=False)

    def __post_init__(self) -> None:
        user = self.user
        self.user_id = user.id if user else None
        self.username = user.username if user else "anonymous"
        self.role = user.role if user else None
        self.must_change_password = bool(user and user.must_change_password)

    def can(self, role: str) -> bool:
        """True when the user holds at least `role`."""
        return self.role is not None and ROLE_RANK[self.role] >= ROLE_RANK[role]


def client_ip(request: Request) -> str | None:
    """The peer address (a proxy in front should be configured in uvicorn's --forwarded-allow-ips).

    None when the peer is not an IP address (a Unix socket, a test client), as the tables store INET.
    """
    host = request.client.host if request.client else None
    try:
        return str(ipaddress.ip_address(host)) if host else None
    except ValueError:
        return None


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


def get_principal(request: Request, db: SessionDep) -> Principal:
    """Resolve the requester once per request (cached on request.state)."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    principal: Principal
    token = _bearer(request)
    if token is not None:
        found = db.scalars(
            select(ApiToken).where(ApiToken.token_hash == sha256(token), ApiToken.revoked_at.is_(None))
        ).first()
        if found is None or not found.user.is_active:
            raise LoginRequired()
        now = clock.utcnow()
        # Record use at most once a minute so a busy script does not write on every call.
        if found.last_used_at is None or now - found.last_used_at > timedelta(minutes=1):
            found.last_used_at = now
            db.commit()
        principal = Principal(found.user, None, True, "")
    else:
        session = load_session(db, request.cookies.get(COOKIE_NAME))
        if session is not None:
            principal = Principal(session.user, session, False, session.csrf_token)
        else:
            pre = request.cookies.get(PRE_SESSION_COOKIE)
            if not pre or len(pre) > 100:
                pre = new_token(16)
                request.state.new_pre_cookie = pre
            principal = Principal(None, None, False, sign(get_settings().secret_key, pre))
    # End the lookup's transaction: its connection goes back to the pool while the request waits for a
    # worker thread, so a burst of more requests than threads cannot hold every connection and starve
    # the routes already running (they would time out waiting for the pool).
    db.commit()
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(role: str, *, public_read: bool = True):
    """Dependency factory: the requester must hold at least `role`.

    A viewer may be anonymous when PUBLIC_READ is on (safe methods only), unless `public_read` is False
    (evidence files: kept for the desk, never for anonymous visitors).
    """

    def check(request: Request, principal: PrincipalDep, db: SessionDep) -> Principal:
        if principal.user is None:
            if (
                role == "viewer"
                and public_read
                and request.method in SAFE_METHODS
                and get_settings().public_read
            ):
                return principal
            raise LoginRequired()
        if (
            principal.must_change_password
            and not principal.via_token
            and not request.url.path.startswith(PASSWORD_CHANGE_PATHS)
        ):
            raise PasswordChangeRequired()
        if not principal.can(role):
            # Audited here, where the request's session is at hand; nothing else is pending in it yet.
            security_event(
                db,
                principal.user,
                "denied",
                {"needs": role, "role": principal.role, "method": request.method, "path": request.url.path},
                client_ip(request),
            )
            db.commit()
            request.state.denied = True
            raise Forbidden(f"This needs the {role} role; you are signed in as {principal.role}.")
        return principal

    check.required_role = role  # type: ignore[attr-defined]  # read by the role-matrix test
    check.signed_in_only = not public_read  # type: ignore[attr-defined]  # read by the role-matrix test
    return check


require_viewer = require("viewer")
require_analyst = require("analyst")
require_admin = require("admin")

require_signed_in_viewer = require("viewer", public_read=False)
ViewerDep = Annotated[Principal, Depends(require_viewer)]
SignedInViewerDep = Annotated[Principal, Depends(require_signed_in_viewer)]
AnalystDep = Annotated[Principal, Depends(require_analyst)]
AdminDep = Annotated[Principal, Depends(require_admin)]


def _same_origin(request: Request) -> bool:
    """Origin / Sec-Fetch-Site say the request came from our own pages (or from no browser at all)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        host = request.headers.get("host", "")
        return origin.split("://", 1)[-1] == host
    return origin != "null"


def _refuse(request: Request, principal: Principal, db: Session, reason: str, message: str) -> CsrfFailed:
    """Log a refused unsafe request (audited for a signed-in user) and build the error to raise."""
    details = {"reason": reason, "method": request.method, "path": request.url.path}
    if principal.user is not None:
        security_event(db, principal.user, "csrf_refused", details, client_ip(request))
        db.commit()
    else:  # anonymous refusals go to the log only, so a flood of them cannot fill the audit table
        log.warning("csrf_refused user=anonymous ip=%s %s", client_ip(request) or "-", details)
    return CsrfFailed(message)


async def csrf_protect(request: Request, principal: PrincipalDep, db: SessionDep) -> None:
    """App-wide: every unsafe request from a browser needs its session's token and our origin."""
    if request.method in SAFE_METHODS or principal.via_token:
        return
    if principal.user is None and request.url.path.startswith("/api/"):
        # Nobody is signed in, so there is no session to forge: tell the API client to authenticate
        # (401) instead of blaming a CSRF token it could never have had.
        raise LoginRequired()
    if not _same_origin(request):
        raise _refuse(
            request, principal, db, "origin", "This request came from another site and was refused."
        )
    sent = request.headers.get("x-csrf-token")
    if sent is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get("csrf_token")
            sent = value if isinstance(value, str) else None
    if not sent or not principal.csrf_token or not same(sent, principal.csrf_token):
        raise _refuse(
            request,
            principal,
            db,
            "missing token" if not sent else "wrong token",
            "The form expired or was not sent from this site. Reload the page and try again.",
        )
