"""Projectors applied in bulk (replay): the same per-event functions `(conn, envelope, payload)` the
services run live, handed a connection that queues their writes and sends them with one
`executemany` per run of the same SQL.

Kafka orders the events of one key (one case) and nothing else: the relay publishes in the order
each case's writers committed, and events of different cases reach a consumer in whatever order
its partitions and their relative progress give. Read models therefore cannot depend on the order
of events of different keys, and bulk application uses that freedom, never more:

- a statement joins the latest queued run of its SQL unless a statement of the same key was queued
  in a later run, so each key's statements keep their order and those of different keys commute;
- the events of one key are applied one after the other, the keys of a batch side by side (one
  task each, on one connection): when every key waits on a read (fetch, fetchrow, fetchval) or is
  done, the queued writes are sent, then the reads, in the order they were asked; a read therefore
  sees every write queued before it.

Nothing is sent in parallel: one connection, one transaction (the caller's), statements in an
order that keeps each key's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from shared.db import Conn

Key = Hashable
Step = Callable[[Conn], Awaitable[None]]
"""One event's projection, given the connection to work on."""


@dataclass
class _Run:
    sql: str
    args: list[Sequence[Any]] = field(default_factory=list)


class StatementQueue:
    """Writes waiting to be sent, in runs of one SQL each (see the module's docstring)."""

    def __init__(self) -> None:
        self._runs: list[_Run] = []
        self._last_of_sql: dict[str, int] = {}
        self._last_of_key: dict[Key, int] = {}
        self.statements = 0
        self.round_trips = 0

    def __len__(self) -> int:
        return len(self._runs)

    def add(self, key: Key, sql: str, args: Sequence[Any]) -> None:
        at = self._last_of_sql.get(sql)
        if at is None or at < self._last_of_key.get(key, -1) or not args:
            # A statement without arguments may be several (the simple protocol): sent alone.
            at = len(self._runs)
            self._runs.append(_Run(sql))
            self._last_of_sql[sql] = at
        self._runs[at].args.append(args)
        self._last_of_key[key] = at
        self.statements += 1

    async def flush(self, conn: Conn) -> None:
        runs = self._runs
        self._runs, self._last_of_sql, self._last_of_key = [], {}, {}
        for run in runs:
            self.round_trips += 1
            if len(run.args) == 1:
                await conn.execute(run.sql, *run.args[0])
            else:
                await conn.executemany(run.sql, run.args)


class KeyedConn:
    """What a projector receives in bulk: the calls projectors make on a connection, bound to the
    key of the event being applied. Writes are queued (their status string is not known yet, so
    they answer ''); reads wait until the writes before them are sent."""

    def __init__(self, applier: BulkApplier, key: Key) -> None:
        self._applier = applier
        self._key = key

    @property
    def sole_writer(self) -> str | None:
        """The run that writes this schema alone, if it said so (shared/db.py `sole_writer`)."""
        return self._applier.owner

    async def execute(self, sql: str, *args: Any) -> str:
        self._applier.queue.add(self._key, sql, args)
        return ""

    async def executemany(self, sql: str, args: Iterable[Sequence[Any]]) -> None:
        for one in args:
            self._applier.queue.add(self._key, sql, tuple(one))

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        rows: list[Any] = await self._applier.read("fetch", sql, args)
        return rows

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        return await self._applier.read("fetchrow", sql, args)

    async def fetchval(self, sql: str, *args: Any, column: int = 0) -> Any:
        return await self._applier.read("fetchval", sql, (*args,), column=column)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"a projector in bulk cannot call conn.{name} (only execute and reads)")


@dataclass
class _Read:
    future: asyncio.Future[Any]
    method: str
    sql: str
    args: Sequence[Any]
    column: int | None


class BulkApplier:
    """Applies the steps of many keys on one connection (in the caller's transaction)."""

    def __init__(self, conn: Conn, *, owner: str | None = None) -> None:
        self.conn = conn
        # The token of a run that writes the schema alone (a replay), else None.
        self.owner = owner
        self.queue = StatementQueue()
        self.reads = 0
        self._waiting: list[_Read] = []
        self._runnable = 0
        self._quiet = asyncio.Event()
        """Set when every key waits on a read or is done."""

    async def read(self, method: str, sql: str, args: Sequence[Any], column: int | None = None) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Read(future, method, sql, args, column))
        self._pause()
        return await future

    def _pause(self) -> None:
        self._runnable -= 1
        if self._runnable == 0:
            self._quiet.set()

    async def apply(self, steps: Iterable[tuple[Key, Step]]) -> None:
        """Run every step, each key's in order; returns with the writes still queued (`flush`)."""
        chains: dict[Key, list[Step]] = {}
        for key, step in steps:
            chains.setdefault(key, []).append(step)
        if not chains:
            return
        self._runnable = len(chains)
        tasks = [asyncio.ensure_future(self._chain(key, chain)) for key, chain in chains.items()]
        try:
            while True:
                # Let every key run until it waits on a read or is done.
                await self._quiet.wait()
                self._quiet.clear()
                for task in tasks:
                    if task.done() and task.exception() is not None:
                        raise cast(BaseException, task.exception())
                if not self._waiting:
                    break
                await self.queue.flush(self.conn)
                waiting, self._waiting = self._waiting, []
                # Every answer first, then every key woken: a key woken early would queue writes
                # and ask reads while the others are still being sent (its reads then before its
                # writes).
                results = []
                for read in waiting:
                    self.reads += 1
                    if read.method == "fetchval":
                        results.append(
                            await self.conn.fetchval(read.sql, *read.args, column=read.column or 0)
                        )
                    else:
                        results.append(await getattr(self.conn, read.method)(read.sql, *read.args))
                self._runnable += len(waiting)
                for read, result in zip(waiting, results, strict=True):
                    read.future.set_result(result)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._waiting.clear()

    async def _chain(self, key: Key, chain: list[Step]) -> None:
        conn = cast(Conn, KeyedConn(self, key))
        try:
            for step in chain:
                await step(conn)
        finally:
            self._pause()

    async def flush(self) -> None:
        await self.queue.flush(self.conn)
