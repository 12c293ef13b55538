"""Login, logout, the account page (password, personal API tokens)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.accounts import create_token, revoke_token, user_tokens, utc_minute
from app.auth.deps import Forbidden, Principal, PrincipalDep, ViewerDep, client_ip
from app.auth.feed_tokens import create_feed_token, revoke_feed_token, user_feed_tokens
from app.auth.passwords import as_sentence, hash_password, needs_rehash, password_problem, verify_password
from app.auth.sessions import COOKIE_NAME, end_session, end_user_sessions, start_session
from app.config import get_settings
from app.db import SessionDep
from app.models import User
from app.services.audit import security_event
from app.templating import render

router = APIRouter(tags=["accounts"])


def safe_next(target: str | None) -> str:
    """Only same-site relative paths may be redirected to after login."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def set_session_cookie(response: Response, token: str) -> None:
    """The session cookie: HttpOnly, SameSite=Lax, Secure outside development."""
    settings = get_settings()
    response.set_cookie(
        COOKIE_NAME,
        token,
        httponly=True,
        samesite="lax",
        secure=not settings.is_development,
        max_age=settings.session_absolute_hours * 3600,
    )


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, principal: PrincipalDep, next: str | None = None) -> Response:
    """The login page (a logged-in user goes straight on)."""
    if principal.user is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "accounts/login.html", {"next": safe_next(next), "username": "", "error": None})


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    db: SessionDep,
    principal: PrincipalDep,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=2000)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """Check the password, start a fresh session (new id), and go on."""
    from app.auth.ratelimit import login_blocked, note_attempt

    ip = client_ip(request)
    username = username.strip()
    if login_blocked(db, username, ip):
        security_event(db, None, "login_throttled", {"username": username}, ip)
        db.commit()
        retry = str(get_settings().login_window_minutes * 60)
        return render(
            request,
            "accounts/login.html",
            {
                "next": safe_next(next),
                "username": username,
                "error": "Too many failed attempts. Wait a few minutes and try again.",
            },
            status_code=429,
            headers={"Retry-After": retry},
        )
    user = db.scalars(select(User).where(func.lower(User.username) == username.lower())).first()
    # An unknown name still costs one Argon2 check, so timing does not tell which names exist.
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not user.is_active or not ok:
        note_attempt(db, username, ip, success=False)
        security_event(db, user, "login_failed", {"username": username}, ip)
        db.commit()
        return render(
            request,
            "accounts/login.html",
            {"next": safe_next(next), "username": username, "error": "Wrong username or password."},
            status_code=401,
        )
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    note_attempt(db, username, ip, success=True)
    old = request.cookies.get(COOKIE_NAME)
    end_session(db, old)  # never keep a pre-login session id (fixation)
    token = start_session(db, user, ip, request.headers.get("user-agent"))
    security_event(db, user, "login", {}, ip)
    db.commit()
    target = "/account/password" if user.must_change_password else safe_next(next)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, token)
    return response


@router.post("/logout")
def logout(request: Request, db: SessionDep, principal: PrincipalDep) -> Response:
    """End the session on the server and clear the cookie."""
    end_session(db, request.cookies.get(COOKIE_NAME))
    if principal.user is not None:
        security_event(db, principal.user, "logout", {}, client_ip(request))
    db.commit()
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE_NAME)
    return response


def _session_user(principal: Principal) -> User:
    """The signed-in person (account pages are for browser sessions, not API tokens)."""
    if principal.via_token or principal.user is None:
        raise Forbidden("Manage your account from the web page, not with an API token.")
    return principal.user


def _account_page(
    request: Request, db: SessionDep, user: User, new_token: str | None = None, **extra: object
) -> Response:
    context = {
        "user": user,
        "tokens": user_tokens(db, user.id),
        "feed_tokens": user_feed_tokens(db, user.id),
        "base": str(request.base_url).rstrip("/"),
        "new_token": new_token,
        "errors": {},
        "fmt_time": utc_minute,
    }
    context.update(extra)
    status = 422 if context["errors"] else 200
    return render(request, "accounts/account.html", context, status_code=status)


@router.get("/account", response_class=HTMLResponse)
def account(request: Request, db: SessionDep, principal: ViewerDep, done: str | None = None) -> Response:
    """Your account: name, role, password link and personal API tokens."""
    if principal.user is None:
        return RedirectResponse("/login?next=/account", status_code=303)
    return _account_page(request, db, _session_user(principal), done=done)


@router.post("/account/tokens", response_class=HTMLResponse)
def token_create(
    request: Request,
    db: SessionDep,
    principal: ViewerDep,
    name: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Create a personal access token; its value is shown on this response only."""
    if principal.user is None:
        return RedirectResponse("/login?next=/account", status_code=303)
    user = _session_user(principal)
    name = name.strip()
    if not name or len(name) > 100:
        errors = {"name": "Give the token a name of 1–100 characters, e.g. the script that will use it."}
        return _account_page(request, db, user, errors=errors, name=name)
    if any(t.name.casefold() == name.casefold() for t in user_tokens(db, user.id)):
        # Also what a reload of the page that showed a new token re-posts: no second token of that name.
        errors = {
            "name": f"You already have a token named “{name}”; its value was shown once, when it was made. "
            "Revoke it below to make a new one, or choose another name."
        }
        return _account_page(request, db, user, errors=errors, name=name)
    token, raw = create_token(db, user, name)
    security_event(
        db, user, "token_created", {"token_id": token.id, "prefix": token.prefix}, client_ip(request)
    )
    db.commit()
    return _account_page(request, db, user, new_token=raw, new_token_name=name)


def _revoke(
    request: Request,
    db: SessionDep,
    principal: Principal,
    revoke: Callable[[Session, User, int], bool],
    token_id: int,
    kind: str,
    done: str,
) -> Response:
    """Revoke one of the signed-in person's tokens of a kind ("token", "feed_token"), then go to `done`."""
    if principal.user is None:
        return RedirectResponse("/login?next=/account", status_code=303)
    user = _session_user(principal)
    if not revoke(db, user, token_id):
        raise HTTPException(404, f"No such {kind.replace('_', ' ')} of yours.")
    security_event(db, user, f"{kind}_revoked", {"token_id": token_id}, client_ip(request))
    db.commit()
    return RedirectResponse(done, status_code=303)


@router.post("/account/tokens/{token_id:int}/revoke")
def token_revoke(request: Request, token_id: int, db: SessionDep, principal: ViewerDep) -> Response:
    """Revoke one of your tokens; scripts using it get 401 from now on."""
    return _revoke(request, db, principal, revoke_token, token_id, "token", "/account?done=revoked")


@router.get("/account/password", response_class=HTMLResponse)
def password_form(request: Request, principal: ViewerDep) -> Response:
    """Form to change one's password (forced after a one-time password)."""
    if principal.user is None:
        return RedirectResponse("/login", status_code=303)
    return render(request, "accounts/password.html", {"errors": {}})


@router.post("/account/password", response_class=HTMLResponse)
def change_password(
    request: Request,
    db: SessionDep,
    principal: ViewerDep,
    current: Annotated[str, Form(max_length=2000)] = "",
    new: Annotated[str, Form(max_length=2000)] = "",
    confirm: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Check the current password and the rules, then store the new hash and start a new session."""
    user = principal.user
    if user is None:
        return RedirectResponse("/login", status_code=303)
    errors: dict[str, str] = {}
    if not verify_password(user.password_hash, current):
        errors["current"] = "This is not your current password."
    problem = password_problem(new, user.username)
    if problem:
        errors["new"] = as_sentence(problem)
    elif new != confirm:
        errors["confirm"] = "The two new passwords differ."
    elif new == current:
        errors["new"] = "Choose a password different from the current one."
    if errors:
        return render(request, "accounts/password.html", {"errors": errors}, status_code=422)
    user.password_hash = hash_password(new)
    user.must_change_password = False
    end_user_sessions(db, user.id)
    token = start_session(db, user, client_ip(request), request.headers.get("user-agent"))
    security_event(db, user, "password_changed", {}, client_ip(request))
    db.commit()
    response = RedirectResponse("/?password=changed", status_code=303)
    set_session_cookie(response, token)
    return response


@router.post("/account/feed-tokens", response_class=HTMLResponse)
def feed_token_create(
    request: Request,
    db: SessionDep,
    principal: ViewerDep,
    name: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Create a feed token (opens Atom feeds only); its value is shown on this response only."""
    if principal.user is None:
        return RedirectResponse("/login?next=/account", status_code=303)
    user = _session_user(principal)
    name = " ".join(name.split())
    if not name or len(name) > 100:
        errors = {
            "feed_name": "Give the feed token a name of 1–100 characters, e.g. the feed reader that uses it."
        }
        return _account_page(request, db, user, errors=errors, feed_name=name)
    token, raw = create_feed_token(db, user, name)
    security_event(
        db, user, "feed_token_created", {"token_id": token.id, "prefix": token.prefix}, client_ip(request)
    )
    db.commit()
    return _account_page(request, db, user, new_feed_token=raw, new_feed_token_name=name)


@router.post("/account/feed-tokens/{token_id:int}/revoke")
def feed_token_revoke(request: Request, token_id: int, db: SessionDep, principal: ViewerDep) -> Response:
    """Revoke one of your feed tokens; every feed address holding it answers 404 from now on."""
    done = "/account?done=feed-revoked#feed-tokens"
    return _revoke(request, db, principal, revoke_feed_token, token_id, "feed_token", done)
