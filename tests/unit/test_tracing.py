"""Tracing: the W3C trace context survives the outbox row (JSON) and the Kafka headers, the
consumer's span continues the producer's, and log lines carry the trace and span ids."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiokafka import ConsumerRecord
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import shared.logging as logging_module
from shared import tracing
from shared.logging import configure_logging
from shared.settings import LogSettings
from shared.tracing import TracingSettings


@pytest.fixture
def exported(monkeypatch: pytest.MonkeyPatch) -> InMemorySpanExporter:
    """The tracing hooks on a provider of the test's own (the process's global one untouched)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "_tracer", provider.get_tracer("test"))
    return exporter


def record(
    headers: list[tuple[str, bytes]], topic: str = "zm.331123.intake.events"
) -> ConsumerRecord[Any, Any]:
    return ConsumerRecord(
        topic=topic,
        partition=2,
        offset=41,
        timestamp=0,
        timestamp_type=0,
        key=b"case-1",
        value=b"{}",
        checksum=None,
        serialized_key_size=6,
        serialized_value_size=2,
        headers=headers,
    )


def named(exporter: InMemorySpanExporter, kind: SpanKind) -> ReadableSpan:
    [span] = [s for s in exporter.get_finished_spans() if s.kind == kind]
    return span


def test_the_trace_context_survives_the_outbox_row_and_the_kafka_headers(
    exported: InMemorySpanExporter,
) -> None:
    with tracing._tracer.start_as_current_span("POST /reports/{id}/hand-over", kind=SpanKind.SERVER):
        # What the store writes into the outbox row's jsonb headers, and reads back.
        stored = json.loads(json.dumps({"event_type": "ReportHandedOver", **tracing.current_headers()}))
    assert stored["traceparent"].startswith("00-")
    # The relay, later and in another task: a producer span as child of the stored context.
    with tracing.publishing("zm.331123.intake.events", "case-1", stored) as carried:
        kafka = [(k, v.encode()) for k, v in carried.items()]
    assert carried["event_type"] == "ReportHandedOver"
    assert carried["traceparent"] != stored["traceparent"]  # the producer span's own context
    # The consumer in the next service.
    with tracing.consuming("review.handover", record([*kafka, ("zm-message-id", b"e-1")])) as span:
        tracing.outcome(span, "applied")
        passed_on = tracing.current_headers()  # what the reaction's outbox rows would carry

    server = named(exported, SpanKind.SERVER)
    producer = named(exported, SpanKind.PRODUCER)
    consumer = named(exported, SpanKind.CONSUMER)
    trace_id = server.context.trace_id
    assert {s.context.trace_id for s in (server, producer, consumer)} == {trace_id}
    assert producer.parent is not None and producer.parent.span_id == server.context.span_id
    assert consumer.parent is not None and consumer.parent.span_id == producer.context.span_id
    assert consumer.parent.is_remote
    assert consumer.attributes is not None
    assert consumer.attributes["zm.outcome"] == "applied"
    assert consumer.attributes["zm.event_type"] == "ReportHandedOver"
    assert consumer.attributes["messaging.destination.name"] == "zm.331123.intake.events"
    assert passed_on["traceparent"].startswith(f"00-{trace_id:032x}-{consumer.context.span_id:016x}-")
    # The tracing-off path of a record is the same function: a header list, UTF-8 throughout.
    assert all(isinstance(v, bytes) and v.decode() for _, v in kafka)


def test_a_record_without_a_usable_trace_context_starts_a_trace_of_its_own(
    exported: InMemorySpanExporter,
) -> None:
    for headers in ([], [("traceparent", b"\xff\xfe")], [("traceparent", b"not-a-traceparent")]):
        with tracing.consuming("review.handover", record(headers)):
            pass
    spans = exported.get_finished_spans()
    assert len(spans) == 3 and all(s.parent is None for s in spans)
    assert len({s.context.trace_id for s in spans}) == 3


def test_rows_written_outside_any_trace_are_relayed_unchanged(exported: InMemorySpanExporter) -> None:
    assert tracing.current_headers() == {}
    with tracing.publishing("t", "k", {"event_type": "X", "schema_version": 1}) as carried:
        assert carried == {"event_type": "X", "schema_version": "1"}
    assert exported.get_finished_spans() == ()


def test_tracing_is_off_unless_spans_have_somewhere_to_go(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    assert not TracingSettings().on()
    assert TracingSettings(file_dir="/tmp/spans").on()
    assert TracingSettings(otlp_endpoint="http://collector:4318").on()
    assert TracingSettings(enabled=True).on()
    assert not TracingSettings(enabled=False, otlp_endpoint="http://collector:4318").on()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    assert TracingSettings().on()


def test_a_service_process_exports_over_otlp_or_to_its_span_file_or_not_at_all(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert tracing.provider_for("review", TracingSettings()) is None
    otlp = tracing.provider_for("review", TracingSettings(otlp_endpoint="http://127.0.0.1:1"))
    assert otlp is not None
    assert otlp.resource.attributes["service.name"] == "zhengming-review"
    otlp.shutdown()

    provider = tracing.provider_for("archive", TracingSettings(file_dir=tmp_path))
    assert provider is not None
    tracer = provider.get_tracer("test")
    with (
        tracer.start_as_current_span("zm.331123.clarification.events process", kind=SpanKind.CONSUMER),
        tracer.start_as_current_span("SELECT", kind=SpanKind.CLIENT),
    ):
        pass
    with tracer.start_as_current_span("a poll outside any trace", kind=SpanKind.CLIENT):
        pass  # no entry: not sampled, not written
    provider.shutdown()  # flushes the batch held in memory
    [path] = tmp_path.glob("archive-*.jsonl")
    query, consumer = sorted(
        (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()),
        key=lambda s: s["kind"],  # CLIENT, CONSUMER
    )
    assert (consumer["service"], consumer["kind"], consumer["parent_id"]) == (
        "zhengming-archive",
        "CONSUMER",
        None,
    )
    assert (query["kind"], query["parent_id"]) == ("CLIENT", consumer["span_id"])
    assert query["trace_id"] == consumer["trace_id"]


@pytest.fixture
def fresh_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.upper().startswith("ZM_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(logging_module, "_configured", False)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_log_lines_carry_the_trace_and_span_ids(
    exported: InMemorySpanExporter, fresh_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("review", LogSettings(json_output=True))
    log = structlog.get_logger("test")
    log.info("outside.any.trace")
    with tracing.consuming("review.handover", record([])) as span:
        log.info("event.applied")
        logging.getLogger("stdlib").warning("a library's line")
    outside, inside, stdlib = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    ctx = span.get_span_context()
    assert "trace_id" not in outside
    for line in (inside, stdlib):
        assert line["trace_id"] == f"{ctx.trace_id:032x}"
        assert line["span_id"] == f"{ctx.span_id:016x}"
