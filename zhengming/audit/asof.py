"""Time travel: read models rebuilt from the stores with every event up to an instant."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import asyncpg

from services.definitions import definition_of
from shared import settings
from shared.db import create_pool
from shared.envelope import JURISDICTIONS, EventEnvelope
from shared.settings import SERVICES
from shared.store import _COLUMNS, row_to_envelope
from zhengming.audit.replays import (
    Replayer,
    drop_schema,
    fresh_schema,
    has_column,
    read_model_tables,
)


async def as_of(instant: datetime, services: Iterable[str] = SERVICES) -> dict[str, str]:
    """Rebuild the read models of `services` from the stores with every event whose business
    time is at or before `instant`; returns the scratch schema of each (drop them when done)."""
    schemas: dict[str, str] = {}
    for service in services:
        schema = await fresh_schema(service, "asof")
        pool = await create_pool(settings.postgres(), schema, min_size=1, max_size=2)
        try:
            replayer = Replayer(service, pool)
            for context in replayer.contexts():
                source = await create_pool(settings.postgres(), context, min_size=1, max_size=2)
                try:
                    async with source.acquire() as conn, conn.transaction(isolation="repeatable_read"):
                        cursor = conn.cursor(
                            f"SELECT {_COLUMNS} FROM events WHERE occurred_at <= $1 ORDER BY global_position",
                            instant,
                            prefetch=2000,
                        )
                        chunk: list[EventEnvelope] = []
                        async for row in cursor:
                            chunk.append(row_to_envelope(row))
                            if len(chunk) >= 1000:
                                await replayer.apply_batch(chunk)
                                chunk = []
                        if chunk:
                            await replayer.apply_batch(chunk)
                finally:
                    await source.close()
        finally:
            await pool.close()
        schemas[service] = schema
    return schemas


CASE_COLUMNS = ("case_id", "report_id", "matter_id")


async def rows_about(schema: str, column_values: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Rows of every table of `schema` whose column equals the given value (the first column of
    `column_values` each table has)."""
    conn = await asyncpg.connect(settings.postgres().dsn())
    try:
        out: dict[str, list[dict[str, Any]]] = {}
        service = schema.split("_asof_")[0]
        exclude = set(definition_of(service).replay_exclude)
        for table in await read_model_tables(conn, schema, exclude):
            for column, value in column_values.items():
                if await has_column(conn, schema, table, column):
                    rows = await conn.fetch(
                        f"SELECT to_jsonb(t)::text AS row FROM {schema}.{table} t WHERE t.{column} = $1",
                        value,
                    )
                    if rows:
                        out[table] = [json.loads(r["row"]) for r in rows]
                    break
        return out
    finally:
        await conn.close()


async def time_travel(
    instant: datetime,
    *,
    case: str | None = None,
    person: str | None = None,
    quarter: str | None = None,
    jurisdiction: str | None = None,
) -> dict[str, Any]:
    """Read models rebuilt from every event up to `instant`, then the rows asked for."""
    services = list(SERVICES) if case else ["archive"]
    schemas = await as_of(instant, services)
    try:
        if case is not None:
            return {
                "as_of": instant.isoformat(),
                "case_id": case,
                **{
                    s: await rows_about(schema, {c: case for c in CASE_COLUMNS})
                    for s, schema in schemas.items()
                },
            }
        if person is not None:
            return {
                "as_of": instant.isoformat(),
                "subject_id": person,
                "archive": await rows_about(schemas["archive"], {"subject_id": person}),
            }
        assert quarter is not None
        from services.archive import views
        from services.archive.domain import parse_quarter

        period = parse_quarter(quarter)
        codes = [jurisdiction] if jurisdiction else sorted(JURISDICTIONS)
        pool = await create_pool(settings.postgres(), schemas["archive"], min_size=1, max_size=1)
        try:
            async with pool.acquire() as conn:
                facts = await views.quarter_facts(conn, codes, period)
        finally:
            await pool.close()
        report = views.statistics_report(period, facts, rows_for=codes, city_wide=jurisdiction is None)
        return {"as_of": instant.isoformat(), "statistics": report.model_dump(mode="json")}
    finally:
        for schema in schemas.values():
            await drop_schema(schema)


def noon_before(day: Any) -> datetime:
    """The instant just before the business time of `day` (events of a day are at noon, China time)."""
    from datetime import time as clock

    from shared.events.common import BUSINESS_TZ

    return datetime.combine(day, clock(11, 59), tzinfo=BUSINESS_TZ)
