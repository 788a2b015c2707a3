"""Sign-in and sign-out: a cookie session (with CSRF token) or a bearer token."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from quarters import auth
from quarters.api.deps import SESSION_COOKIE, BodyDep, ConnDep, SessionDep, SettingsDep
from quarters.api.openapi import json_body
from quarters.db import commit
from quarters.errors import BadRequest, InvalidInput, Unauthorized
from quarters.validation import control_problem

router = APIRouter(prefix="/api/auth", tags=["auth"])


def _user_doc(user: auth.User) -> dict:
    return {"id": user.id, "username": user.username, "display_name": user.display_name,
            "role": user.role}


LOGIN_BODY = json_body({
    "type": "object", "additionalProperties": False, "required": ["username", "password"],
    "properties": {"username": {"type": "string", "maxLength": 80},
                   "password": {"type": "string", "maxLength": 200}}})


@router.post("/login", summary="Sign in", openapi_extra=LOGIN_BODY)
def login(body: BodyDep, response: Response, conn: ConnDep, settings: SettingsDep) -> dict:
    """Check username and password; set the session cookie and return the CSRF token."""
    if not isinstance(body, dict) or set(body) - {"username", "password"}:
        raise BadRequest("send {\"username\": …, \"password\": …}")
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise BadRequest("username and password must be strings")
    if control_problem(username):
        raise InvalidInput(f"username: {control_problem(username)}")
    user = auth.authenticate(conn, username[:80], password[:200])
    if user is None:
        raise Unauthorized("Benutzername oder Passwort falsch")
    session = auth.open_session(conn, user)
    commit(conn)
    response.set_cookie(SESSION_COOKIE, session.token, httponly=True, samesite="strict",
                        secure=settings.secure_cookies, max_age=int(auth.SESSION_LIFETIME.total_seconds()),
                        path="/")
    return {"user": _user_doc(user), "csrf_token": session.csrf_token, "token": session.token}


@router.post("/logout", summary="Sign out")
def logout(session: SessionDep, response: Response, conn: ConnDep) -> dict:
    """End the session."""
    if session:
        auth.close_session(conn, session.token)
        commit(conn)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return {"signed_out": True}


@router.get("/me", summary="Who am I")
def me(session: SessionDep, request: Request) -> dict:
    """The signed-in user and the CSRF token of the session (or the public)."""
    if session is None:
        return {"user": None}
    return {"user": _user_doc(session.user), "csrf_token": session.csrf_token}
