"""OpenTelemetry: one trace per command, carried through the outbox and Kafka to every consumer
it reaches in the other services, and on through their reactions.

The relay publishes outbox rows later, in a task of its own, so the trace context of the unit of
work is stored with the row: the store adds the W3C `traceparent` (and `tracestate`) of the span
in hand to the outbox row's headers, which the relay sends as Kafka headers. The relay opens a
PRODUCER span per record as child of that stored context and sends the producer span's context
instead; the consumer runner opens a CONSUMER span as its child around settling the message, so
the reaction's events and outbox rows carry the same trace on to the next service.

Propagation is by hand (`opentelemetry.propagate`'s W3C propagator), not FastStream's telemetry
middleware: records are produced by the relay's transactional aiokafka producer, outside the
broker, and the consumer span has to cover the runner's own settling (retries, dead letters,
the manual offset commit) and name its outcome.

Off unless configured (`ZM_TRACING_*`, or the standard OTEL_EXPORTER_OTLP_ENDPOINT): no tracer
provider is installed, nothing is instrumented, and every hook here costs a no-op span.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, Sampler, SamplingResult
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from pydantic_settings import BaseSettings, SettingsConfigDict

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
CARRIED = (TRACEPARENT, TRACESTATE)
"""The headers (outbox row and Kafka record) that carry a trace from one service to the next."""

_propagator = TraceContextTextMapPropagator()
_tracer = trace.get_tracer("zhengming")
_provider: TracerProvider | None = None


class TracingSettings(BaseSettings):
    """Where finished spans go. Nothing set: tracing is off (no provider, no instrumentation)."""

    model_config = SettingsConfigDict(env_prefix="ZM_TRACING_")

    enabled: bool | None = None
    """Force tracing on (trace ids in the logs, nothing exported) or off; by default it is on
    when spans have somewhere to go."""
    otlp_endpoint: str | None = None
    """OTLP/HTTP collector base URL (e.g. http://collector:4318); OTEL_EXPORTER_OTLP_ENDPOINT too."""
    file_dir: Path | None = None
    """Test-only: each process writes its finished spans as JSON lines to
    <dir>/<service>-<pid>.jsonl (buffered in memory, flushed in batches and at exit)."""

    def otlp(self) -> str | None:
        return (
            self.otlp_endpoint
            or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
            or None
        )

    def on(self) -> bool:
        if self.enabled is not None:
            return self.enabled
        return bool(self.otlp() or self.file_dir)


def configure(service: str, settings: TracingSettings | None = None) -> bool:
    """Install this process's tracer provider and the asyncpg instrumentation (statements only,
    never their parameters: personal data travels in them); returns whether tracing is on.
    Idempotent."""
    global _provider
    if _provider is None and (provider := provider_for(service, settings or TracingSettings())):
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

        trace.set_tracer_provider(provider)
        asyncpg_instrumentor = AsyncPGInstrumentor(capture_parameters=False)  # type: ignore[no-untyped-call]
        asyncpg_instrumentor.instrument(tracer_provider=provider)
        _provider = provider
    return _provider is not None


def provider_for(service: str, settings: TracingSettings) -> TracerProvider | None:
    """The tracer provider of one service process (resource service.name = zhengming-<service>)
    with its exporters, or None while tracing is off."""
    if not settings.on():
        return None
    from opentelemetry.sdk.resources import Resource

    provider = TracerProvider(
        resource=Resource.create({"service.name": f"zhengming-{service}", "service.namespace": "zhengming"}),
        sampler=ParentBased(root=_EntriesOnly()),
    )
    if settings.otlp():
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # Without a ZM_ endpoint the exporter reads the OTEL_EXPORTER_OTLP_* variables itself.
        base = settings.otlp_endpoint
        url = None if base is None else base.rstrip("/").removesuffix("/v1/traces") + "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
    if settings.file_dir is not None:
        path = settings.file_dir / f"{service}-{os.getpid()}.jsonl"
        provider.add_span_processor(BatchSpanProcessor(JsonLinesExporter(path), schedule_delay_millis=200))
    return provider


def shutdown() -> None:
    """Flush and stop the exporters (a service's last step)."""
    if _provider is not None:
        _provider.shutdown()


def instrument_app(app: Any) -> None:
    """HTTP server spans for a FastAPI app (a no-op while tracing is off); health probes excluded."""
    if _provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=_provider,
        excluded_urls="/healthz,/readyz,/metrics",
        exclude_spans=["receive", "send"],
    )


def current_headers() -> dict[str, str]:
    """The W3C trace context of the span in hand, as headers to store with an outbox row (empty
    when no span is recording)."""
    carrier: dict[str, str] = {}
    if trace.get_current_span().get_span_context().is_valid:
        _propagator.inject(carrier)
    return carrier


def _extract(headers: Mapping[str, str]) -> Context:
    return _propagator.extract({k: v for k, v in headers.items() if k in CARRIED})


def carries_trace(headers: Mapping[str, Any]) -> bool:
    """Whether an outbox row's headers hold a trace context to continue."""
    return not headers.keys().isdisjoint(CARRIED)


@contextlib.contextmanager
def publishing(topic: str, key: str, headers: Mapping[str, Any]) -> Iterator[dict[str, str]]:
    """A PRODUCER span for one outbox row, child of the context stored with it; yields the row's
    headers (as strings) with the trace context replaced by the producer span's."""
    out = {k: str(v) for k, v in headers.items()}
    if not carries_trace(out):  # rows written untraced (or before tracing): nothing to continue
        yield out
        return
    with _tracer.start_as_current_span(
        f"{topic} publish",
        context=_extract(out),
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.destination.name": topic,
            "messaging.kafka.message.key": key,
        },
    ):
        for name in CARRIED:
            out.pop(name, None)
        out.update(current_headers())
        yield out


def kafka_headers(
    raw: Sequence[tuple[str, bytes | None]] | None, names: Sequence[str] = CARRIED
) -> dict[str, str]:
    """The trace headers of a consumed record (UTF-8; anything else is no trace context)."""
    found: dict[str, str] = {}
    for name, value in raw or ():
        if name in names and value:
            with contextlib.suppress(UnicodeDecodeError):
                found[name] = value.decode()
    return found


@contextlib.contextmanager
def consuming(consumer: str, record: Any) -> Iterator[Span]:
    """A CONSUMER span around settling one record, child of the producer's span when the record
    carries a trace context (else the root of a trace of its own)."""
    headers = kafka_headers(record.headers, (*CARRIED, "event_type"))
    with _tracer.start_as_current_span(
        f"{record.topic} process",
        context=_extract(headers),
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.destination.name": record.topic,
            "messaging.consumer.group.name": consumer,
            "messaging.destination.partition.id": str(record.partition),
            "messaging.kafka.offset": record.offset,
            "zm.event_type": headers.get("event_type", ""),
        },
    ) as span:
        yield span


def outcome(span: Span, status: str) -> None:
    """Name what the runner did with the message on its span."""
    span.set_attribute("zm.outcome", status)
    if status == "dead_letter":
        span.set_status(Status(StatusCode.ERROR, "dead-lettered"))


def log_ids(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: the trace and span ids of the span in hand on every log line."""
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event_dict.setdefault("trace_id", format(ctx.trace_id, "032x"))
        event_dict.setdefault("span_id", format(ctx.span_id, "016x"))
    return event_dict


class _EntriesOnly(Sampler):
    """Root sampler: a trace starts only at an entry (an HTTP request, a consumed message, a
    published row); the database queries of background loops (relay polls, watches, purges)
    outside any trace are dropped instead of each making a trace of one span."""

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Any = None,
        links: Any = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        entry = kind in (SpanKind.SERVER, SpanKind.CONSUMER, SpanKind.PRODUCER)
        return SamplingResult(Decision.RECORD_AND_SAMPLE if entry else Decision.DROP, attributes)

    def get_description(self) -> str:
        return "EntriesOnly"


class JsonLinesExporter(SpanExporter):
    """A SpanExporter writing finished spans as JSON lines (test-only: ZM_TRACING_FILE_DIR); the
    batch processor in front of it keeps them in memory until a batch is flushed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(json.dumps(span_record(s), ensure_ascii=False) + "\n" for s in spans)
        with self._lock, self.path.open("a", encoding="utf-8") as out:
            out.write(lines)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def span_record(span: ReadableSpan) -> dict[str, Any]:
    """One finished (SDK) span as the JSON line the file exporter writes."""
    ctx = span.get_span_context()
    assert ctx is not None
    parent = span.parent
    return {
        "service": span.resource.attributes.get("service.name"),
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": format(ctx.trace_id, "032x"),
        "span_id": format(ctx.span_id, "016x"),
        "parent_id": format(parent.span_id, "016x") if parent is not None else None,
        "remote_parent": bool(parent is not None and parent.is_remote),
        "start": span.start_time,
        "end": span.end_time,
        "status": span.status.status_code.name,
        "attributes": dict(span.attributes or {}),
    }
