"""The user directory (用户目录): named officers with their roles, unit, office, 管理权限 and
jurisdictions, and their argon2 password hashes; what login checks before it issues a token."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Literal

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.bounded import Text
from shared.db import DIRECTORY_MIGRATIONS, Conn, check_schema, migrate
from shared.envelope import JURISDICTIONS
from shared.errors import Conflict, NotFound, RuleViolation
from shared.roles import OFFICER_ROLES, Role

CadreAuthority = Literal["city", "county"]
"""管理权限: whose cadres the officer's decisions concern (市管干部 / 县管干部)."""


MIN_PASSWORD = 10
MAX_PASSWORD = 1024
"""Bounds of a password: long enough to resist guessing, short enough that hashing stays cheap."""

UserId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")]
"""A login name: letters, digits and . _ @ - (it is the actor's user id in every event)."""


class DirectorySettings(BaseSettings):
    """Where the directory lives: one schema the four services share."""

    model_config = SettingsConfigDict(env_prefix="ZM_DIRECTORY_")

    schema_name: str = "directory"
    login_max_failures: int = Field(default=5, ge=1, description="failed logins in a row that lock a user")
    login_lock_minutes: int = Field(default=15, ge=1, description="how long a locked user cannot log in")


class Officer(BaseModel):
    """One user of the directory (an officer of the commission or of the organisation department)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: UserId
    name: Text = Field(min_length=1, max_length=100, description="姓名")
    roles: list[Role] = Field(min_length=1, max_length=len(OFFICER_ROLES))
    unit: Text = Field(min_length=1, max_length=200, description="单位, e.g. 缙云县纪委监委")
    office: Text = Field(
        min_length=1, max_length=100, description="部门: 信访室, 案件审理室, 第三纪检监察室, 主要负责人 ..."
    )
    cadre_authority: CadreAuthority = Field(description="管理权限")
    jurisdictions: list[str] = Field(min_length=1, max_length=len(JURISDICTIONS))
    enabled: bool = True

    @field_validator("roles")
    @classmethod
    def _officer_roles(cls, value: list[str]) -> list[str]:
        if "system" in value:
            raise ValueError("the system role belongs to the services, not to a person")
        return list(dict.fromkeys(value))

    @field_validator("jurisdictions")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [j for j in value if j not in JURISDICTIONS]
        if unknown:
            raise ValueError(f"unknown jurisdiction codes {unknown}")
        return list(dict.fromkeys(value))


# argon2id with the library's defaults (RFC 9106's second recommended set: 64 MiB, 3 passes).
_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """The argon2id hash (PHC string, salt included) of a password that meets the bounds."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise RuleViolation(
            f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters",
            field="password",
            code="password_length",
            detail_zh=f"密码长度须为 {MIN_PASSWORD} 至 {MAX_PASSWORD} 个字符",
        )
    return _hasher.hash(password)


def password_matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """A hash made with weaker parameters than today's (replaced at the next good login)."""
    return _hasher.check_needs_rehash(password_hash)


@lru_cache(maxsize=1)
def _decoy_hash() -> str:
    # Checked against for an unknown user, so that one costs what a known one costs.
    return _hasher.hash("zhengming decoy password")


_COLUMNS = "user_id, name, roles, unit, office, cadre_authority, jurisdictions, enabled"


def _officer(row: asyncpg.Record) -> Officer:
    return Officer.model_validate({k: row[k] for k in _COLUMNS.split(", ")})


def _unknown(user_id: str) -> NotFound:
    return NotFound(
        f"no user {user_id}", field="user_id", code="user_not_found", detail_zh=f"没有用户 {user_id}"
    )


@dataclass(frozen=True)
class Directory:
    """The directory's operations, on a connection of any pool (table names carry the schema)."""

    schema: str = "directory"

    def __post_init__(self) -> None:
        check_schema(self.schema)

    @classmethod
    def configured(cls) -> Directory:
        return cls(DirectorySettings().schema_name)

    @property
    def _users(self) -> str:
        return f"{self.schema}.users"

    async def migrate(self, conn: asyncpg.Connection) -> list[str]:
        return await migrate(conn, self.schema, [DIRECTORY_MIGRATIONS])

    async def add(self, conn: Conn, officer: Officer, password: str) -> Officer:
        """A new user; 409 when the user id is taken."""
        digest = await asyncio.to_thread(hash_password, password)
        try:
            row = await conn.fetchrow(
                f"INSERT INTO {self._users} (user_id, name, roles, unit, office, cadre_authority,"
                f" jurisdictions, enabled, password_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                f" RETURNING {_COLUMNS}",
                officer.user_id,
                officer.name,
                officer.roles,
                officer.unit,
                officer.office,
                officer.cadre_authority,
                officer.jurisdictions,
                officer.enabled,
                digest,
            )
        except asyncpg.UniqueViolationError as exc:
            raise Conflict(
                f"user {officer.user_id} exists",
                field="user_id",
                code="user_exists",
                detail_zh=f"用户 {officer.user_id} 已存在",
            ) from exc
        assert row is not None
        return _officer(row)

    async def get(self, conn: Conn, user_id: str) -> Officer:
        row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM {self._users} WHERE user_id = $1", user_id)
        if row is None:
            raise _unknown(user_id)
        return _officer(row)

    async def list(
        self, conn: Conn, *, jurisdiction: str | None = None, enabled_only: bool = False
    ) -> list[Officer]:
        """Users by user id, optionally only those granted `jurisdiction`, only the enabled ones."""
        rows = await conn.fetch(
            f"SELECT {_COLUMNS} FROM {self._users}"
            " WHERE ($1::text IS NULL OR $1 = ANY(jurisdictions)) AND (enabled OR NOT $2)"
            " ORDER BY user_id",
            jurisdiction,
            enabled_only,
        )
        return [_officer(r) for r in rows]

    async def set_enabled(self, conn: Conn, user_id: str, enabled: bool) -> Officer:
        """Disable (or enable again) a user: a disabled user cannot log in; the tokens issued
        before keep their short validity (`ZM_AUTH_TOKEN_TTL_HOURS`)."""
        row = await conn.fetchrow(
            f"UPDATE {self._users} SET enabled = $2, failed_logins = 0, locked_until = NULL,"
            f" updated_at = now() WHERE user_id = $1 RETURNING {_COLUMNS}",
            user_id,
            enabled,
        )
        if row is None:
            raise _unknown(user_id)
        return _officer(row)

    async def grant(
        self,
        conn: Conn,
        user_id: str,
        *,
        roles: Sequence[str] = (),
        jurisdictions: Sequence[str] = (),
        cadre_authority: CadreAuthority | None = None,
    ) -> Officer:
        """Add roles and jurisdictions to a user (those held stay), or change their 管理权限."""
        async with conn.transaction():
            current = await self.get(conn, user_id)
            updated = Officer.model_validate(
                current.model_dump()
                | {
                    "roles": [*current.roles, *roles],
                    "jurisdictions": [*current.jurisdictions, *jurisdictions],
                    "cadre_authority": cadre_authority or current.cadre_authority,
                }
            )
            row = await conn.fetchrow(
                f"UPDATE {self._users} SET roles = $2, jurisdictions = $3, cadre_authority = $4,"
                f" updated_at = now() WHERE user_id = $1 RETURNING {_COLUMNS}",
                user_id,
                updated.roles,
                updated.jurisdictions,
                updated.cadre_authority,
            )
        assert row is not None
        return _officer(row)

    async def set_password(self, conn: Conn, user_id: str, password: str) -> None:
        digest = await asyncio.to_thread(hash_password, password)
        done = await conn.fetchval(
            f"UPDATE {self._users} SET password_hash = $2, updated_at = now() WHERE user_id = $1 RETURNING 1",
            user_id,
            digest,
        )
        if done is None:
            raise _unknown(user_id)

    async def authenticate(self, conn: Conn, user_id: str, password: str) -> Officer | None:
        """The enabled user whose password this is; None for a wrong password, an unknown, a
        disabled or a locked user alike (the caller must not learn which). `login_max_failures`
        wrong passwords in a row lock the user for `login_lock_minutes`: even the right password
        is refused meanwhile. A hash made with weaker parameters is replaced on the way."""
        row = await conn.fetchrow(
            f"SELECT {_COLUMNS}, password_hash FROM {self._users} WHERE user_id = $1", user_id
        )
        settings = DirectorySettings()
        # Each attempt takes its place in the count before the password is checked, in one
        # statement: parallel guesses cannot all slip past a lock that the fifth of them sets.
        admitted = row is not None and await conn.fetchval(
            f"UPDATE {self._users} SET"
            " failed_logins = CASE WHEN failed_logins + 1 >= $2 THEN 0 ELSE failed_logins + 1 END,"
            " locked_until = CASE WHEN failed_logins + 1 >= $2"
            " THEN now() + make_interval(mins => $3) ELSE locked_until END"
            " WHERE user_id = $1 AND (locked_until IS NULL OR locked_until <= now()) RETURNING true",
            user_id,
            settings.login_max_failures,
            settings.login_lock_minutes,
        )
        stored = row["password_hash"] if row is not None else _decoy_hash()
        good = len(password) <= MAX_PASSWORD and await asyncio.to_thread(password_matches, stored, password)
        if row is None or not admitted or not good or not row["enabled"]:
            return None
        # The right password: the attempt did not fail after all (nor does the lock it may have set).
        await conn.execute(
            f"UPDATE {self._users} SET failed_logins = 0, locked_until = NULL WHERE user_id = $1", user_id
        )
        if needs_rehash(stored):
            await conn.execute(
                f"UPDATE {self._users} SET password_hash = $2 WHERE user_id = $1",
                user_id,
                await asyncio.to_thread(_hasher.hash, password),
            )
        return _officer(row)
