"""Admin pages for accounts: list, create (one-time password), change role, disable/enable, reset password."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from app.auth import accounts
from app.auth.deps import AdminDep, client_ip
from app.db import SessionDep
from app.domain.vocab import USER_ROLES
from app.models import User
from app.services.audit import security_event
from app.templating import render

router = APIRouter(tags=["users"])

DONE_MESSAGES = {
    "role": "Role changed; it applies from the user's next click.",
    "disabled": "Account disabled; its sessions were ended and its API tokens stop working.",
    "enabled": "Account enabled.",
}


def _page(request: Request, db: Session, status_code: int = 200, **extra: object) -> Response:
    context: dict[str, object] = {
        "users": accounts.list_users(db),
        "roles": USER_ROLES,
        "errors": {},
        "form": {"username": "", "role": "analyst"},
        "one_time": None,
        "problem": None,
        "done": None,
        "fmt_time": accounts.utc_minute,
    }
    context.update(extra)
    return render(request, "users/index.html", context, status_code=status_code)


def _user(db: Session, user_id: int) -> User:
    user = db.get(User, user_id)
    if user is None:
        raise HTTPException(404, "No such user.")
    return user


@router.get("/admin/users", response_class=HTMLResponse)
def users_list(request: Request, db: SessionDep, principal: AdminDep, done: str | None = None) -> Response:
    """Every account with its role and state, and a form to add one."""
    return _page(request, db, done=DONE_MESSAGES.get(done or ""))


@router.post("/admin/users", response_class=HTMLResponse)
def user_create(
    request: Request,
    db: SessionDep,
    principal: AdminDep,
    username: Annotated[str, Form(max_length=200)] = "",
    role: Annotated[str, Form(max_length=20)] = "analyst",
) -> Response:
    """Create an account with a one-time password shown on this response only."""
    username = username.strip()
    form = {"username": username, "role": role}
    try:
        user, password = accounts.create_user(db, principal.user, username, role)
    except accounts.AccountError as exc:
        field = "role" if role not in USER_ROLES else "username"
        return _page(request, db, 422, errors={field: str(exc)}, form=form)
    security_event(db, principal.user, "user_created", {"user": username, "role": role}, client_ip(request))
    db.commit()
    return _page(request, db, one_time={"username": user.username, "password": password, "new": True})


def _change(request: Request, db: Session, principal_user: User, user: User, change: str) -> Response | None:
    """Apply a role/active change; on refusal render the page with the reason (422)."""
    try:
        if change.startswith("role:"):
            accounts.set_role(db, principal_user, user, change[5:])
        else:
            accounts.set_active(db, principal_user, user, change == "enable")
    except accounts.AccountError as exc:  # refused before anything changed
        return _page(request, db, 422, problem=str(exc))
    security_event(
        db, principal_user, "user_changed", {"user": user.username, "change": change}, client_ip(request)
    )
    db.commit()
    return None


@router.post("/admin/users/{user_id:int}/role")
def user_role(
    request: Request,
    user_id: int,
    db: SessionDep,
    principal: AdminDep,
    role: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Change someone's role."""
    assert principal.user is not None
    refused = _change(request, db, principal.user, _user(db, user_id), f"role:{role}")
    return refused or RedirectResponse("/admin/users?done=role", status_code=303)


@router.post("/admin/users/{user_id:int}/disable")
def user_disable(request: Request, user_id: int, db: SessionDep, principal: AdminDep) -> Response:
    """Disable an account and end its sessions at once."""
    assert principal.user is not None
    refused = _change(request, db, principal.user, _user(db, user_id), "disable")
    return refused or RedirectResponse("/admin/users?done=disabled", status_code=303)


@router.post("/admin/users/{user_id:int}/enable")
def user_enable(request: Request, user_id: int, db: SessionDep, principal: AdminDep) -> Response:
    """Let a disabled account log in again."""
    assert principal.user is not None
    refused = _change(request, db, principal.user, _user(db, user_id), "enable")
    return refused or RedirectResponse("/admin/users?done=enabled", status_code=303)


@router.post("/admin/users/{user_id:int}/reset-password", response_class=HTMLResponse)
def user_reset_password(request: Request, user_id: int, db: SessionDep, principal: AdminDep) -> Response:
    """Replace someone's password with a one-time one (shown once) and end their sessions."""
    assert principal.user is not None
    user = _user(db, user_id)
    if user.id == principal.user.id:
        return _page(
            request, db, 422, problem="Use “Change password” on your account page for your own password."
        )
    password = accounts.reset_password(db, principal.user, user)
    security_event(db, principal.user, "password_reset", {"user": user.username}, client_ip(request))
    db.commit()
    return _page(request, db, one_time={"username": user.username, "password": password, "new": False})
