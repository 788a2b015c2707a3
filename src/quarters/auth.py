"""Accounts, password hashes (argon2), the sign-in throttle and sessions. No HTTP here."""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlalchemy import Connection, text

from quarters.errors import InvalidInput
from quarters.validation import control_code

ROLES = ("admin", "planner", "moderator")
SESSION_LIFETIME = timedelta(hours=12)
SEEN_EVERY_S = 60  # last_seen_at is written at most once a minute per session
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("timing-equaliser")
_checks = threading.BoundedSemaphore(4)  # argon2 takes 64 MiB per check; see set_parallel_checks


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


def _check_password(password: str) -> None:
    if len(password) < 10:
        raise InvalidInput(code="auth.password_short", params={"min": 10})
    if len(password) > 200:
        raise InvalidInput(code="auth.password_long", params={"max": 200})


def add_user(conn: Connection, username: str, password: str, role: str,
             display_name: str | None = None) -> User:
    """Create an account (or reset its password and role: its sessions end)."""
    if role not in ROLES:
        raise InvalidInput(code="auth.role_unknown",
                           params={"role": str(role)[:40], "allowed": ", ".join(ROLES)})
    _check_password(password)
    if not username.isascii() or not username.replace("-", "").replace("_", "").replace(
            ".", "").isalnum():
        raise InvalidInput(code="auth.username_chars")
    bad = control_code(display_name) if display_name else None
    if bad:
        raise InvalidInput(code=bad[0], pointer="display_name", params=bad[1])
    row = conn.execute(text("""
        INSERT INTO users (username, display_name, role, password_hash)
        VALUES (:u, :d, :r, :h)
        ON CONFLICT (username) DO UPDATE SET display_name = EXCLUDED.display_name,
            role = EXCLUDED.role, password_hash = EXCLUDED.password_hash, active = true
        RETURNING id, username, display_name, role
    """), {"u": username, "d": display_name or username, "r": role,
           "h": _hasher.hash(password)}).one()
    end_sessions(conn, row.id)
    return User(*row)


def set_password(conn: Connection, user_id: int, password: str, *,
                 keep_token: str | None = None) -> None:
    """Replace a password; every session of the account ends except ``keep_token``'s."""
    _check_password(password)
    conn.execute(text("UPDATE users SET password_hash = :h WHERE id = :id"),
                 {"h": _hasher.hash(password), "id": user_id})
    end_sessions(conn, user_id, keep_token=keep_token)


def deactivate(conn: Connection, username: str) -> bool:
    """Lock an account: no sign-in, its sessions end. False when there is no such account."""
    row = conn.execute(text("UPDATE users SET active = false WHERE username = :u RETURNING id"),
                       {"u": username}).first()
    if row is None:
        return False
    end_sessions(conn, row.id)
    return True


def end_sessions(conn: Connection, user_id: int, *, keep_token: str | None = None) -> int:
    """End the sessions of an account (all, or all but one); returns how many ended."""
    keep = _digest(keep_token) if keep_token else ""
    return conn.execute(text("DELETE FROM sessions WHERE user_id = :u AND token_hash <> :keep"),
                        {"u": user_id, "keep": keep}).rowcount


@dataclass(frozen=True)
class Credentials:
    """What sign-in needs from the database: the account (None: unknown or inactive) and hash."""

    user: User | None
    password_hash: str


def credentials(conn: Connection, username: str) -> Credentials:
    """The stored hash of an active account (a dummy hash for unknown names: same work)."""
    row = conn.execute(text(
        "SELECT id, username, display_name, role, password_hash FROM users "
        "WHERE username = :u AND active"), {"u": username}).first()
    if row is None:
        return Credentials(None, _DUMMY_HASH)
    return Credentials(User(row.id, row.username, row.display_name, row.role), row.password_hash)


def set_parallel_checks(n: int) -> None:
    """How many argon2 checks may run at once in this process (each takes 64 MiB)."""
    global _checks
    _checks = threading.BoundedSemaphore(max(1, n))


def verify(creds: Credentials, password: str) -> User | None:
    """Check a password against stored credentials; no database connection is held. Blocks
    (CPU, about 50 ms): call it from a worker thread."""
    with _checks:
        try:
            _hasher.verify(creds.password_hash, password)
        except (VerifyMismatchError, InvalidHashError):
            return None
    return creds.user


def authenticate(conn: Connection, username: str, password: str) -> User | None:
    """The user when the password matches, else None (same work either way)."""
    return verify(credentials(conn, username), password)


# -- throttle -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ThrottlePolicy:
    """When failed sign-ins pause further attempts (from the settings)."""

    account_max: int = 5
    client_max: int = 20
    window_s: int = 900
    lock_s: int = 30
    lock_max_s: int = 900

    @classmethod
    def of(cls, settings) -> ThrottlePolicy:  # noqa: ANN001
        """The policy of the settings."""
        return cls(settings.login_max_failures, settings.login_client_max_failures,
                   settings.login_window_s, settings.login_lock_s, settings.login_lock_max_s)

    def pause(self, failures: int, limit: int) -> int:
        """Seconds of pause after ``failures`` (0 below the limit, doubling above it)."""
        if failures < limit:
            return 0
        return min(self.lock_max_s, self.lock_s * 2 ** min(failures - limit, 20))


def throttle_keys(username: str, client: str) -> tuple[str, str]:
    """The two counters a sign-in touches: its account name and its client (hashed)."""
    return (f"account:{username.strip().lower()}",
            "client:" + hashlib.sha256(f"quarters-login:{client}".encode()).hexdigest())


def locked_for(conn: Connection, keys: tuple[str, ...]) -> int:
    """Seconds until sign-in is allowed again for these counters (0: now)."""
    wait = conn.execute(text(
        "SELECT max(extract(epoch FROM locked_until - clock_timestamp())) FROM login_throttle "
        "WHERE key = ANY(:k) AND locked_until > clock_timestamp()"), {"k": list(keys)}).scalar()
    return math.ceil(wait) if wait else 0


def record_failure(conn: Connection, keys: tuple[str, str], policy: ThrottlePolicy) -> int:
    """Count a failed sign-in on the account and client counters (atomically, shared by all
    workers); returns the pause it starts in seconds (0: none)."""
    longest = 0
    for key, limit in zip(keys, (policy.account_max, policy.client_max), strict=True):
        failures = conn.execute(text("""
            INSERT INTO login_throttle AS t (key, failures, last_failure_at)
            VALUES (:k, 1, clock_timestamp())
            ON CONFLICT (key) DO UPDATE SET
                failures = CASE WHEN greatest(t.last_failure_at, t.locked_until)
                                     < clock_timestamp() - make_interval(secs => :w)
                                THEN 1 ELSE t.failures + 1 END,
                last_failure_at = clock_timestamp()
            RETURNING failures"""), {"k": key, "w": policy.window_s}).scalar_one()
        pause = policy.pause(failures, limit)
        if pause:
            conn.execute(text(
                "UPDATE login_throttle SET locked_until = clock_timestamp() "
                "+ make_interval(secs => :p) WHERE key = :k"), {"k": key, "p": pause})
        longest = max(longest, pause)
    conn.execute(text("""
        DELETE FROM login_throttle WHERE key IN (
            SELECT key FROM login_throttle
            WHERE greatest(last_failure_at, locked_until)
                  < clock_timestamp() - make_interval(secs => :w)
            FOR UPDATE SKIP LOCKED)"""), {"w": policy.window_s})  # forget what has passed
    return longest


def clear_failures(conn: Connection, key: str) -> None:
    """Forget the failures of a counter (the account's, after a successful sign-in)."""
    conn.execute(text("DELETE FROM login_throttle WHERE key = :k"), {"k": key})


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(conn: Connection, user: User,
                 lifetime_s: float = SESSION_LIFETIME.total_seconds(),
                 idle_s: float = 1800) -> Session:
    """Start a session; only the token's hash is stored. Ended sessions of the account go."""
    conn.execute(text(
        "DELETE FROM sessions WHERE user_id = :u AND (expires_at <= now() "
        "OR last_seen_at <= now() - make_interval(secs => :idle))"), {"u": user.id, "idle": idle_s})
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    conn.execute(text(
        "INSERT INTO sessions (token_hash, user_id, csrf_token, expires_at) "
        "VALUES (:h, :u, :c, now() + make_interval(secs => :s))"),
        {"h": _digest(token), "u": user.id, "c": csrf, "s": lifetime_s})
    return Session(token, csrf, user)


def session_for(conn: Connection, token: str, idle_s: float = 1800) -> Session | None:
    """The live session of a token, or None (expired, idle too long, account locked).

    Marks the session as seen, but writes at most once a minute per session."""
    if not token or len(token) > 200 or not token.isascii():
        return None
    digest = _digest(token)
    row = conn.execute(text("""
        SELECT s.csrf_token, u.id, u.username, u.display_name, u.role,
               s.last_seen_at < now() - make_interval(secs => :every) AS stale
        FROM sessions s JOIN users u ON u.id = s.user_id
        WHERE s.token_hash = :h AND s.expires_at > now() AND u.active
          AND s.last_seen_at > now() - make_interval(secs => :idle)
    """), {"h": digest, "idle": idle_s, "every": SEEN_EVERY_S}).first()
    if row is None:
        return None
    if row.stale:
        conn.execute(text("UPDATE sessions SET last_seen_at = now() WHERE token_hash = :h"),
                     {"h": digest})
    return Session(token, row.csrf_token, User(row.id, row.username, row.display_name, row.role))


def close_session(conn: Connection, token: str) -> None:
    """End a session."""
    conn.execute(text("DELETE FROM sessions WHERE token_hash = :h"), {"h": _digest(token)})


def csrf_matches(session: Session, presented: str | None) -> bool:
    """Constant-time comparison of the CSRF token."""
    return bool(presented) and secrets.compare_digest(session.csrf_token, presented)
