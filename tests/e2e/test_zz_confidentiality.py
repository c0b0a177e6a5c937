"""Runs after the workflow tests (file order): the reporters' names of the whole run must be absent
from every Kafka message, service log line, document and response to anyone but the intake role."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared import settings
from tests.e2e.conftest import TRANSCRIPT
from zhengming.client import Client


def _leaks(text: str) -> set[str]:
    """The reporters' names in `text`, and any reported person's ID number (never shown to anyone)."""
    return {secret for secret in TRANSCRIPT.reporter_names | TRANSCRIPT.id_numbers if secret in text}


async def test_no_reported_person_s_id_number_in_any_response() -> None:
    assert TRANSCRIPT.id_numbers, "the workflow tests must report a person with an ID number first"
    for r in TRANSCRIPT.responses:
        assert not any(n in r.body for n in TRANSCRIPT.id_numbers), f"{r.method} {r.service}{r.path}"


async def test_reporter_names_were_used_and_shown_to_the_intake_role_only() -> None:
    assert len(TRANSCRIPT.reporter_names) >= 10, "the workflow tests must run first in this session"
    shown = [r for r in TRANSCRIPT.responses if r.service == "intake" and r.role == "letters_office"]
    # Positive control: the search does find names where they may be.
    assert any(_leaks(r.body) for r in shown)
    for r in TRANSCRIPT.responses:
        if r.service == "intake" and r.role == "letters_office":
            continue
        assert not _leaks(r.body), f"{r.method} {r.service}{r.path} as {r.role} showed a reporter"


async def test_no_reporter_name_in_any_kafka_message() -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka().bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        topics = sorted(t for t in await consumer.topics() if t.startswith("zm."))
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka().bootstrap)
        await admin.start()
        try:
            described = await admin.describe_topics(topics)
        finally:
            await admin.close()
        partitions = [TopicPartition(d["topic"], p["partition"]) for d in described for p in d["partitions"]]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp, end in ends.items() if end > 0}
        scanned = 0
        while remaining:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10000)
            if not batch:
                break
            for tp, records in batch.items():
                for record in records:
                    scanned += 1
                    text = (record.value or b"").decode("utf-8", errors="replace")
                    headers = " ".join(v.decode("utf-8", "replace") for _, v in record.headers)
                    assert not _leaks(text + headers), f"reporter name on {tp.topic}"
                if records and records[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    assert scanned > 0


async def test_no_reporter_name_in_any_service_log() -> None:
    logs = sorted(settings.local().logs.glob("*.log"))
    assert logs
    for path in logs:
        assert not _leaks(path.read_text(encoding="utf-8", errors="replace")), f"reporter name in {path}"


async def test_no_reporter_name_in_any_document(client: Client) -> None:
    documents = 0
    for case_id in sorted(TRANSCRIPT.case_ids):
        j = case_id.split("-")[0]
        found = await client.get_if(
            "clarification", f"/clarifications/{case_id}", role="auditor", jurisdiction=j
        )
        for doc in (found or {}).get("documents", []):
            text = (
                await client.request(
                    "GET",
                    "clarification",
                    f"/clarifications/{case_id}/documents/{doc['doc_id']}",
                    role="auditor",
                    jurisdiction=j,
                )
            ).text
            documents += 1
            assert not _leaks(text), f"reporter name in document {doc['doc_id']}"
    assert documents >= 3
