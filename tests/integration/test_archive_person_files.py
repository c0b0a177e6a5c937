"""一人一档 under a stable person key, on the real PostgreSQL: a file follows a person across units,
namesakes stay apart, two files are merged by an auditable command, and a reported person's ID
number reaches no event, outbox row, read model or response in clear."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import httpx
import pytest

from services.archive.api import build_api as archive_api
from services.archive.main import definition as archive
from services.intake.api import build_api as intake_api
from services.intake.main import definition as intake
from shared.events.clarification import ClarificationFiled, ClarificationPerformed
from shared.events.common import Allegation, Subject
from shared.identity import deployment_id_number_key, id_number_key
from shared.runtime import Runtime
from tests.integration.conftest import fresh_runtime
from tests.integration.test_archive_service import Deliverer, Foreign, auth, foreign

JINYUN = "331122"
CITY = "331100"
POINTS = [Allegation(allegation_id="A1", summary="收受礼金")]


def valid_number(first17: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, weights, strict=True)) % 11]


NUMBER = valid_number("33252619750315003")


def cadre(unit: str, *, name: str = "王某", **extra: Any) -> Subject:
    return Subject.model_validate({"kind": "person", "name": name, "post": "副局长", "unit": unit, **extra})


def filed(jurisdiction: str, k: int, person: Subject, clarified_on: date) -> list[Foreign]:
    """What the archive hears of one clarified matter: the clarification performed and filed."""
    case_id = f"{jurisdiction}-2023-{k:06d}"
    concluded_on = date(2023, 2, 10)

    def at(payload: Any, version: int) -> Foreign:
        return foreign(
            "clarification",
            payload,
            stream_id=f"clarification-{case_id}",
            case_id=case_id,
            jurisdiction=jurisdiction,
            version=version,
        )

    return [
        at(
            ClarificationPerformed(
                performed_on=clarified_on,
                forms=["written_notice"],
                points=POINTS,
                person=person,
                concluded_on=concluded_on,
                on_time=True,
            ),
            3,
        ),
        at(
            ClarificationFiled(
                filed_on=clarified_on,
                person=person,
                points=POINTS,
                forms=["written_notice"],
                concluded_on=concluded_on,
                clarified_on=clarified_on,
            ),
            4,
        ),
    ]


@pytest.fixture
async def runtime() -> AsyncIterator[Runtime]:
    async with fresh_runtime(archive) as rt:
        yield rt


@contextlib.asynccontextmanager
async def client_of(runtime: Runtime, app: Any, name: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{name}") as client:
        yield client


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(runtime, archive_api, "archive") as c:
        yield c


READER = auth("case_management")


async def file_of(client: httpx.AsyncClient, key: str, headers: dict[str, str] = READER) -> dict[str, Any]:
    response = await client.get(f"/files/{key}", headers=headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def test_a_file_follows_the_officer_across_units(runtime: Runtime, client: httpx.AsyncClient) -> None:
    before = cadre("缙云县交通运输局", officer_id="ZZB-2019-0417")
    after = cadre("丽水市发展和改革委员会", officer_id="ZZB-2019-0417")
    assert before.subject_id != after.subject_id
    deliver = Deliverer(runtime)
    await deliver.deliver_all(filed(JINYUN, 1, before, date(2023, 3, 1)))
    await deliver.deliver_all(filed(CITY, 2, after, date(2023, 9, 1)))

    file = await file_of(client, "o-ZZB-2019-0417")
    assert file["person_key"] == "o-ZZB-2019-0417"
    assert [f["unit"] for f in file["filings"]] == ["缙云县交通运输局", "丽水市发展和改革委员会"]
    assert file["unit"] == "丽水市发展和改革委员会"  # as of the latest clarification
    assert len(file["integrity_entries"]) == 2 and len(file["visits"]) == 4
    # Persons clarified count the person once, whatever unit they were in.
    report = (await client.get("/statistics", params={"quarter": "2023Q1"}, headers=READER)).json()
    assert report["total"]["figures"]["persons_clarified"] == 1
    # A county sees only its part of the file.
    county = await file_of(client, "o-ZZB-2019-0417", auth("case_management", JINYUN))
    assert [f["jurisdiction"] for f in county["filings"]] == [JINYUN]


async def test_namesakes_in_one_unit_stay_apart(runtime: Runtime, client: httpx.AsyncClient) -> None:
    first = cadre("缙云县某镇人民政府", officer_id="ZZB-1")
    second = cadre("缙云县某镇人民政府", officer_id="ZZB-2")
    assert first.subject_id == second.subject_id  # the hash of name and unit cannot tell them apart
    deliver = Deliverer(runtime)
    await deliver.deliver_all(filed(JINYUN, 1, first, date(2023, 3, 1)))
    await deliver.deliver_all(filed(JINYUN, 2, second, date(2023, 3, 2)))
    assert [f["case_id"] for f in (await file_of(client, "o-ZZB-1"))["filings"]] == [f"{JINYUN}-2023-000001"]
    assert [f["case_id"] for f in (await file_of(client, "o-ZZB-2"))["filings"]] == [f"{JINYUN}-2023-000002"]


async def test_without_identity_the_file_is_kept_under_the_subject_id(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    plain = cadre("缙云县某镇人民政府")
    await Deliverer(runtime).deliver_all(filed(JINYUN, 1, plain, date(2023, 3, 1)))
    file = await file_of(client, plain.subject_id)
    assert file["person_key"] == file["subject_id"] == plain.subject_id
    assert file["keys"] == [plain.subject_id] and file["merges"] == []


async def merge(
    client: httpx.AsyncClient, key: str, other: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    body = {"other": other, "merged_on": "2023-10-09", "reason": "组织部核实为同一人（干部编号 ZZB-7）"}
    return await client.post(f"/files/{key}/merge", json=body, headers=headers or auth("case_management"))


async def test_two_files_merged_read_as_one_and_the_merge_is_recorded(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    old = cadre("缙云县某镇人民政府")  # reported before the officer id was known
    new = cadre("缙云县林业局", officer_id="ZZB-7")
    deliver = Deliverer(runtime)
    await deliver.deliver_all(filed(JINYUN, 1, old, date(2023, 3, 1)))
    await deliver.deliver_all(filed(JINYUN, 2, new, date(2023, 9, 1)))

    response = await merge(client, "o-ZZB-7", old.subject_id)
    assert response.status_code == 200, response.text
    merged = response.json()
    assert merged["keys"] == sorted(["o-ZZB-7", old.subject_id])
    assert len(merged["filings"]) == 2 and len(merged["visits"]) == 4
    [record] = merged["merges"]
    assert record["merged_by"] == "u-case_management" and record["merged_on"] == "2023-10-09"
    assert "同一人" in record["reason"]
    for key in ("o-ZZB-7", old.subject_id):
        assert (await file_of(client, key))["keys"] == merged["keys"]

    # The event of the archive: who, when, why.
    [event] = [
        e for e in await runtime.pool.fetch("SELECT * FROM events") if e["event_type"] == "FilesMerged"
    ]
    assert event["jurisdiction"] == JINYUN
    recorded = await runtime.store.load(event["stream_id"])
    assert recorded[0].actor.user_id == "u-case_management" and recorded[0].actor.role == "case_management"

    # The same pair again, either way round, is refused; so is a third key already joined.
    for key, other in (("o-ZZB-7", old.subject_id), (old.subject_id, "o-ZZB-7")):
        again = await merge(client, key, other)
        assert again.status_code == 409 and again.json()["code"] == "files_already_merged", again.text
    assert await runtime.pool.fetchval("SELECT count(*) FROM file_merges") == 1


async def test_merges_that_cannot_be(runtime: Runtime, client: httpx.AsyncClient) -> None:
    one = cadre("缙云县某镇人民政府", officer_id="ZZB-8")
    other = cadre("缙云县林业局", officer_id="ZZB-9")
    deliver = Deliverer(runtime)
    await deliver.deliver_all(filed(JINYUN, 1, one, date(2023, 3, 1)))
    await deliver.deliver_all(filed(JINYUN, 2, other, date(2023, 3, 2)))

    itself = await merge(client, "o-ZZB-8", "o-ZZB-8")
    assert itself.status_code == 422 and itself.json()["code"] == "merge_with_itself", itself.text
    missing = await merge(client, "o-ZZB-8", "o-nobody")
    assert missing.status_code == 404 and missing.json()["field"] == "other", missing.text
    # A file outside the caller's jurisdictions does not exist for them.
    elsewhere = await merge(client, "o-ZZB-8", "o-ZZB-9", auth("case_management", "331127"))
    assert elsewhere.status_code == 404, elsewhere.text
    # Merging is case management's command, not the handling department's.
    wrong = await merge(client, "o-ZZB-8", "o-ZZB-9", auth("handling_department"))
    assert wrong.status_code == 403, wrong.text
    await deliver.deliver_all(filed(JINYUN, 3, Subject(kind="unit", name="缙云县林业局"), date(2023, 3, 3)))
    unit = Subject(kind="unit", name="缙云县林业局").subject_id
    mixed = await merge(client, "o-ZZB-8", unit)
    assert mixed.status_code == 422 and mixed.json()["code"] == "merge_person_with_unit", mixed.text
    no_reason = await client.post(
        "/files/o-ZZB-8/merge", json={"other": "o-ZZB-9", "merged_on": "2023-10-09"}, headers=READER
    )
    assert no_reason.status_code == 422
    assert await runtime.pool.fetchval("SELECT count(*) FROM file_merges") == 0


async def rows_containing(runtime: Runtime, text: str) -> list[str]:
    """Every table of the service's schema with a row whose text holds `text`."""
    async with runtime.pool.acquire() as conn:
        tables = await conn.fetch(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        )
        found = []
        for t in tables:
            name = t["table_name"]
            if await conn.fetchval(f'SELECT count(*) FROM "{name}" x WHERE x::text LIKE $1', f"%{text}%"):
                found.append(name)
        return found


async def test_the_id_number_is_keyed_and_never_kept_in_clear(
    runtime: Runtime, client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    reported = {"kind": "person", "name": "周某", "post": "局长", "unit": "缙云县水利局", "id_number": NUMBER}
    body = {
        "jurisdiction": JINYUN,
        "channel": "letter",
        "received_on": "2023-01-16",
        "real_name": False,
        "subjects": [reported],
        "allegations": [{"summary": "违规收受礼金"}],
    }
    office = auth("letters_office", JINYUN)
    async with (
        fresh_runtime(intake) as intake_runtime,
        client_of(intake_runtime, intake_api, "intake") as desk,
    ):
        response = await desk.post("/reports", json=body, headers=office)
        assert response.status_code in (200, 201), response.text
        report_id = response.json()["report_id"]
        answers = [response.text, (await desk.get(f"/reports/{report_id}", headers=office)).text]
        invalid = await desk.post(
            "/reports",
            json={**body, "subjects": [{**reported, "id_number": NUMBER[:-1] + "0"}]},
            headers=office,
        )
        assert invalid.status_code == 422, invalid.text
        answers.append(invalid.text)
        [received] = [e for e in await intake_runtime.store.load(f"report-{report_id}")]
        subject = Subject.model_validate(received.payload["subjects"][0])
        assert await rows_containing(intake_runtime, NUMBER) == []
        assert await rows_containing(intake_runtime, NUMBER[:-1] + "0") == []
    key = id_number_key(NUMBER, deployment_id_number_key())
    assert subject.id_number_key == key and subject.person_key == f"i-{key}"

    # The same person, reported again from another unit with the same number: one file.
    moved = subject.model_copy(update={"unit": "丽水市水利局", "subject_id": "p-moved"})
    deliver = Deliverer(runtime)
    await deliver.deliver_all(filed(JINYUN, 1, subject, date(2023, 3, 1)))
    await deliver.deliver_all(filed(CITY, 2, moved, date(2023, 6, 1)))
    file = await client.get(f"/files/i-{key}", headers=READER)
    assert [f["unit"] for f in file.json()["filings"]] == ["缙云县水利局", "丽水市水利局"]
    answers.append(file.text)
    assert await rows_containing(runtime, NUMBER) == []
    assert all(NUMBER not in answer for answer in answers)
    logged = capsys.readouterr()
    assert NUMBER not in logged.out and NUMBER not in logged.err


async def test_a_merge_reads_only_where_it_was_recorded(runtime: Runtime, client: httpx.AsyncClient) -> None:
    """Jinyun's case management merges a file that also has a city filing: the city's reader keeps
    seeing the city's file alone, without Jinyun's merge, its reason or its officer."""
    city_file = cadre("丽水市某局")
    county_file = cadre("缙云县林业局", officer_id="ZZB-8")
    deliver = Deliverer(runtime)
    await deliver.deliver_all(filed(CITY, 11, city_file, date(2023, 3, 1)))
    await deliver.deliver_all(filed(JINYUN, 12, county_file, date(2023, 9, 1)))
    merged = await merge(client, "o-ZZB-8", city_file.subject_id)
    assert merged.status_code == 200, merged.text
    assert len(merged.json()["merges"]) == 1 and len(merged.json()["filings"]) == 2
    seen_by_city = await file_of(client, city_file.subject_id, headers=auth("case_management", CITY))
    assert seen_by_city["keys"] == [city_file.subject_id] and seen_by_city["merges"] == []
    assert [f["jurisdiction"] for f in seen_by_city["filings"]] == [CITY]
