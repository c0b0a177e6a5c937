"""PostgreSQL access: connection pools bound to a service schema, and versioned SQL migrations."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import AsyncIterator, Generator, Iterator, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import asyncpg
import asyncpg.pool
import orjson

from shared.envelope import canonical_json
from shared.logging import get_logger, outages
from shared.settings import PostgresSettings

log = get_logger(__name__)

# What handlers receive: a bare connection or one borrowed from a pool.
Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

CORE_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
DIRECTORY_MIGRATIONS = CORE_MIGRATIONS / "directory"
"""The user directory's own schema (shared/directory.py), not a service's."""
SERVICES_DIR = Path(__file__).resolve().parent.parent / "services"
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def check_schema(schema: str) -> str:
    """Schema names are interpolated into SQL, so only plain identifiers are accepted."""
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"not a valid schema name: {schema!r}")
    return schema


# The connection (and its open transaction) the current task works in, if one was joined.
_joined: ContextVar[tuple[asyncpg.Pool, asyncpg.pool.PoolConnectionProxy] | None] = ContextVar(
    "zm_joined_connection", default=None
)


class _JoinedAcquire(asyncpg.pool.PoolAcquireContext):
    """What `acquire()` hands out inside `joined()`: the joined connection, never released here."""

    __slots__ = ("joined",)

    def __init__(self, pool: asyncpg.Pool, conn: asyncpg.pool.PoolConnectionProxy) -> None:
        super().__init__(pool, None)
        self.joined = conn

    async def __aenter__(self) -> asyncpg.pool.PoolConnectionProxy:
        return self.joined

    async def __aexit__(self, *exc: object) -> None:
        return None

    def __await__(self) -> Generator[Any, None, asyncpg.pool.PoolConnectionProxy]:
        async def same() -> asyncpg.pool.PoolConnectionProxy:
            return self.joined

        return same().__await__()


class JoiningPool(asyncpg.Pool):
    """A pool that, inside `joined(pool, conn)`, hands the current task that one connection.

    The idempotency middleware runs a whole command request in one transaction (the key commits
    with the events). Everything the request does through the pool then works in it: units of
    work become savepoints, reads after the command see its events, and a request never holds
    two connections (which would drain the pool under load). Other tasks are not affected.
    """

    def acquire(self, *, timeout: float | None = None) -> asyncpg.pool.PoolAcquireContext:
        bound = _joined.get()
        if bound is not None and bound[0] is self:
            return _JoinedAcquire(self, bound[1])
        return super().acquire(timeout=timeout)

    # The pool's read methods run one statement outside any transaction of ours: an implicit
    # transaction of its own, which ends with it, so the connection goes back without the reset
    # statement (a round trip per query). They must take no session-level lock or setting; none
    # does (the relay's session lock is taken on a connection it holds itself). `execute`, which
    # may run anything, is left to reset.
    async def fetch(
        self, query: str, *args: Any, timeout: float | None = None, record_class: Any = None
    ) -> list[Any]:
        async with self.acquire() as conn:
            rows: list[Any] = await conn.fetch(query, *args, timeout=timeout, record_class=record_class)
            transactions_only(conn)
            return rows

    async def fetchrow(
        self, query: str, *args: Any, timeout: float | None = None, record_class: Any = None
    ) -> Any:
        async with self.acquire() as conn:
            row = await conn.fetchrow(query, *args, timeout=timeout, record_class=record_class)
            transactions_only(conn)
            return row

    async def fetchval(self, query: str, *args: Any, column: int = 0, timeout: float | None = None) -> Any:
        async with self.acquire() as conn:
            value = await conn.fetchval(query, *args, column=column, timeout=timeout)
            transactions_only(conn)
            return value

    async def release(
        self, connection: asyncpg.pool.PoolConnectionProxy, *, timeout: float | None = None
    ) -> None:
        bound = _joined.get()
        if bound is not None and bound[1] is connection:
            return
        await super().release(connection, timeout=timeout)


@contextlib.contextmanager
def joined(pool: asyncpg.Pool, conn: asyncpg.pool.PoolConnectionProxy) -> Iterator[None]:
    """Within this block the current task's `pool.acquire()` yields `conn` (see JoiningPool)."""
    token = _joined.set((pool, conn))
    try:
        yield
    finally:
        _joined.reset(token)


class PooledConnection(asyncpg.Connection):
    """A pool's connection that can say its session holds nothing for the next borrower."""

    __slots__ = ("_transactions_only",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._transactions_only = False

    def transactions_only(self) -> None:
        """Everything done on this connection since it was acquired ran in transactions that have
        ended: their locks, cursors and settings (SET LOCAL) went with them, so its release may
        skip the reset statement (one round trip per command). Call it only where the code
        between acquire and release is known: a unit of work, the idempotency middleware."""
        if not self.is_in_transaction():
            self._transactions_only = True


async def _reset(conn: asyncpg.Connection) -> None:
    """What the pool runs on a released connection, after asyncpg rolled back any transaction
    left open and forgot its listeners: the reset statement (session advisory locks, cursors,
    LISTEN, SET), unless the connection was used in ended transactions only."""
    if getattr(conn, "_transactions_only", False):
        conn._transactions_only = False  # type: ignore[attr-defined]
        return
    query = conn.get_reset_query()
    if query:
        await conn.execute(query)


def sole_writer(conn: Any) -> str | None:
    """For a connection that writes a schema nobody else writes meanwhile (one replay's fresh
    schema, zhengming/audit/bulk.py), the token of that one run; None for any other. Within a
    run, a projector may evolve the rows it wrote last without asking the table whether it still
    holds them (keyed by the token, so one run's rows never serve another's)."""
    owner = getattr(conn, "sole_writer", None)
    return owner if isinstance(owner, str) else None


def transactions_only(conn: Conn) -> None:
    """`PooledConnection.transactions_only` for a connection (or its pool proxy) of any class."""
    mark = getattr(conn, "transactions_only", None)
    if mark is not None:
        mark()


async def create_pool(
    settings: PostgresSettings,
    schema: str,
    *,
    min_size: int | None = None,
    max_size: int | None = None,
) -> asyncpg.Pool:
    """A pool whose connections see `schema` first on their search path (a JoiningPool)."""
    check_schema(schema)
    pool = JoiningPool(
        settings.dsn(),
        min_size=settings.pool_min if min_size is None else min_size,
        max_size=settings.pool_max if max_size is None else max_size,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        init=init_connection,
        reset=_reset,
        loop=None,
        connection_class=PooledConnection,
        record_class=asyncpg.Record,
        server_settings={"search_path": f"{schema},public", "application_name": f"zm-{schema}"},
    )
    await pool
    return pool


async def init_connection(conn: asyncpg.Connection) -> None:
    """jsonb in and out as Python values."""
    await conn.set_type_codec("jsonb", encoder=jsonb_text, decoder=jsonb_value, schema="pg_catalog")
    # A new connection is the first sign that a database outage is over (one line, if there was one).
    outages.up("database")


def jsonb_text(value: object) -> str:
    """A value as jsonb's text (the connection's jsonb codec, and arrays of jsonb): the canonical
    JSON of shared/envelope.py, fast for what events hold; jsonb keeps no key order anyway."""
    return canonical_json(value).decode()


# Every digit a "0", everything else a blank: a run of 19 digits may be an integer beyond 64 bits,
# which orjson would read as a float.
_DIGITS_AS_ZEROS = bytes(0x30 if 0x30 <= c <= 0x39 else 0x20 for c in range(256))
_LONG_NUMBER = b"0" * 19


def jsonb_value(text: str) -> Any:
    """jsonb's text as a Python value, exactly what `json.loads` gives: by orjson (about twice as
    fast with the check), or by the standard library where orjson would differ (a long run of
    digits) or refuses (an infinite number, a lone surrogate)."""
    raw = text.encode()
    if _LONG_NUMBER not in raw.translate(_DIGITS_AS_ZEROS):
        try:  # not contextlib.suppress: a third of the time of a small value
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def migration_files(dirs: Sequence[Path]) -> list[tuple[str, Path]]:
    """Migrations as (version, path), e.g. ('core/0001_event_store', ...), in apply order."""
    found: list[tuple[str, Path]] = []
    for directory in dirs:
        if directory == CORE_MIGRATIONS:
            prefix = "core"
        elif directory.parent == CORE_MIGRATIONS:
            prefix = directory.name
        else:
            prefix = directory.parent.name
        found.extend((f"{prefix}/{f.stem}", f) for f in sorted(directory.glob("[0-9]*.sql")))
    return found


async def migrate(conn: asyncpg.Connection, schema: str, dirs: Sequence[Path]) -> list[str]:
    """Create `schema` if needed and apply the migrations it lacks; returns what was applied.

    A transaction-scoped advisory lock keeps two processes from migrating the same schema at once.
    """
    check_schema(schema)
    applied: list[str] = []
    lock = int.from_bytes(hashlib.sha256(f"migrate:{schema}".encode()).digest()[:8], "big", signed=True)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", lock)
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        await conn.execute(f"SET LOCAL search_path TO {schema}, public")
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {
            r["version"]: r["checksum"]
            for r in await conn.fetch("SELECT version, checksum FROM schema_migrations")
        }
        for version, path in migration_files(dirs):
            sql = path.read_text(encoding="utf-8")
            checksum = hashlib.sha256(sql.encode()).hexdigest()
            if version in done:
                if done[version] != checksum:
                    raise RuntimeError(f"migration {version} changed after it was applied to {schema}")
                continue
            await conn.execute(sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)",
                version,
                checksum,
            )
            applied.append(version)
    return applied


def service_migrations(service: str) -> list[Path]:
    """The core migrations plus the service's own, if it has any."""
    own = SERVICES_DIR / service / "migrations"
    return [CORE_MIGRATIONS] + ([own] if own.is_dir() else [])


# What a database that is away (stopped, restarting, out of connections) raises (answered 503 at the
# HTTP edges, retried quietly by consumers).
DATABASE_AWAY: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InternalClientError,  # asyncpg's state on a session terminated mid-operation
    asyncpg.OperatorInterventionError,
    asyncpg.TooManyConnectionsError,
    ConnectionError,
    TimeoutError,
)


def database_away(exc: BaseException) -> bool:
    if isinstance(exc, DATABASE_AWAY):
        return True
    if isinstance(exc, asyncpg.InterfaceError):
        return "closed" in str(exc) or "closing" in str(exc)
    # asyncio's connect over several addresses: "Multiple exceptions: [Errno 111] ..."
    return type(exc) is OSError and ("connect" in str(exc).lower() or "Multiple exceptions" in str(exc))


@contextlib.asynccontextmanager
async def acquired(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.pool.PoolConnectionProxy]:
    """A pooled connection whose release cannot fail the work done on it: once COMMIT has
    answered, a failure to hand the connection back (PostgreSQL shutting down) must not turn a
    success into an error, nor hide the error of work that failed."""
    conn = await pool.acquire()
    try:
        yield conn
    finally:
        try:
            await pool.release(conn)
        except Exception as exc:
            log.warning("connection.release_failed", error=repr(exc))
