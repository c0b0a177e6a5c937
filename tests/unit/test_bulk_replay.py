"""Replay's bulk application (zhengming/audit/bulk.py): the projectors' writes queued and sent
with one executemany per run of the same SQL, each key's order kept, reads sent after every write
queued before them, and exactly the statements the projectors issued, no more, no fewer."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.db import Conn
from shared.envelope import GENESIS_HASH, Actor, seal
from zhengming.audit.bulk import BulkApplier, Step
from zhengming.audit.replays import decode_batch

Call = tuple[str, str, Any]


class Recorder:
    """A connection holding, per key, the (sql, value) rows written in order; it logs each call.
    Every statement's first argument is its key, the second its value. Each call gives the event
    loop a turn first, as a round trip to the database does."""

    def __init__(self) -> None:
        self.rows: dict[str, list[tuple[str, Any]]] = defaultdict(list)
        self.calls: list[Call] = []

    def _write(self, sql: str, args: Sequence[Any]) -> None:
        self.rows[args[0]].append((sql, args[1]))

    async def execute(self, sql: str, *args: Any) -> str:
        await asyncio.sleep(0)
        self.calls.append(("execute", sql, args))
        self._write(sql, args)
        return "INSERT 0 1"

    async def executemany(self, sql: str, args: Sequence[Sequence[Any]]) -> None:
        await asyncio.sleep(0)
        self.calls.append(("executemany", sql, [tuple(a) for a in args]))
        for one in args:
            self._write(sql, one)

    async def fetchval(self, sql: str, *args: Any, column: int = 0) -> Any:
        await asyncio.sleep(0)
        self.calls.append(("fetchval", sql, args))
        return len(self.rows[args[0]])

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        await asyncio.sleep(0)
        self.calls.append(("fetchrow", sql, args))
        return list(self.rows[args[0]])

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        await asyncio.sleep(0)
        self.calls.append(("fetch", sql, args))
        return [row for rows in self.rows.values() for row in rows if row[0] == args[0]]

    def statements(self) -> Counter[tuple[str, tuple[Any, ...]]]:
        """What was written, one entry per row, however it was sent."""
        out: Counter[tuple[str, tuple[Any, ...]]] = Counter()
        for method, sql, args in self.calls:
            for one in args if method == "executemany" else [args]:
                out[(sql, tuple(one))] += 1
        return out


def writes(key: str, *sqls: str) -> Step:
    async def step(conn: Conn) -> None:
        for i, sql in enumerate(sqls):
            await conn.execute(sql, key, i)

    return step


async def bulk(steps: list[tuple[str, Step]]) -> Recorder:
    db = Recorder()
    applier = BulkApplier(cast(Conn, db))
    await applier.apply(steps)
    await applier.flush()
    return db


async def sequential(steps: list[tuple[str, Step]]) -> Recorder:
    """The projectors as the services run them live: one statement at a time."""
    db = Recorder()
    for _, step in steps:
        await step(cast(Conn, db))
    return db


async def test_a_run_of_one_sql_is_one_executemany_in_the_order_issued() -> None:
    db = await bulk([("case-1", writes("case-1", "A", "A", "A")), ("case-1", writes("case-1", "A"))])
    assert db.calls == [("executemany", "A", [("case-1", 0), ("case-1", 1), ("case-1", 2), ("case-1", 0)])]


async def test_one_key_keeps_its_order_across_sqls() -> None:
    db = await bulk([("case-1", writes("case-1", "A", "B", "A"))])
    assert [(m, sql) for m, sql, _ in db.calls] == [("execute", "A"), ("execute", "B"), ("execute", "A")]


async def test_statements_of_different_keys_share_runs() -> None:
    steps = [(k, writes(k, "A", "B")) for k in ("case-1", "case-2", "case-3")]
    db = await bulk(steps)
    assert [(m, sql, len(a)) for m, sql, a in db.calls] == [("executemany", "A", 3), ("executemany", "B", 3)]
    assert db.rows == (await sequential(steps)).rows


async def test_a_read_is_sent_after_the_writes_before_it_and_sees_them() -> None:
    seen: list[int] = []

    async def read_then_write(conn: Conn) -> None:
        await conn.execute("A", "case-1", "first")
        seen.append(await conn.fetchval("SELECT count", "case-1"))
        await conn.execute("B", "case-1", "second")

    db = await bulk([("case-1", read_then_write), ("case-1", read_then_write)])
    assert seen == [1, 3]
    assert [(m, sql) for m, sql, _ in db.calls] == [
        ("execute", "A"),
        ("fetchval", "SELECT count"),
        ("execute", "B"),  # B then A: two SQLs of one key, in order
        ("execute", "A"),
        ("fetchval", "SELECT count"),
        ("execute", "B"),
    ]


async def test_keys_read_side_by_side_and_their_writes_share_runs() -> None:
    async def upsert_then_read(conn: Conn, key: str) -> None:
        await conn.execute("INSERT", key, 0)
        row: Any = await conn.fetchrow("SELECT FOR UPDATE", key)
        await conn.execute("UPDATE", key, len(row))

    def step(key: str) -> Step:
        return lambda conn: upsert_then_read(conn, key)

    steps = [(k, step(k)) for k in ("case-1", "case-2") for _ in range(2)]
    db = await bulk(steps)
    assert db.rows == (await sequential(steps)).rows
    assert [(m, sql) for m, sql, _ in db.calls] == [
        ("executemany", "INSERT"),
        ("fetchrow", "SELECT FOR UPDATE"),
        ("fetchrow", "SELECT FOR UPDATE"),
        ("executemany", "UPDATE"),
        ("executemany", "INSERT"),
        ("fetchrow", "SELECT FOR UPDATE"),
        ("fetchrow", "SELECT FOR UPDATE"),
        ("executemany", "UPDATE"),
    ]


async def test_what_bulk_cannot_keep_in_order_is_refused() -> None:
    async def opens_a_transaction(conn: Conn) -> None:
        conn.transaction()

    with pytest.raises(AttributeError, match=r"conn\.transaction"):
        await bulk([("case-1", writes("case-1", "A")), ("case-2", opens_a_transaction)])


async def test_a_failing_projector_fails_the_batch() -> None:
    async def fails(conn: Conn) -> None:
        await conn.fetchval("SELECT", "case-1")
        raise ValueError("projector bug")

    with pytest.raises(ValueError, match="projector bug"):
        await bulk([("case-1", fails), ("case-2", writes("case-2", "A"))])


# A program: events, each of a key and a list of operations (write SQL k, or read then write).
Op = tuple[str, int]
programs = st.lists(
    st.tuples(
        st.sampled_from(["case-1", "case-2", "case-3", "case-4"]),
        st.lists(st.tuples(st.sampled_from(["write", "read"]), st.integers(0, 2)), min_size=1, max_size=4),
    ),
    max_size=30,
)


def event(key: str, ops: list[Op], log: list[Any]) -> Step:
    async def step(conn: Conn) -> None:
        for op, n in ops:
            if op == "write":
                await conn.execute(f"SQL {n}", key, n)
            else:
                read: Any = [conn.fetchval, conn.fetchrow, conn.fetch][n]
                count = await read(f"READ {n}", key)
                log.append((key, count))
                await conn.execute("AFTER READ", key, repr(count))

    return step


@settings(max_examples=200, deadline=None)
@given(programs)
async def test_bulk_writes_and_reads_what_one_statement_at_a_time_does(
    program: list[tuple[str, list[Op]]],
) -> None:
    bulk_log: list[Any] = []
    one_log: list[Any] = []
    db = await bulk([(key, event(key, ops, bulk_log)) for key, ops in program])
    one = await sequential([(key, event(key, ops, one_log)) for key, ops in program])
    assert db.rows == one.rows  # each key's rows in the same order
    assert db.statements() == one.statements()  # exactly the same statements, each once
    # Each key's reads saw the same things (keys read side by side, so only per key in order).
    for key in {k for k, _ in program}:
        assert [c for k, c in bulk_log if k == key] == [c for k, c in one_log if k == key]
    assert len([c for c in db.calls if c[0] == "executemany"]) <= len(one.calls)


def _envelope_bytes(n: int) -> bytes:
    return seal(
        event_type="ReportReceived",
        schema_version=1,
        stream_id=f"s-{n}",
        stream_version=1,
        case_id=f"c-{n}",
        jurisdiction="331122",
        occurred_at=datetime(2023, 3, 1, tzinfo=UTC),
        actor=Actor(user_id="u", role="letters_office", unit="信访室"),
        correlation_id=uuid4(),
        causation_id=None,
        payload={"n": n},
        prev_hash=GENESIS_HASH,
    ).to_bytes()


def test_a_batch_decodes_one_envelope_per_record() -> None:
    values: list[bytes | None] = [_envelope_bytes(n) for n in range(3)]
    assert [e.case_id for e in decode_batch(values)] == ["c-0", "c-1", "c-2"]


@pytest.mark.parametrize("odd", ["two in one", "null", "empty"])
def test_a_record_that_is_not_one_envelope_fails_the_batch(odd: str) -> None:
    """Joined into one array, `{a},{b}` would read as two events: the live consumer dead-letters
    such a record, and replay must not apply it either."""
    a, b, c = (_envelope_bytes(n) for n in range(3))
    value = {"two in one": a + b"," + b, "null": None, "empty": b""}[odd]
    with pytest.raises(ValidationError):
        decode_batch([c, value])
