"""Sessions of logged-in officers, kept in the console's memory: the browser holds only a random
session id (HttpOnly, SameSite=Strict cookie); the bearer token never reaches the browser. Every
form carries the session's CSRF token; the login form a token of its own (double-submit cookie)."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from shared.envelope import JURISDICTIONS
from shared.events.common import role_name

SESSION_COOKIE = "zm_session"
LOGIN_CSRF_COOKIE = "zm_login_csrf"


@dataclass
class Session:
    token: str
    user_id: str
    name: str
    role: str
    roles: list[str]
    unit: str
    jurisdictions: list[str]
    expires_at: float
    """When the token expires (monotonic clock)."""
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    last_seen: float = field(default_factory=time.monotonic)
    done: str | None = None
    """What the user's last command did, shown once on the next page."""

    def take_done(self) -> str | None:
        done, self.done = self.done, None
        return done

    @property
    def role_name(self) -> str:
        return role_name(self.role)

    def places(self) -> list[tuple[str, str]]:
        """The user's jurisdictions as (code, name), the city first."""
        return [(code, JURISDICTIONS.get(code, code)) for code in sorted(self.jurisdictions)]


def _key(session_id: str) -> str:
    # The store is keyed by a hash: a memory dump shows no cookie value that could be replayed.
    return hashlib.sha256(session_id.encode()).hexdigest()


class Sessions:
    def __init__(self, idle_s: float) -> None:
        self.idle_s = idle_s
        self._by_key: dict[str, Session] = {}

    def open(self, issued: dict[str, Any]) -> tuple[str, Session]:
        """A new session for a token the login issued; returns the cookie value and the session."""
        self._sweep()
        session = Session(
            token=str(issued["access_token"]),
            user_id=str(issued["user_id"]),
            name=str(issued.get("name") or issued["user_id"]),
            role=str(issued["role"]),
            roles=[str(r) for r in issued.get("roles") or [issued["role"]]],
            unit=str(issued.get("unit") or ""),
            jurisdictions=[str(j) for j in issued.get("jurisdictions") or []],
            expires_at=time.monotonic() + float(issued.get("expires_in") or 0),
        )
        session_id = secrets.token_urlsafe(32)
        self._by_key[_key(session_id)] = session
        return session_id, session

    def get(self, session_id: str | None) -> Session | None:
        """The live session of this cookie, its idle clock restarted; None when absent or expired."""
        if not session_id:
            return None
        key = _key(session_id)
        session = self._by_key.get(key)
        if session is None:
            return None
        now = time.monotonic()
        if now - session.last_seen > self.idle_s or now >= session.expires_at:
            del self._by_key[key]
            return None
        session.last_seen = now
        return session

    def close(self, session_id: str | None) -> None:
        if session_id:
            self._by_key.pop(_key(session_id), None)

    def __len__(self) -> int:
        return len(self._by_key)

    def _sweep(self) -> None:
        now = time.monotonic()
        for key, s in list(self._by_key.items()):
            if now - s.last_seen > self.idle_s or now >= s.expires_at:
                del self._by_key[key]


def same(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two CSRF tokens (absent never matches)."""
    return bool(a) and bool(b) and secrets.compare_digest(str(a), str(b))
