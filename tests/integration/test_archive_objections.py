"""The archive's statistics of real-name reporters' objections (异议) on the real PostgreSQL:
lodged (intake's events, by the date lodged) and upheld (review's, by the date examined), fed by
the statistics consumers, redelivery counting nothing more."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import pytest

from services.archive.api import build_api
from services.archive.main import definition
from shared.events.intake import ObjectionLodged
from shared.events.review import ObjectionExamined
from shared.runtime import Runtime
from tests.integration.conftest import fresh_runtime
from tests.integration.test_archive_service import JINGNING, JINYUN, Deliverer, auth, foreign, row


@pytest.fixture
async def runtime() -> AsyncIterator[Runtime]:
    async with fresh_runtime(definition) as rt:
        yield rt


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_api(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://archive") as c:
        yield c


async def test_objections_lodged_and_upheld_are_counted_by_their_dates(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    deliver = Deliverer(runtime)
    events = []
    for jurisdiction, n, lodged_on, examined in [
        (JINYUN, 1, date(2023, 3, 10), (date(2023, 3, 20), True)),
        (JINYUN, 2, date(2023, 3, 28), (date(2023, 4, 6), True)),  # upheld in Q2
        (JINYUN, 3, date(2023, 2, 1), (date(2023, 2, 15), False)),  # not upheld
        (JINYUN, 4, date(2023, 3, 30), None),  # not examined yet
        (JINGNING, 5, date(2023, 1, 20), (date(2023, 2, 1), True)),
    ]:
        case_id = f"{jurisdiction}-2023-0009{n:02d}"
        objection_id = f"{case_id}-OB1"
        events.append(
            foreign(
                "intake",
                ObjectionLodged(
                    objection_id=objection_id, lodged_on=lodged_on, grounds="不服", new_evidence="新证据"
                ),
                stream_id=f"report-{case_id}",
                case_id=case_id,
                jurisdiction=jurisdiction,
                version=6,
            )
        )
        if examined is not None:
            events.append(
                foreign(
                    "review",
                    ObjectionExamined(
                        objection_id=objection_id, examined_on=examined[0], upheld=examined[1], reason="理由"
                    ),
                    stream_id=f"verification-{case_id}",
                    case_id=case_id,
                    jurisdiction=jurisdiction,
                    version=8,
                )
            )
    for event in events:
        assert "applied" in await deliver.deliver(event)
        await deliver.deliver(event)  # a second delivery counts nothing more

    async def figures(quarter: str, jurisdiction: str) -> dict[str, Any]:
        report = (
            await client.get(
                "/statistics",
                params={"quarter": quarter, "jurisdiction": jurisdiction},
                headers=auth("auditor"),
            )
        ).json()
        found: dict[str, Any] = row(report, jurisdiction)["figures"]
        return found

    q1, q2 = await figures("2023Q1", JINYUN), await figures("2023Q2", JINYUN)
    assert (q1["objections"], q1["objections_upheld"]) == (4, 1)
    assert (q2["objections"], q2["objections_upheld"]) == (0, 1)
    jingning = await figures("2023Q1", JINGNING)
    assert (jingning["objections"], jingning["objections_upheld"]) == (1, 1)
    city = (await client.get("/statistics", params={"quarter": "2023Q1"}, headers=auth("auditor"))).json()
    assert (city["total"]["figures"]["objections"], city["total"]["figures"]["objections_upheld"]) == (5, 2)

    spec = (await client.get("/openapi.json")).json()["components"]["schemas"]["Figures"]["properties"]
    assert "异议" in spec["objections"]["description"] and "Objections" in spec["objections"]["description"]
    assert "异议成立" in spec["objections_upheld"]["description"]
    assert "upheld" in spec["objections_upheld"]["description"]
