"""Who may moderate: bearer tokens for the JSON API, browser sessions with CSRF tokens for the pages,
and the per-address limit on sign-in attempts.

A browser exchanges its token once (POST /signin) for a session cookie: a 256-bit random value, stored
only as its SHA-256, HttpOnly, SameSite=Strict, Secure when the request came over HTTPS. Each session
carries its own CSRF token, which every state-changing form must send back; the sign-in form itself is
protected by a double-submit cookie. A session ends at sign-out, when it expires, or when its
moderator's token is revoked.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Column, Engine, MetaData, String, Table, exists, select, update

from vdata.core.ratelimit import KeyedTokenBuckets
from vdata.server import moderators
from vdata.server.state import State
from vdata.server.store import now_utc

metadata = MetaData()

moderator_session = Table(
    "moderator_session",
    metadata,
    Column("id_sha256", String(64), primary_key=True),
    Column("moderator", String(100), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("expires_at", String(40), nullable=False),
    Column("ended_at", String(40), nullable=True),
)

SESSION_COOKIE = "vdata_session"
SIGNIN_CSRF_COOKIE = "vdata_signin_csrf"
SESSION_TTL = timedelta(hours=8)
# Sign-in attempts per client address: a burst of 10, then one every 30 s. Tokens are 256-bit random
# values, so this is not what stops guessing; it keeps a scripted flood off scrypt and the logs.
SIGNIN_RATE_PER_S = 1 / 30
SIGNIN_BURST = 10


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _digest(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    moderator: str
    csrf: str
    expires_at: str


def create_session(engine: Engine, moderator: str, *, ttl: timedelta = SESSION_TTL) -> tuple[str, Session]:
    """A new session for `moderator`: (the cookie value, the session)."""
    cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    session = Session(moderator, csrf, _stamp(now + ttl))
    with engine.begin() as conn:
        conn.execute(
            moderator_session.insert().values(
                id_sha256=_digest(cookie),
                moderator=moderator,
                csrf=csrf,
                created_at=_stamp(now),
                expires_at=session.expires_at,
            )
        )
    return cookie, session


def session_for(engine: Engine, cookie: str | None, bootstrap_token: str | None) -> Session | None:
    """The live session a cookie belongs to, or None (unknown, ended, expired, moderator revoked)."""
    if not cookie or len(cookie) > 100:
        return None
    s = moderator_session.c
    with engine.connect() as conn:
        row = conn.execute(
            select(s.moderator, s.csrf, s.expires_at).where(
                s.id_sha256 == _digest(cookie), s.ended_at.is_(None), s.expires_at > now_utc()
            )
        ).first()
    if row is None or not moderators.is_active(engine, row[0], bootstrap_token):
        return None
    return Session(*row)


def end_session(engine: Engine, cookie: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(moderator_session)
            .where(moderator_session.c.id_sha256 == _digest(cookie))
            .values(ended_at=now_utc())
        )


def csrf_ok(expected: str | None, sent: str | None) -> bool:
    return bool(expected) and bool(sent) and hmac.compare_digest(str(expected), str(sent))


def is_https(request: Request) -> bool:
    """Whether the browser's connection is HTTPS: the scheme, or a TLS-terminating proxy's header."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return (forwarded or request.url.scheme) == "https"


def cookie_options(request: Request) -> dict[str, object]:
    return {"httponly": True, "samesite": "strict", "secure": is_https(request), "path": "/"}


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def new_signin_limiter() -> KeyedTokenBuckets:
    return KeyedTokenBuckets(SIGNIN_RATE_PER_S, SIGNIN_BURST)


def moderation_enabled(engine: Engine, bootstrap_token: str | None) -> bool:
    if bootstrap_token:
        return True
    with engine.connect() as conn:
        return bool(
            conn.execute(select(exists().where(moderators.moderator.c.revoked_at.is_(None)))).scalar()
        )


DISABLED = (
    "moderation is disabled on this server: start it with VDATA_MODERATOR_TOKEN set, "
    "or add a moderator with `vdata moderators add NAME`"
)

bearer = HTTPBearer(
    auto_error=False,
    description="A moderator token (`vdata moderators add NAME`), or VDATA_MODERATOR_TOKEN on the server",
)


def require_moderator(
    state: State, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> str:
    """The JSON API's check: the moderator named by the bearer token, else 401 (403: none configured)."""
    bootstrap = state.settings.moderator_token
    if not moderation_enabled(state.engine, bootstrap):
        raise HTTPException(403, DISABLED)
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            401,
            "moderator token required: send Authorization: Bearer TOKEN",
            headers={"WWW-Authenticate": "Bearer"},
        )
    name = moderators.authenticate(state.engine, credentials.credentials, bootstrap)
    if name is None:
        raise HTTPException(401, "wrong or revoked moderator token", headers={"WWW-Authenticate": "Bearer"})
    return name


Moderator = Annotated[str, Depends(require_moderator)]
