"""Moderator accounts: named tokens, stored hashed (scrypt), listed and revoked by the operator.

A token reads `vdm_<token id>_<secret>`. The token id (public, 16 hex) finds the account's row; the
secret is checked against its scrypt hash, so a copy of the database gives no usable token. A verified
token is remembered (by its SHA-256) for the life of the process, so the API does not pay scrypt's
deliberate cost on every request; the row is still read every time, so a revoke takes effect at once.

`VDATA_MODERATOR_TOKEN` remains the bootstrap administrator, named `BOOTSTRAP_NAME`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from dataclasses import dataclass

from sqlalchemy import Column, Engine, MetaData, String, Table, Text, select, update
from sqlalchemy.exc import IntegrityError

from vdata.server.store import now_utc

metadata = MetaData()

moderator = Table(
    "moderator",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("token_id", String(16), nullable=False, unique=True),
    Column("token_hash", Text, nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("revoked_at", String(40), nullable=True),
)

BOOTSTRAP_NAME = "admin"
TOKEN_PREFIX = "vdm_"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_TOKEN_PATTERN = re.compile(r"^vdm_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
# scrypt at n=2^14, r=8, p=1 (16 MiB, tens of ms): the interactive-login parameters of RFC 7914.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


class ModeratorError(ValueError):
    """A moderator command that cannot be done (the message names the problem and the fix)."""


@dataclass(frozen=True)
class ModeratorInfo:
    name: str
    created_at: str
    revoked_at: str | None


def hash_secret(secret: str, *, salt: bytes | None = None) -> str:
    """`scrypt$n$r$p$salt$hash` (hex), with a fresh 16-byte salt unless one is given."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(
        secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=64 * 1024 * 1024, dklen=32
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_secret(secret: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        computed = hashlib.scrypt(
            secret.encode(),
            salt=bytes.fromhex(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=64 * 1024 * 1024,
            dklen=len(digest) // 2,
        )
    except ValueError:
        return False
    return hmac.compare_digest(computed.hex(), digest)


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise ModeratorError(
            f"moderator name {name!r} is not allowed; use 1-100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    if name == BOOTSTRAP_NAME:
        raise ModeratorError(
            f"the name {BOOTSTRAP_NAME!r} is reserved for the VDATA_MODERATOR_TOKEN administrator; choose another"
        )
    return name


def add_moderator(engine: Engine, name: str) -> str:
    """Create the account `name` and return its token (shown once; only its hash is stored)."""
    check_name(name)
    token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    try:
        with engine.begin() as conn:
            conn.execute(
                moderator.insert().values(
                    name=name, token_id=token_id, token_hash=hash_secret(secret), created_at=now_utc()
                )
            )
    except IntegrityError:
        raise ModeratorError(
            f"a moderator named {name!r} already exists (revoked names stay taken, so the log stays "
            "unambiguous); choose another name"
        ) from None
    return f"{TOKEN_PREFIX}{token_id}_{secret}"


def list_moderators(engine: Engine) -> list[ModeratorInfo]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(moderator.c.name, moderator.c.created_at, moderator.c.revoked_at).order_by(
                moderator.c.name
            )
        ).all()
    return [ModeratorInfo(*row) for row in rows]


def revoke_moderator(engine: Engine, name: str) -> None:
    """Revoke `name`'s token (its sessions end with it); the account stays listed, as revoked."""
    with engine.begin() as conn:
        result = conn.execute(
            update(moderator)
            .where(moderator.c.name == name, moderator.c.revoked_at.is_(None))
            .values(revoked_at=now_utc())
        )
        if result.rowcount:
            return
        exists = conn.execute(select(moderator.c.name).where(moderator.c.name == name)).first()
    if exists:
        raise ModeratorError(f"moderator {name!r} is already revoked")
    raise ModeratorError(f"no moderator named {name!r}; see `vdata moderators list`")


def is_active(engine: Engine, name: str, bootstrap_token: str | None) -> bool:
    """Whether `name` may still moderate (sessions check this on every request)."""
    if name == BOOTSTRAP_NAME:
        return bool(bootstrap_token)
    with engine.connect() as conn:
        row = conn.execute(select(moderator.c.revoked_at).where(moderator.c.name == name)).first()
    return row is not None and row[0] is None


_verified: set[tuple[str, str]] = set()  # (stored hash, SHA-256 of a token that matched it)
_verified_lock = threading.Lock()


def authenticate(engine: Engine, token: str, bootstrap_token: str | None) -> str | None:
    """The moderator a token belongs to, or None (unknown, wrong or revoked)."""
    if bootstrap_token and hmac.compare_digest(token.encode(), bootstrap_token.encode()):
        return BOOTSTRAP_NAME
    match = _TOKEN_PATTERN.match(token)
    if not match:
        return None
    token_id, secret = match.groups()
    with engine.connect() as conn:
        row = conn.execute(
            select(moderator.c.name, moderator.c.token_hash).where(
                moderator.c.token_id == token_id, moderator.c.revoked_at.is_(None)
            )
        ).first()
    if row is None:
        return None
    name, stored = row
    key = (stored, hashlib.sha256(token.encode()).hexdigest())
    with _verified_lock:
        if key in _verified:
            return str(name)
    if not verify_secret(secret, stored):
        return None
    with _verified_lock:
        _verified.add(key)
    return str(name)
