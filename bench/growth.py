"""Growth: how the cost of the store, the relay and the audit grows with the work (the bench's
`--growth` sizes, 10k, 50k and 100k events by default), each size with the same baseline as the
main figure, measured right after it: batch append against the eventsourcing recorder, the relay
against the bare producer, audit verification against a bare read of the same rows and topics.

Each size starts from an empty schema and fresh topics, so a figure is the cost of that much
work from nothing (append: streams of 100 events, 100 per append)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence
from importlib import metadata

from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

from bench import run
from bench.common import Figure
from shared import settings
from shared.db import create_pool
from shared.store import EventStore


async def append_growth_figure(events: int) -> Figure:
    """Batch appends (100 per append) of `events` into an empty store, ours and eventsourcing's."""
    schema = run._schema("growth")
    await run._migrated(schema)
    pool = await create_pool(settings.postgres(), schema, min_size=1, max_size=2)
    try:
        store = EventStore(pool, schema=schema, context=run.CONTEXT)
        await run._checkpoint()
        t0 = time.perf_counter()
        await run._append_streams(store, "batch", events, run.BATCH)
        ours_s = time.perf_counter() - t0
    finally:
        await pool.close()
        await run._drop_schema(schema)
    theirs = run._schema("es")
    await run._execute(f"CREATE SCHEMA {theirs}")
    try:
        theirs_s = await asyncio.to_thread(_theirs_batch, events, theirs)
    finally:
        await run._drop_schema(theirs)
    return Figure(
        name=f"store append, batch, at {events} events",
        label=f"append batch at {events} events",
        unit="events/s",
        baseline_label="eventsourcing",
        count=events,
        ours_s=ours_s,
        baseline_name=f"eventsourcing {metadata.version('eventsourcing')} PostgresApplicationRecorder",
        baseline_s=theirs_s,
        notes=f"growth: {events} events appended {run.BATCH} per append into an empty store",
    )


def _theirs_batch(events: int, schema: str) -> float:
    pg = settings.postgres()
    datastore = PostgresDatastore(
        pg.database, pg.host, pg.port, pg.user, pg.password, schema=schema, pool_size=1
    )
    try:
        recorder = PostgresApplicationRecorder(datastore, events_table_name="stored_events")
        recorder.create_table()
        run._checkpoint_sync(datastore)
        t0 = time.perf_counter()
        run._theirs_append(recorder, "batch", events, run.BATCH)
        return time.perf_counter() - t0
    finally:
        datastore.close()


def _at(figure: Figure, what: str, events: int) -> Figure:
    return dataclasses.replace(
        figure,
        name=f"{figure.name}, at {events} events",
        label=f"{what} at {events} events",
        notes=f"growth: {figure.notes}",
    )


async def relay_growth_figure(params: run.Params, events: int) -> Figure:
    """The relay's main figure (OutboxRelay draining `events` rows, against the bare producer)."""
    return _at(await run.bench_relay(dataclasses.replace(params, relay=events)), "relay", events)


async def verify_growth_figure(params: run.Params, events: int) -> Figure:
    """The audit's main figure (verification of `events` events, against a bare read)."""
    return _at(await run.bench_verify(dataclasses.replace(params, verify=events)), "verify", events)


async def store_relay_verify_growth(params: run.Params, sizes: Sequence[int]) -> list[Figure]:
    """Append, relay and verify at each size, smallest first."""
    figures: list[Figure] = []
    for events in sorted(sizes):
        figures.append(await append_growth_figure(events))
        figures.append(await relay_growth_figure(params, events))
        figures.append(await verify_growth_figure(params, events))
    return figures
