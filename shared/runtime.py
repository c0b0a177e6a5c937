"""Service runtime: one composition of pool, event store, relay, broker, consumers and HTTP app
per process, plus the unit of work that command and reaction handlers run in."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from faststream.kafka import KafkaBroker
from pydantic import BaseModel

from shared import checkpoint, idempotency, settings, signing
from shared.audit_api import add_audit_routes
from shared.consumer import EventConsumer
from shared.crypto import FieldCipher, load_master_key
from shared.db import Conn, acquired, create_pool, migrate, service_migrations
from shared.envelope import JURISDICTIONS, Actor, EventEnvelope
from shared.events import registry
from shared.events.common import business_time
from shared.kafka_security import broker_security
from shared.logging import configure_logging, get_logger
from shared.outbox import OutboxRelay
from shared.settings import AuditSettings, CryptoSettings, IdempotencySettings, RelaySettings
from shared.store import EventStore, NewEvent
from shared.topics import CHECKPOINTS_TOPIC

log = get_logger(__name__)

Projector = Callable[[Conn, EventEnvelope, BaseModel], Awaitable[None]]
"""Updates read models for one event, inside the transaction that applies it."""

SYSTEM_ROLE = "system"


def system_actor(service: str) -> Actor:
    """The actor of events a service records in reaction to another service's event."""
    return Actor(user_id=f"system:{service}", role=SYSTEM_ROLE, unit=f"zhengming {service}")


class UnitOfWork:
    """One transaction: load streams, record new events (and their outbox rows), project them."""

    def __init__(self, store: EventStore, conn: Conn, projector: Projector | None) -> None:
        self.store = store
        self.conn = conn
        self.projector = projector
        self.recorded: list[EventEnvelope] = []
        self._last_occurred: dict[str, datetime] = {}

    async def load(self, stream_id: str) -> list[tuple[EventEnvelope, BaseModel]]:
        """A stream's events with their typed (upcast) payloads, in version order."""
        events = await self.store.load_in(self.conn, stream_id)
        if events:
            self._last_occurred[stream_id] = events[-1].occurred_at
        return [(e, registry.decode(e)) for e in events]

    async def record(
        self,
        stream_id: str,
        expected_version: int,
        payloads: Sequence[BaseModel],
        *,
        case_id: str,
        jurisdiction: str,
        actor: Actor,
        correlation_id: uuid.UUID,
        causation_id: uuid.UUID | None = None,
    ) -> list[EventEnvelope]:
        new = []
        for payload in payloads:
            event_type, version, body = registry.encode(payload)
            # A step without a date of its own happened when the stream's previous step did.
            occurred = business_time(payload) or self._last_occurred.get(stream_id) or datetime.now(UTC)
            self._last_occurred[stream_id] = occurred
            new.append(NewEvent(event_type, version, body, occurred_at=occurred))
        envelopes = await self.store.append(
            stream_id,
            expected_version,
            new,
            case_id=case_id,
            jurisdiction=jurisdiction,
            actor=actor,
            correlation_id=correlation_id,
            causation_id=causation_id,
            conn=self.conn,
        )
        if self.projector is not None:
            for envelope, payload in zip(envelopes, payloads, strict=True):
                await self.projector(self.conn, envelope, payload)
        self.recorded.extend(envelopes)
        return envelopes

    async def publish(self, *, topic: str, key: str, message: BaseModel) -> None:
        """An outbound integration message, sent when (and only if) this unit of work commits."""
        await self.store.enqueue_integration(
            self.conn,
            topic=topic,
            key=key,
            body=message.model_dump_json().encode(),
            message_id=uuid.uuid4(),
        )


@dataclass
class ConsumerSpec:
    """A consumer a service runs: a name (inbox and group), what it reads, how it applies."""

    name: str
    apply: Callable[[Conn, EventEnvelope, BaseModel], Awaitable[None]]
    pattern: str
    consumer_class: type[EventConsumer] = EventConsumer
    # The event types the apply acts on; others are acknowledged without a database round trip
    # (still decoded and checked, so poison still goes to the dead-letter topic). None: all.
    event_types: frozenset[str] | None = None


@dataclass
class Runtime:
    """Everything one service process holds."""

    service: str
    pool: asyncpg.Pool
    store: EventStore
    cipher: FieldCipher
    jurisdictions: list[str]
    projector: Projector | None = None
    broker: KafkaBroker | None = None
    consumers: list[EventConsumer] = field(default_factory=list)
    broker_started: bool = False

    @contextlib.asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[UnitOfWork]:
        async with acquired(self.pool) as conn, conn.transaction():
            yield UnitOfWork(self.store, conn, self.projector)

    def unit_of_work_on(self, conn: Conn) -> UnitOfWork:
        """A unit of work inside a transaction someone else opened (a consumer's)."""
        return UnitOfWork(self.store, conn, self.projector)


@dataclass
class ServiceDefinition:
    """What a service's composition root hands to `serve`."""

    name: str
    build_api: Callable[[Runtime], FastAPI]
    consumers: Callable[[Runtime], list[ConsumerSpec]] = lambda _: []
    projector: Projector | None = None
    on_start: Callable[[Runtime], Awaitable[None]] | None = None


def served_jurisdictions() -> list[str]:
    configured = settings.services().jurisdictions
    return [j for j in JURISDICTIONS if not configured or j in configured]


async def open_runtime(definition: ServiceDefinition, *, schema: str | None = None) -> Runtime:
    """Pool (schema migrated), store and cipher; no broker yet (tests use this directly)."""
    name = definition.name
    schema = schema or name
    conn = await asyncpg.connect(settings.postgres().dsn())
    try:
        await migrate(conn, schema, service_migrations(name))
    finally:
        await conn.close()
    pool = await create_pool(settings.postgres(), schema)
    return Runtime(
        service=name,
        pool=pool,
        store=EventStore(pool, schema=schema, context=name),
        cipher=FieldCipher(load_master_key(CryptoSettings())),
        jurisdictions=served_jurisdictions(),
        projector=definition.projector,
    )


def add_health_routes(app: FastAPI, runtime: Runtime) -> None:
    @app.get("/healthz", tags=["health"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": runtime.service}

    @app.get("/readyz", tags=["health"], summary="The database and the broker answer")
    async def readyz() -> JSONResponse:
        checks: dict[str, Any] = {}
        try:
            checks["database"] = await asyncio.wait_for(runtime.pool.fetchval("SELECT 1"), 3) == 1
        except Exception:
            checks["database"] = False
        checks["broker"] = runtime.broker_started
        # A consumer that stopped on a message it could not settle holds its partition back.
        stopped = {c.name: c.failure for c in runtime.consumers if c.failure is not None}
        checks["consumers"] = not stopped
        ok = all(checks.values())
        body: dict[str, Any] = {"ready": ok, "checks": checks}
        if stopped:
            body["stopped_consumers"] = stopped
        return JSONResponse(body, status_code=200 if ok else 503)


def served_app(
    definition: ServiceDefinition, runtime: Runtime, keys: IdempotencySettings | None = None
) -> FastAPI:
    """The HTTP application a service process serves (tests serve the very same in-process)."""
    app = definition.build_api(runtime)
    idempotency.install(app, runtime.pool, keys or IdempotencySettings())
    add_health_routes(app, runtime)
    add_audit_routes(app, runtime)
    return app


async def publish_checkpoints(runtime: Runtime, stop: asyncio.Event) -> None:
    """Every interval, when the store has grown, publish a signed checkpoint of every stream head."""
    interval = AuditSettings().checkpoint_interval_s
    key = signing.service_key(runtime.service)
    deployment = settings.services().group_prefix
    producer = checkpoint.make_checkpoint_producer(settings.kafka())
    last = -1
    started = False
    try:
        while not stop.is_set():
            try:
                if not started:
                    await producer.start()
                    started = True
                async with runtime.pool.acquire() as conn:
                    count = await conn.fetchval("SELECT count(*) FROM events")
                    if count != last:
                        taken = await checkpoint.take(
                            conn, runtime.service, key.private, deployment, key.key_id
                        )
                        await producer.send_and_wait(
                            CHECKPOINTS_TOPIC,
                            taken.model_dump_json().encode(),
                            key=f"{deployment}/{runtime.service}".encode(),
                        )
                        last = count
                        log.info("checkpoint.published", events=count, root=taken.merkle_root)
            except Exception as exc:  # the next round tries again; a missed checkpoint loses nothing
                log.warning("checkpoint.failed", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
    finally:
        if started:
            await producer.stop()


class _Server(uvicorn.Server):
    """uvicorn that takes SIGINT/SIGTERM as a request to stop and does not re-raise the signal
    afterwards (it would kill the process before the consumers, relay and pool shut down)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        original = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


async def serve(definition: ServiceDefinition) -> None:
    """Run one service until SIGINT/SIGTERM: HTTP API, consumers and outbox relay."""
    configure_logging(definition.name)
    runtime = await open_runtime(definition)
    kafka = settings.kafka()
    # Pattern subscriptions learn of new topics at each metadata refresh: keep it short.
    runtime.broker = KafkaBroker(
        kafka.bootstrap,
        logger=None,
        enable_idempotence=True,
        metadata_max_age_ms=15_000,
        security=broker_security(kafka),
    )
    for spec in definition.consumers(runtime):
        consumer = spec.consumer_class(
            spec.name, runtime.pool, registry, spec.apply, event_types=spec.event_types
        )
        consumer.subscribe(
            runtime.broker, pattern=spec.pattern, group_id=settings.services().group_id(spec.name)
        )
        runtime.consumers.append(consumer)
    relay = OutboxRelay(
        runtime.pool,
        kafka,
        schema=definition.name,
        settings=RelaySettings(),
        deployment=settings.services().group_prefix,
    )
    stop = asyncio.Event()
    relay_task = asyncio.create_task(relay.run(stop))
    await runtime.broker.start()
    runtime.broker_started = True
    if definition.on_start is not None:
        await definition.on_start(runtime)
    checkpoints = asyncio.create_task(publish_checkpoints(runtime, stop))
    keys = IdempotencySettings()
    purging = asyncio.create_task(idempotency.purge_periodically(runtime.pool, stop, keys))
    app = served_app(definition, runtime, keys)
    svc = settings.services()
    server = _Server(
        uvicorn.Config(
            app,
            host=svc.host,
            port=svc.port(definition.name),
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_keep_alive=svc.keep_alive_s,
        )
    )
    log.info("service.start", url=svc.url(definition.name), jurisdictions=runtime.jurisdictions)
    try:
        await server.serve()
    finally:
        log.info("service.stopping")
        await runtime.broker.stop()  # finishes the message in hand, commits nothing beyond it
        stop.set()
        await relay_task
        await checkpoints
        await purging
        await runtime.pool.close()
        log.info("service.stopped")
