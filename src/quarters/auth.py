"""Accounts, password hashes (argon2) and sessions. No HTTP here."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlalchemy import Connection, text

from quarters.errors import InvalidInput
from quarters.validation import control_problem

ROLES = ("admin", "planner", "moderator")
SESSION_LIFETIME = timedelta(hours=12)
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("timing-equaliser")


@dataclass(frozen=True)
class User:
    """A signed-in account."""

    id: int
    username: str
    display_name: str
    role: str

    def can(self, *roles: str) -> bool:
        """True when the user has one of the roles (admins can do everything)."""
        return self.role == "admin" or self.role in roles


@dataclass(frozen=True)
class Session:
    """A session: the bearer/cookie token and its CSRF token."""

    token: str
    csrf_token: str
    user: User


def add_user(conn: Connection, username: str, password: str, role: str,
             display_name: str | None = None) -> User:
    """Create an account (or replace its password and role)."""
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}, not '{role}'")
    if len(password) < 10:
        raise InvalidInput("password must have at least 10 characters")
    if not username.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise InvalidInput("username may contain letters, digits, '.', '-' and '_' only")
    if display_name and control_problem(display_name):
        raise InvalidInput(f"display name: {control_problem(display_name)}")
    row = conn.execute(text("""
        INSERT INTO users (username, display_name, role, password_hash)
        VALUES (:u, :d, :r, :h)
        ON CONFLICT (username) DO UPDATE SET display_name = EXCLUDED.display_name,
            role = EXCLUDED.role, password_hash = EXCLUDED.password_hash, active = true
        RETURNING id, username, display_name, role
    """), {"u": username, "d": display_name or username, "r": role,
           "h": _hasher.hash(password)}).one()
    return User(*row)


def authenticate(conn: Connection, username: str, password: str) -> User | None:
    """The user when the password matches, else None (same work either way)."""
    row = conn.execute(text(
        "SELECT id, username, display_name, role, password_hash FROM users "
        "WHERE username = :u AND active"), {"u": username}).first()
    try:
        _hasher.verify(row.password_hash if row else _DUMMY_HASH, password)
    except (VerifyMismatchError, InvalidHashError):
        return None
    return User(row.id, row.username, row.display_name, row.role) if row else None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(conn: Connection, user: User) -> Session:
    """Start a session; only the token's hash is stored."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    conn.execute(text(
        "INSERT INTO sessions (token_hash, user_id, csrf_token, expires_at) "
        "VALUES (:h, :u, :c, now() + make_interval(secs => :s))"),
        {"h": _digest(token), "u": user.id, "c": csrf, "s": SESSION_LIFETIME.total_seconds()})
    return Session(token, csrf, user)


def session_for(conn: Connection, token: str) -> Session | None:
    """The live session of a token, or None."""
    if not token or len(token) > 200:
        return None
    row = conn.execute(text("""
        SELECT s.csrf_token, u.id, u.username, u.display_name, u.role
        FROM sessions s JOIN users u ON u.id = s.user_id
        WHERE s.token_hash = :h AND s.expires_at > now() AND u.active
    """), {"h": _digest(token)}).first()
    if row is None:
        return None
    return Session(token, row.csrf_token, User(row.id, row.username, row.display_name, row.role))


def close_session(conn: Connection, token: str) -> None:
    """End a session."""
    conn.execute(text("DELETE FROM sessions WHERE token_hash = :h"), {"h": _digest(token)})


def csrf_matches(session: Session, presented: str | None) -> bool:
    """Constant-time comparison of the CSRF token."""
    return bool(presented) and secrets.compare_digest(session.csrf_token, presented)
