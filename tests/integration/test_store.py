"""Event store on the real PostgreSQL: append, load, concurrency, hash chain, erasure."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from shared import store as store_module
from shared.crypto import FieldCipher, SealedField
from shared.errors import ConcurrencyError, KeyErased
from shared.store import EventStore, NewEvent
from tests.integration.conftest import ACTOR

J = "331122"


def ev(n: int, **extra: object) -> NewEvent:
    return NewEvent("Noted", 1, {"n": n, "text": f"第{n}条", **extra})


async def append(store: EventStore, stream: str, expected: int, *events: NewEvent) -> None:
    await store.append(
        stream,
        expected,
        list(events),
        case_id=stream,
        jurisdiction=J,
        actor=ACTOR,
        correlation_id=uuid.uuid4(),
    )


async def test_append_then_load_gives_the_events_back_in_order(pool: asyncpg.Pool, schema: str) -> None:
    store = EventStore(pool, schema=schema, context="review")
    await append(store, "case-1", 0, ev(1), ev(2))
    await append(store, "case-1", 2, ev(3))
    loaded = await store.load("case-1")
    assert [e.payload["n"] for e in loaded] == [1, 2, 3]
    assert [e.stream_version for e in loaded] == [1, 2, 3]
    assert loaded[1].prev_hash == loaded[0].hash
    assert all(e.hash_ok() for e in loaded)
    assert loaded[0].actor == ACTOR
    assert loaded[0].payload["text"] == "第1条"
    assert [e.payload["n"] for e in await store.load("case-1", after_version=2)] == [3]
    outbox = await pool.fetch("SELECT topic, key FROM outbox ORDER BY id")
    assert [(r["topic"], r["key"]) for r in outbox] == [("zm.331122.review.events", "case-1")] * 3


async def test_stale_expected_version_raises_a_concurrency_error(pool: asyncpg.Pool, schema: str) -> None:
    store = EventStore(pool, schema=schema, context="review")
    await append(store, "case-2", 0, ev(1))
    with pytest.raises(ConcurrencyError) as err:
        await append(store, "case-2", 0, ev(2))
    assert (err.value.expected, err.value.actual) == (0, 1)
    assert len(await store.load("case-2")) == 1
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 1


async def test_concurrent_appends_at_the_same_version_let_exactly_one_win(
    pool: asyncpg.Pool, schema: str
) -> None:
    store = EventStore(pool, schema=schema, context="review")
    results = await asyncio.gather(
        *(append(store, "case-3", 0, ev(i)) for i in range(8)), return_exceptions=True
    )
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, ConcurrencyError) for r in results if r is not None)
    assert len(await store.load("case-3")) == 1


async def test_one_append_of_many_events_keeps_their_order_in_the_store_and_the_outbox(
    pool: asyncpg.Pool, schema: str
) -> None:
    """One statement writes a batch: global positions and outbox ids still run in version order
    (the relay publishes in id order), also after an append that read the head."""
    store = EventStore(pool, schema=schema, context="review")
    await append(store, "case-b", 0, *(ev(i) for i in range(100)))
    await append(store, "case-b", 100, *(ev(i) for i in range(100, 150)))
    rows = await pool.fetch(
        "SELECT e.stream_version, e.global_position, o.id FROM events e JOIN outbox o USING (event_id)"
        " ORDER BY e.stream_version"
    )
    assert [r["stream_version"] for r in rows] == list(range(1, 151))
    assert [r["global_position"] for r in rows] == sorted(r["global_position"] for r in rows)
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    loaded = await store.load("case-b")
    assert [e.payload["n"] for e in loaded] == list(range(150))
    assert all(e.hash_ok() for e in loaded) and loaded[100].prev_hash == loaded[99].hash
    assert await store.verify() is None


async def test_verify_passes_on_an_untouched_store(pool: asyncpg.Pool, schema: str) -> None:
    store = EventStore(pool, schema=schema, context="review")
    for s in range(3):
        await append(store, f"case-{s}", 0, *(ev(i) for i in range(5)))
    assert await store.verify() is None


async def test_verify_names_the_one_altered_row(pool: asyncpg.Pool, schema: str) -> None:
    store = EventStore(pool, schema=schema, context="review")
    for s in range(3):
        await append(store, f"case-{s}", 0, *(ev(i) for i in range(5)))
    await pool.execute(
        "UPDATE events SET payload = jsonb_set(payload, '{text}', '\"改过\"')"
        " WHERE stream_id = 'case-1' AND stream_version = 3"
    )
    broken = await store.verify()
    assert broken is not None
    assert (broken.stream_id, broken.stream_version, broken.reason) == ("case-1", 3, "hash")
    stored = await pool.fetchval("SELECT hash FROM events WHERE stream_id = 'case-1' AND stream_version = 3")
    assert broken.found == stored and broken.expected != stored


async def test_verify_detects_a_deleted_row(pool: asyncpg.Pool, schema: str) -> None:
    store = EventStore(pool, schema=schema, context="review")
    await append(store, "case-9", 0, *(ev(i) for i in range(5)))
    await pool.execute("DELETE FROM events WHERE stream_id = 'case-9' AND stream_version = 2")
    broken = await store.verify()
    assert broken is not None
    assert (broken.stream_id, broken.stream_version) == ("case-9", 2)


async def test_erased_field_is_unreadable_and_the_chain_still_verifies(
    pool: asyncpg.Pool, schema: str
) -> None:
    store = EventStore(pool, schema=schema, context="intake")
    cipher = FieldCipher(b"k" * 32)
    async with pool.acquire() as conn:
        sealed = await cipher.seal(conn, "reporter-1", "张三 13800000000", "reporter.identity")
    assert "张三" not in sealed.model_dump_json()
    await append(store, "case-r", 0, NewEvent("ReportReceived", 1, {"reporter": sealed.model_dump()}))
    stored = (await store.load("case-r"))[0]
    raw = await pool.fetchval("SELECT payload::text FROM events")
    assert "张三" not in raw
    async with pool.acquire() as conn:
        back = SealedField.model_validate(stored.payload["reporter"])
        assert await cipher.open(conn, back, "reporter.identity") == "张三 13800000000"
        # Bound to its field: the same ciphertext does not open as another field.
        with pytest.raises(Exception):  # noqa: B017 - cryptography's InvalidTag
            await cipher.open(conn, back, "reporter.phone")
        assert await cipher.erase(conn, "reporter-1", erased_by="auditor-1") is True
        with pytest.raises(KeyErased):
            await cipher.open(conn, back, "reporter.identity")
        # An erased subject cannot silently get a fresh key.
        with pytest.raises(KeyErased):
            await cipher.seal(conn, "reporter-1", "again", "reporter.identity")
    assert await store.verify() is None
    assert (await store.load("case-r"))[0].hash == stored.hash


async def _signed_trail(store: EventStore, streams: int, length: int) -> None:
    for s in range(streams):
        await append(store, f"case-{s:03d}", 0, *(ev(i) for i in range(length)))


async def _forge_signature(pool: asyncpg.Pool, stream: str, version: int) -> None:
    """A signature by the right key over another event's hash: only the signature check sees it."""
    await pool.execute(
        "UPDATE events SET signature = (SELECT signature FROM events WHERE stream_id = $1"
        " AND stream_version = $2 + 1) WHERE stream_id = $1 AND stream_version = $2",
        stream,
        version,
    )


@pytest.mark.parametrize("chunk", [7, 500])
async def test_verify_names_the_first_bad_signature_in_trail_order_across_chunks(
    pool: asyncpg.Pool, schema: str, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Signatures are checked by chunks on a worker thread: the break returned is still the
    first in trail order, and only events checked before it count as signed."""
    monkeypatch.setattr(store_module, "SIGNATURE_CHUNK", chunk)
    store = EventStore(pool, schema=schema, context="review")
    await _signed_trail(store, 12, 10)
    await _forge_signature(pool, "case-009", 4)
    await _forge_signature(pool, "case-004", 6)
    signed: dict[str, store_module.Vouched] = {}
    broken = await store.verify(signed=signed)
    assert broken is not None
    assert (broken.stream_id, broken.stream_version) == ("case-004", 6)
    assert broken.reason.startswith("signature bad_signature")
    assert len(signed) == 4 * 10 + 5  # every event before it, none after


async def test_a_chain_break_before_a_bad_signature_is_the_one_named(
    pool: asyncpg.Pool, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "SIGNATURE_CHUNK", 3)
    store = EventStore(pool, schema=schema, context="review")
    await _signed_trail(store, 6, 5)
    await _forge_signature(pool, "case-004", 2)
    await pool.execute("DELETE FROM events WHERE stream_id = 'case-002' AND stream_version = 3")
    broken = await store.verify()
    assert broken is not None
    assert (broken.stream_id, broken.stream_version, broken.reason) == ("case-002", 3, "version 3 missing")
    await pool.execute("DELETE FROM events WHERE stream_id = 'case-002'")
    broken = await store.verify()
    assert broken is not None and (broken.stream_id, broken.stream_version) == ("case-004", 2)


async def test_events_of_before_signing_pass_unsigned_and_a_later_unsigned_one_is_named(
    pool: asyncpg.Pool, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An event recorded before events were signed needs no signature; one written after does,
    and the workers that check hashes and signatures tell the two apart by global position."""
    monkeypatch.setattr(store_module, "SIGNATURE_CHUNK", 2)
    store = EventStore(pool, schema=schema, context="review")
    await append(store, "case-0", 0, *(ev(i) for i in range(3)))
    await append(store, "case-1", 0, *(ev(i) for i in range(3)))
    await pool.execute("UPDATE events SET key_id = NULL, signature = NULL WHERE stream_id = 'case-0'")
    await pool.execute(
        "INSERT INTO unsigned_events_before (global_position)"
        " SELECT max(global_position) FROM events WHERE stream_id = 'case-0'"
    )
    signed: dict[str, store_module.Vouched] = {}
    assert await store.verify(signed=signed) is None
    case_1 = {
        str(r["event_id"]) for r in await pool.fetch("SELECT event_id FROM events WHERE stream_id = 'case-1'")
    }
    assert set(signed) == case_1  # the unsigned ones vouch for nothing on Kafka
    await pool.execute(
        "UPDATE events SET key_id = NULL, signature = NULL WHERE stream_id = 'case-1' AND stream_version = 2"
    )
    broken = await store.verify()
    assert broken is not None
    assert (broken.stream_id, broken.stream_version) == ("case-1", 2)
    assert broken.reason.startswith("signature unsigned"), broken.reason


@pytest.mark.parametrize(
    ("column", "altered", "named"),
    [
        ("payload", "'[1]'", "undecodable row: payload: "),
        ("payload", """'{"n": 1e5000}'""", "undecodable row: payload or actor: "),
        ("actor", """'{"user_id": 7}'""", "undecodable row: actor."),
    ],
)
async def test_a_row_altered_into_no_event_is_named_not_raised(
    pool: asyncpg.Pool, schema: str, column: str, altered: str, named: str
) -> None:
    """A payload that is no JSON object, a number JSON cannot give back, an actor of the wrong
    shape: the audit names the row instead of failing (a 5xx in GET /audit/verify)."""
    store = EventStore(pool, schema=schema, context="review")
    for s in range(2):
        await append(store, f"case-{s}", 0, *(ev(i) for i in range(3)))
    await pool.execute(
        f"UPDATE events SET {column} = {altered} WHERE stream_id = 'case-1' AND stream_version = 2"
    )
    broken = await store.verify()
    assert broken is not None
    assert (broken.stream_id, broken.stream_version, broken.found) == ("case-1", 2, "undecodable row")
    assert broken.reason.startswith(named), broken.reason
