"""Archive's count of conclusions with an untrue point: one per matter, whatever its revisions
(the check and the insert are one statement)."""

from __future__ import annotations

from datetime import date

from services.archive.main import definition as archive
from services.archive.projections import note_conclusion
from shared.events.common import Allegation
from shared.events.review import VerificationConcluded
from tests.integration.conftest import fresh_runtime
from tests.integration.test_clarification_service import PERSON, envelope

J = "331122"


def concluded(revision: int, on: date) -> VerificationConcluded:
    return VerificationConcluded(
        concluded_on=on,
        received_on=date(2023, 1, 5),
        findings={"A1": "untrue"},
        untrue_points=[Allegation(allegation_id="A1", summary="收受礼金")],
        subjects=[PERSON],
        eligible_for_pool=True,
        revision=revision,
    )


async def test_a_matter_is_counted_once_and_a_revision_first_seen_counts() -> None:
    async with fresh_runtime(archive) as rt:
        first, again = f"{J}-2023-000801", f"{J}-2023-000802"
        async with rt.pool.acquire() as conn:
            for case_id, payloads in (
                (first, [concluded(0, date(2023, 2, 1)), concluded(1, date(2023, 3, 1))]),
                (again, [concluded(1, date(2023, 4, 1))]),
            ):
                for payload in payloads:
                    env = envelope(payload, stream=f"verification-{case_id}", case_id=case_id)
                    await note_conclusion(conn, env, payload)
                    await note_conclusion(conn, env, payload)  # a second copy changes nothing
            rows = await conn.fetch("SELECT case_id, concluded_on FROM stat_conclusions ORDER BY case_id")
        assert [(r["case_id"], r["concluded_on"]) for r in rows] == [
            (first, date(2023, 2, 1)),
            (again, date(2023, 4, 1)),
        ]
