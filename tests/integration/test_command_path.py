"""The one command path on the real PostgreSQL: the lock policy and the reruns of `Runtime.command`
and `Runtime.react`, with an aggregate of the test's own (a tally of one case)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any, cast

import asyncpg
import pytest
from pydantic import BaseModel

from shared.aggregate import Aggregate, Command
from shared.auth import Principal
from shared.crypto import FieldCipher
from shared.envelope import Actor, EventEnvelope, seal
from shared.errors import Conflict, NotFound
from shared.events import registry
from shared.http import CommandContext
from shared.runtime import Runtime, UnitOfWork, decision
from shared.store import EventStore

COUNTY = "331122"
CLERK = Principal(user_id="u-1", role="letters_office", unit="缙云县纪委监委信访室", jurisdictions=[COUNTY])


@registry.event("TestTallied")
class Tallied(BaseModel):
    """One more on the tally; `seen` is the count the decision was made on."""

    seen: int


class Tally(Command):
    limit: int = 1_000


class Counter(Aggregate):
    noun = "tally"

    def __init__(self, case_id: str, jurisdiction: str = "") -> None:
        self._case_id = case_id
        self.jurisdiction = jurisdiction
        self.count = 0
        self.decisions = 0

    @property
    def stream_id(self) -> str:
        return f"tally-{self._case_id}"

    @property
    def case_id(self) -> str:
        return self._case_id

    def evolve(self, event: BaseModel) -> None:
        assert isinstance(event, Tallied)
        self.count += 1

    def tally(self, command: Tally) -> list[BaseModel]:
        DECISIONS.append(self.count)
        if self.count >= command.limit:
            raise Conflict(f"the tally is at its limit {command.limit}", code="limit_reached")
        return [Tallied(seen=self.count)]


DECISIONS: list[int] = []


@pytest.fixture
def runtime(pool: asyncpg.Pool, schema: str) -> Runtime:
    DECISIONS.clear()
    store = EventStore(pool, schema=schema, context="intake")
    return Runtime("intake", pool, store, cast(FieldCipher, None), [COUNTY])


def ctx(principal: Principal = CLERK) -> CommandContext:
    return CommandContext(principal, uuid.uuid4())


async def start(runtime: Runtime, case_id: str) -> None:
    """A tally's first event, as a reaction records it (a new stream needs no caller)."""
    await runtime.command(
        ctx(), lambda uow, command: uow.save(Counter(case_id, COUNTY), [Tallied(seen=-1)]), None
    )


async def test_writers_of_one_case_take_turns_and_none_decides_twice(runtime: Runtime) -> None:
    await start(runtime, "C1")
    tally = decision(Counter("C1"), Counter.tally)
    done = await asyncio.gather(*(runtime.command(ctx(), tally, Tally()) for _ in range(20)))
    # Each decision saw the state the previous writer left: 20 decisions for 20 commands, no
    # conflict to rerun, and the stream 1..21 in order.
    assert sorted(DECISIONS) == list(range(1, 21)) and len(DECISIONS) == 20
    assert sorted(d.state.version for d in done) == list(range(2, 22))
    events = await runtime.store.load("tally-C1")
    assert [e.stream_version for e in events] == list(range(1, 22))
    assert [e.payload["seen"] for e in events] == [-1, *range(1, 21)]


async def test_a_command_sees_only_its_jurisdictions_and_the_domain_refuses_in_its_own_words(
    runtime: Runtime,
) -> None:
    await start(runtime, "C2")
    tally = decision(Counter("C2"), Counter.tally)
    elsewhere = CLERK.model_copy(update={"jurisdictions": ["331102"]})
    with pytest.raises(NotFound, match="no tally C2"):
        await runtime.command(ctx(elsewhere), tally, Tally())
    with pytest.raises(NotFound, match="no tally C3"):
        await runtime.command(ctx(), decision(Counter("C3"), Counter.tally), Tally())
    await runtime.command(ctx(), tally, Tally(limit=2))
    with pytest.raises(Conflict) as refused:
        await runtime.command(ctx(), tally, Tally(limit=2))
    assert refused.value.code == "limit_reached"
    assert len(await runtime.store.load("tally-C2")) == 2


async def test_two_units_of_work_locking_two_cases_in_opposite_orders_both_land(runtime: Runtime) -> None:
    await start(runtime, "X")
    await start(runtime, "Y")
    both_hold_one = asyncio.Barrier(2)
    runs: list[str] = []

    def across(first: str, second: str) -> Any:
        async def handle(uow: UnitOfWork, command: Tally) -> None:
            runs.append(first)
            a = await uow.get_visible(Counter(first))
            await uow.save(a, a.tally(command))
            if len(runs) <= 2:
                await both_hold_one.wait()  # each holds its first case: the second get deadlocks
            b = await uow.get_visible(Counter(second))
            await uow.save(b, b.tally(command))

        return handle

    await asyncio.wait_for(
        asyncio.gather(
            runtime.command(ctx(), across("X", "Y"), Tally()),
            runtime.command(ctx(), across("Y", "X"), Tally()),
        ),
        60,
    )
    # PostgreSQL broke the deadlock; the loser ran again from the start and both landed once.
    assert len(runs) == 3
    for case in ("X", "Y"):
        assert [e.payload["seen"] for e in await runtime.store.load(f"tally-{case}")] == [-1, 1, 2]


async def test_a_reaction_reruns_in_its_savepoint_and_keeps_the_consumer_transaction(
    runtime: Runtime, pool: asyncpg.Pool
) -> None:
    await start(runtime, "R")
    cause = seal(
        event_type="TestTallied",
        schema_version=1,
        stream_id="elsewhere-R",
        stream_version=1,
        case_id="R",
        jurisdiction=COUNTY,
        occurred_at=datetime.now(UTC),
        actor=Actor(user_id="system:review", role="system", unit="zhengming review"),
        correlation_id=uuid.uuid4(),
        causation_id=None,
        payload={"seen": 0},
        prev_hash="0" * 64,
    )
    lost_once: list[bool] = []

    async def react(uow: UnitOfWork, envelope: EventEnvelope) -> None:
        counter = await uow.get(Counter("R"))
        if not lost_once:
            lost_once.append(True)
            # Another writer moved the stream under a unit of work that did not lock it.
            await uow.store.append(
                "tally-R",
                counter.version,
                [registry_event(Tallied(seen=99))],
                case_id="R",
                jurisdiction=COUNTY,
                actor=CLERK.actor(),
                correlation_id=uuid.uuid4(),
                conn=uow.conn,
            )
        await uow.save(counter, counter.tally(Tally()))

    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("CREATE TEMP TABLE consumer_side (n int)")
        await conn.execute("INSERT INTO consumer_side VALUES (1)")
        await runtime.react(conn, cause, react, cause)
        assert await conn.fetchval("SELECT count(*) FROM consumer_side") == 1
    events = await runtime.store.load("tally-R")
    # The first run (and what it appended) rolled back to the savepoint; the rerun landed once.
    assert [e.payload["seen"] for e in events] == [-1, 1]
    assert events[-1].causation_id == cause.event_id and events[-1].actor.user_id == "system:intake"


def registry_event(payload: BaseModel) -> Any:
    from shared.store import NewEvent

    event_type, version, body = registry.encode(payload)
    return NewEvent(event_type, version, body)
