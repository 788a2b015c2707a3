"""Sign-in and sign-out: a cookie session (with CSRF token), a bearer token on request.

Sign-in is throttled per account and per client (counters in the database, shared by every
worker) and checks the password (argon2) without holding a pooled connection.
"""

from __future__ import annotations

import ipaddress

from fastapi import APIRouter, Request, Response

from quarters import auth
from quarters.api.deps import (
    SESSION_COOKIE,
    BodyDep,
    ConnDep,
    ConnectDep,
    SessionDep,
    SettingsDep,
    get_session,
)
from quarters.clients import request_client
from quarters.errors import BadRequest, InvalidInput, TooManyRequests, Unauthorized
from quarters.settings import Settings
from quarters.validation import control_code

router = APIRouter(prefix="/api/auth", tags=["auth"])
LOGIN_FIELDS = {"username", "password", "token"}
_THROTTLED = {"description": "too many failed sign-ins: wait `Retry-After` seconds"}
LOGIN_DOC = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["username", "password"], "additionalProperties": False,
    "properties": {
        "username": {"type": "string", "maxLength": 80},
        "password": {"type": "string", "maxLength": 200},
        "token": {"type": "boolean", "default": False,
                  "description": "true: also return a bearer token (for clients without "
                                 "cookies); the session cookie is always set"}}}}}}}
PASSWORD_DOC = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["current_password", "new_password"],
    "additionalProperties": False,
    "properties": {"current_password": {"type": "string"},
                   "new_password": {"type": "string", "minLength": 10, "maxLength": 200}}}}}}}


def _user_doc(user: auth.User) -> dict:
    return {"id": user.id, "username": user.username, "display_name": user.display_name,
            "role": user.role}


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def cookie_secure(settings: Settings, request: Request) -> bool:
    """The cookie's Secure flag: the setting when given, else secure unless this is plain HTTP
    served on a loopback address (development on 127.0.0.1)."""
    if settings.secure_cookies is not None:
        return settings.secure_cookies
    server = request.scope.get("server") or (None, None)
    return not (request.url.scheme == "http" and _is_loopback(server[0]))


def _client(request: Request) -> str:
    return request_client(request)


def _too_many(wait: int) -> TooManyRequests:
    return TooManyRequests(code="auth.locked", params={"wait": wait},
                           headers={"Retry-After": str(wait)})


def _login_body(body: object) -> tuple[str, str, bool]:
    if not isinstance(body, dict) or not {"username", "password"} <= set(body) \
            or set(body) - LOGIN_FIELDS:
        raise BadRequest(code="auth.login_body")
    username, password, token = body["username"], body["password"], body.get("token", False)
    if not isinstance(username, str) or not isinstance(password, str):
        raise BadRequest(code="auth.not_text")
    if not isinstance(token, bool):
        raise BadRequest(code="validation.bool_type", pointer="/token")
    _text(username, password)
    bad = control_code(username)
    if bad:
        raise InvalidInput(code=bad[0], pointer="/username", params=bad[1])
    return username[:80], password[:200], token


def _text(*values: str) -> None:
    """Refuse what PostgreSQL and UTF-8 cannot hold (NUL, lone surrogates) with a 400."""
    for value in values:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise BadRequest(code="auth.not_text") from None
        if "\x00" in value:
            raise BadRequest(code="auth.not_text")


@router.post("/login", summary="Sign in", openapi_extra=LOGIN_DOC,
             responses={401: {"description": "wrong username or password"}, 429: _THROTTLED})
def login(body: BodyDep, request: Request, response: Response, connect: ConnectDep,
          settings: SettingsDep) -> dict:
    """Check username and password; set the session cookie and return the CSRF token.

    The cookie is the default. A client that cannot keep cookies (scripts, GIS tools) sends
    `"token": true` and receives a bearer token in the body (`Authorization: Bearer …`).
    After a few failed attempts for an account or from a client the answer is 429 with
    `Retry-After`, and the pause grows with each further failure.
    """
    username, password, want_token = _login_body(body)
    keys = auth.throttle_keys(username, _client(request))
    with connect() as conn:  # short: counters and the stored hash, then the connection goes back
        wait = auth.locked_for(conn, keys)
        creds = None if wait else auth.credentials(conn, username)
    if wait:
        raise _too_many(wait)
    user = auth.verify(creds, password)  # argon2 in this worker thread, no connection held
    if user is None:
        # The failure must count although the answer is an error: its own unit of work,
        # committed when the block ends, before the 401 is raised.
        with connect() as conn:
            auth.record_failure(conn, keys, auth.ThrottlePolicy.of(settings))
        raise Unauthorized(code="auth.wrong_password")
    with connect() as conn:
        auth.clear_failures(conn, keys[0])
        session = auth.open_session(conn, user, settings.session_lifetime_s,
                                    settings.session_idle_s)
    response.set_cookie(SESSION_COOKIE, session.token, httponly=True, samesite="strict",
                        secure=cookie_secure(settings, request),
                        max_age=settings.session_lifetime_s, path="/")
    doc = {"user": _user_doc(user), "csrf_token": session.csrf_token}
    if want_token:
        doc["token"] = session.token
    return doc


@router.post("/password", summary="Change my password", openapi_extra=PASSWORD_DOC,
             responses={401: {"description": "not signed in, or wrong current password"},
                        429: _THROTTLED})
def change_password(body: BodyDep, request: Request, connect: ConnectDep,
                    settings: SettingsDep) -> dict:
    """Change the signed-in user's password (current one required); every other session of
    the account ends. Wrong current passwords count like failed sign-ins."""
    if not isinstance(body, dict) or set(body) != {"current_password", "new_password"} \
            or not all(isinstance(v, str) for v in body.values()):
        raise BadRequest(code="auth.password_body")
    _text(*body.values())
    with connect() as conn:
        session = get_session(request, conn)
        if session is None:
            raise Unauthorized(code="auth.sign_in")
        keys = auth.throttle_keys(session.user.username, _client(request))
        wait = auth.locked_for(conn, keys)
        creds = None if wait else auth.credentials(conn, session.user.username)
    if wait:
        raise _too_many(wait)
    if auth.verify(creds, body["current_password"][:200]) is None:
        with connect() as conn:  # committed before the 401, as a failed sign-in
            auth.record_failure(conn, keys, auth.ThrottlePolicy.of(settings))
        raise Unauthorized(code="auth.current_password")
    with connect() as conn:
        auth.set_password(conn, session.user.id, body["new_password"], keep_token=session.token)
    return {"changed": True, "other_sessions_ended": True}


@router.post("/logout", summary="Sign out")
def logout(session: SessionDep, response: Response, conn: ConnDep) -> dict:
    """End the session."""
    if session:
        auth.close_session(conn, session.token)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return {"signed_out": True}


@router.get("/me", summary="Who am I")
def me(session: SessionDep, request: Request) -> dict:
    """The signed-in user and the CSRF token of the session (or the public)."""
    if session is None:
        return {"user": None}
    return {"user": _user_doc(session.user), "csrf_token": session.csrf_token}
