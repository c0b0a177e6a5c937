"""SQL round trips of whole commands on the real PostgreSQL (issue 14: at most 6 per command).

Counted: every statement a connection of the service's pool sends, as asyncpg's query logger
sees it, from the request's arrival to its answer: the transaction's BEGIN and COMMIT (asyncpg
sends each on its own), savepoints, the command's statements and the reset asyncpg runs when the
connection goes back to the pool. Each is one round trip once asyncpg has prepared the statement
on the connection: the pool holds one connection here and each command runs once before it is
counted, so the statement cache is warm (a statement's first use on a connection costs one more,
its Parse, which the logger does not see). A count, never a timing.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from services.clarification.api import build_api as clarification_api
from services.clarification.main import definition as clarification
from services.clarification.projections import _seen
from services.intake.api import build_api as intake_api
from services.intake.main import definition as intake
from shared import db, idempotency
from shared.runtime import Runtime
from tests.integration.conftest import fresh_runtime
from tests.integration.test_clarification_service import (
    DEPT,
    PERSON,
    Feed,
    NoReporter,
    conclusion,
    word_content,
)
from tests.integration.test_idempotency import OFFICE, keyed, report

J = "331122"
LIMIT = 6


class Statements:
    """The statements the pool's connections send while counting."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.counting = False

    def __call__(self, record: asyncpg.connection.LoggedQuery) -> None:
        if self.counting:
            self.sent.append(" ".join(record.query.split())[:90])

    async def of(self, request: Any) -> tuple[httpx.Response, list[str]]:
        self.sent, self.counting = [], True
        try:
            response = await request
        finally:
            self.counting = False
        return response, self.sent


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[Statements]:
    """Every pool connection opened from here on logs to it; one connection per pool."""
    logged = Statements()
    init = db.init_connection

    async def counted(conn: asyncpg.Connection) -> None:
        await init(conn)
        conn.add_query_logger(logged)

    monkeypatch.setattr(db, "init_connection", counted)
    monkeypatch.setenv("ZM_PG_POOL_MIN", "1")
    monkeypatch.setenv("ZM_PG_POOL_MAX", "1")
    yield logged


@pytest.fixture
async def intake_runtime(statements: Statements) -> AsyncIterator[Runtime]:
    async with fresh_runtime(intake) as rt:
        yield rt


@pytest.fixture
async def intake_client(intake_runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = intake_api(intake_runtime)
    idempotency.install(app, intake_runtime.pool)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://intake") as c:
        yield c


def within(sent: list[str]) -> None:
    assert len(sent) <= LIMIT, "\n".join(sent)


async def _register_and_log(
    client: httpx.AsyncClient, statements: Statements, headers: Any
) -> dict[str, list[str]]:
    registered, register = await statements.of(client.post("/reports", json=report(), headers=headers()))
    assert registered.status_code == 201, registered.text
    report_id = registered.json()["report_id"]
    logged, log = await statements.of(
        client.post(f"/reports/{report_id}/log", json={"logged_on": "2023-01-17"}, headers=headers())
    )
    assert logged.status_code == 200, logged.text
    return {"register": register, "log": log}


KEY_STATEMENTS = ("INSERT INTO idempotency_keys", "SAVEPOINT", "RELEASE SAVEPOINT", "UPDATE idempotency_keys")
"""What an Idempotency-Key adds to a command: the key's claim, the savepoint the unit of work
reruns in (the request's transaction is already open), its release and the stored answer."""


async def test_registering_and_logging_a_report(
    intake_client: httpx.AsyncClient, statements: Statements
) -> None:
    await _register_and_log(intake_client, statements, lambda: OFFICE)  # the statement cache warm
    unkeyed = await _register_and_log(intake_client, statements, lambda: OFFICE)
    for name, sent in unkeyed.items():
        print(name, len(sent), *sent, sep="\n  ")
        within(sent)
    # Registering a report draws its number, then appends its new stream in one statement that
    # takes the case's lock (no head to read); logging it locks and loads it in one statement.
    assert unkeyed["register"][1].startswith("INSERT INTO report_sequences")
    assert unkeyed["register"][2].startswith("WITH new AS")
    assert unkeyed["log"][1].startswith("SELECT event_id")
    keyed_ = await _register_and_log(intake_client, statements, lambda: keyed(str(uuid.uuid4())))
    for name, sent in keyed_.items():
        print(name, "with a key", len(sent), *sent, sep="\n  ")
        extra = [q for q in sent if q.startswith(KEY_STATEMENTS)]
        assert len(extra) == len(KEY_STATEMENTS), sent
        assert len(sent) == len(unkeyed[name]) + len(KEY_STATEMENTS), sent


async def test_a_connection_used_outside_a_transaction_is_still_reset(
    intake_runtime: Runtime, statements: Statements
) -> None:
    """Only a unit of work (or the idempotency middleware) vouches for its connection: any other
    borrower's session is reset on release, so a SET there never reaches the next borrower."""
    pool = intake_runtime.pool
    statements.sent, statements.counting = [], True
    async with pool.acquire() as conn:
        await conn.execute("SET statement_timeout = 1234")
    statements.counting = False
    assert any("RESET ALL" in q for q in statements.sent), statements.sent
    async with pool.acquire() as conn:  # the one connection of the pool
        assert await conn.fetchval("SHOW statement_timeout") != "1234ms"


async def test_the_pools_reads_skip_the_reset_and_its_execute_does_not(
    intake_runtime: Runtime, statements: Statements
) -> None:
    """A read through the pool (one statement, its own implicit transaction) goes back without
    the reset statement; `pool.execute`, which may run anything, is still followed by it."""
    pool = intake_runtime.pool
    statements.sent, statements.counting = [], True
    assert await pool.fetchval("SELECT 1") == 1
    assert [r[0] for r in await pool.fetch("SELECT 2")] == [2]
    row = await pool.fetchrow("SELECT 3")
    assert row is not None and row[0] == 3
    statements.counting = False
    assert statements.sent == ["SELECT 1", "SELECT 2", "SELECT 3"], statements.sent
    statements.sent, statements.counting = [], True
    await pool.execute("SET statement_timeout = 1234")
    statements.counting = False
    assert any("RESET ALL" in q for q in statements.sent), statements.sent
    assert await pool.fetchval("SHOW statement_timeout") != "1234ms"


async def test_a_clarification_command_with_its_read_model(statements: Statements) -> None:
    async with fresh_runtime(clarification) as rt:
        transport = httpx.ASGITransport(app=clarification_api(rt, NoReporter()))
        async with httpx.AsyncClient(transport=transport, base_url="http://clarification") as c:
            for n in (1, 2):
                case_id = f"{J}-2023-00070{n}"
                await Feed(rt).deliver(conclusion(case_id))
                start = {
                    "initiated_by": "department",
                    "person_subject_id": PERSON.subject_id,
                    "consent": True,
                    "consent_note": "本人同意",
                    "started_on": "2023-03-01",
                }
                started, sent = await statements.of(
                    c.post(f"/clarifications/{case_id}/start", headers=DEPT, json=start)
                )
                assert started.status_code == 200, started.text
            print("start", len(sent), *sent, sep="\n  ")
            within(sent)
            # The matter's row evolved in hand and written in one statement (no read before it).
            assert [q.split()[0] for q in sent[3:-1]] == ["UPDATE"], sent
            await _same_row_as_read(rt, case_id)


async def _same_row_as_read(rt: Runtime, case_id: str) -> None:
    """The row the projection kept in hand is the row the table holds."""
    async with rt.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM clarifications WHERE case_id = $1", case_id)
    assert row is not None
    assert dict(row) == {k: v for k, v in _seen[case_id].row.items() if k != "row_xmin"}


async def test_a_switched_row_is_read_again_not_written_over() -> None:
    """`zhengming audit replay --switch` rewrites the live rows (same versions) while the service
    runs: the row this process kept in hand is then no longer the table's, and the next event
    evolves the switched row instead of writing the one in hand over it."""
    async with fresh_runtime(clarification) as rt:
        transport = httpx.ASGITransport(app=clarification_api(rt, NoReporter()))
        async with httpx.AsyncClient(transport=transport, base_url="http://clarification") as c:
            case_id = f"{J}-2023-000711"
            await Feed(rt).deliver(conclusion(case_id))
            start = {
                "initiated_by": "department",
                "person_subject_id": PERSON.subject_id,
                "consent": True,
                "consent_note": "本人同意",
                "started_on": "2023-03-01",
            }
            started = await c.post(f"/clarifications/{case_id}/start", headers=DEPT, json=start)
            assert started.status_code == 200, started.text
            assert case_id in _seen
            async with rt.pool.acquire() as conn, conn.transaction():  # what _switch does
                await conn.execute("CREATE TEMP TABLE switched AS SELECT * FROM clarifications")
                await conn.execute("UPDATE switched SET added_on = '1999-01-01' WHERE case_id = $1", case_id)
                await conn.execute("DELETE FROM clarifications WHERE case_id = $1", case_id)
                await conn.execute(
                    "INSERT INTO clarifications SELECT * FROM switched WHERE case_id = $1", case_id
                )
                await conn.execute("DROP TABLE switched")
            await word_content(c, case_id)
        async with rt.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT added_on, version FROM clarifications WHERE case_id = $1", case_id
            )
            events = await conn.fetchval(
                "SELECT count(*) FROM events WHERE stream_id = $1", f"clarification-{case_id}"
            )
    assert row is not None and row["version"] == events > 2
    assert str(row["added_on"]) == "1999-01-01"
