"""Integration fixtures: the real PostgreSQL and Kafka that `zhengming up` / `make test` started.

Each test gets a fresh schema and fresh topics, so tests never see each other's data.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer

from shared import settings
from shared.db import CORE_MIGRATIONS, create_pool, migrate
from shared.envelope import Actor
from shared.runtime import Runtime, ServiceDefinition, open_runtime
from zhengming.local import ensure_topics

ACTOR = Actor(user_id="tester", role="letters_office", unit="丽水市纪委监委信访室")


@pytest.fixture(scope="session", autouse=True)
def infrastructure() -> None:
    from zhengming.local import LocalKafka, LocalPostgres

    pg = LocalPostgres(settings.local(), settings.postgres())
    kafka = LocalKafka(settings.local(), settings.kafka())
    if not (pg.answering() and kafka.answering()):
        pytest.fail("Kafka and PostgreSQL must run: use `make test` (or `zhengming up`)")


@pytest.fixture(scope="package", autouse=True)
def signing_keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Signing keys of their own: the test contexts' keys never join the deployment's keyring."""
    root = tmp_path_factory.mktemp("signing")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ZM_SIGNING_KEY_DIR", str(root / "keys"))
        patch.setenv("ZM_SIGNING_KEYRING_DIR", str(root / "keyring"))
        yield


@pytest.fixture
def schema() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def pool(schema: str) -> AsyncIterator[asyncpg.Pool]:
    conn = await asyncpg.connect(settings.postgres().dsn())
    try:
        await migrate(conn, schema, [CORE_MIGRATIONS])
    finally:
        await conn.close()
    pool = await create_pool(settings.postgres(), schema, min_size=1, max_size=12)
    try:
        yield pool
    finally:
        await pool.close()
        conn = await asyncpg.connect(settings.postgres().dsn())
        try:
            await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        finally:
            await conn.close()


@contextlib.asynccontextmanager
async def fresh_runtime(definition: ServiceDefinition, schema: str | None = None) -> AsyncIterator[Runtime]:
    """A service's runtime on a schema of its own (migrated), dropped with it afterwards."""
    schema = schema or f"t_{uuid.uuid4().hex[:12]}"
    runtime = await open_runtime(definition, schema=schema)
    try:
        yield runtime
    finally:
        await runtime.pool.close()
        conn = await asyncpg.connect(settings.postgres().dsn())
        try:
            await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        finally:
            await conn.close()


@pytest.fixture
def context() -> str:
    """A bounded-context name unique to the test, so its topics are fresh."""
    return f"t{uuid.uuid4().hex[:10]}"


async def create_topics(*names: str, partitions: int = 3) -> None:
    await ensure_topics(settings.kafka(), list(names), partitions)


async def wait_for(
    check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 60.0, every_s: float = 0.1
) -> None:
    """Poll a condition until it holds or the deadline passes (never a bare sleep)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


async def read_topic(topic: str, expected: int, timeout_s: float = 60.0) -> list[tuple[bytes, bytes, int]]:
    """Read a topic from the start until `expected` records (or the deadline); returns
    (key, value, partition) in each partition's order, partitions concatenated."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka().bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        isolation_level="read_committed",  # as the public contracts ask of every reader
    )
    await consumer.start()
    out: list[tuple[bytes, bytes, int]] = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(out) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for tp, records in batch.items():
                out.extend((r.key or b"", r.value or b"", tp.partition) for r in records)
        # A little more to catch anything beyond what was expected (duplicates would show here).
        extra = await consumer.getmany(timeout_ms=1000)
        for tp, records in extra.items():
            out.extend((r.key or b"", r.value or b"", tp.partition) for r in records)
    finally:
        await consumer.stop()
    return out
