"""Service runtime: one composition of pool, event store, relay, broker, consumers and HTTP app
per process, plus the unit of work that command and reaction handlers run in."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import asyncpg
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from faststream.kafka import KafkaBroker
from pydantic import BaseModel

from shared import checkpoint, idempotency, metrics, ops_api, public, settings, signing, tracing
from shared.aggregate import Aggregate
from shared.audit_api import add_audit_routes
from shared.auth import Principal
from shared.auth_api import add_auth_routes
from shared.bounded import today as business_today
from shared.consumer import EventConsumer
from shared.crypto import FieldCipher, load_master_key
from shared.db import Conn, acquired, create_pool, migrate, service_migrations, transactions_only
from shared.directory import Directory
from shared.envelope import JURISDICTIONS, Actor, EventEnvelope
from shared.errors import ConcurrencyError
from shared.events import registry
from shared.events.common import business_time
from shared.http import CommandContext
from shared.kafka_security import broker_security
from shared.logging import configure_logging, get_logger
from shared.openapi import install as document_api
from shared.ops_api import ConsumerState, add_ops_routes
from shared.outbox import OutboxRelay
from shared.settings import AuditSettings, CryptoSettings, IdempotencySettings, RelaySettings
from shared.store import EventStore, Head, NewEvent
from shared.topics import CHECKPOINTS_TOPIC, events_pattern
from shared.workdays import covered

log = get_logger(__name__)

Projector = Callable[[Conn, EventEnvelope, BaseModel], Awaitable[None]]
"""Updates read models for one event, inside the transaction that applies it."""

SYSTEM_ROLE = "system"

T = TypeVar("T")
C = TypeVar("C")
A = TypeVar("A", bound=Aggregate)


def system_actor(service: str) -> Actor:
    """The actor of events a service records in reaction to another service's event."""
    return Actor(user_id=f"system:{service}", role=SYSTEM_ROLE, unit=f"zhengming {service}")


Handler = Callable[["UnitOfWork", C], Awaitable[T]]
"""What a command (or a reaction, given the foreign event) does in its unit of work."""

ATTEMPTS = 5
"""How often a unit of work runs before a conflict or a deadlock it keeps losing is the caller's."""
RETRIED: tuple[type[Exception], ...] = (ConcurrencyError, asyncpg.DeadlockDetectedError)


@dataclass(frozen=True)
class Cause:
    """Why a unit of work records: who (the actor), in which conversation, reacting to which
    event; `principal` is the caller of a command (None in a reaction, which sees everything)."""

    actor: Actor
    correlation_id: uuid.UUID
    causation_id: uuid.UUID | None = None
    principal: Principal | None = None

    @classmethod
    def of_command(cls, ctx: CommandContext) -> Cause:
        return cls(ctx.principal.actor(), ctx.correlation_id, principal=ctx.principal)

    @classmethod
    def of_reaction(cls, service: str, envelope: EventEnvelope, actor: Actor | None = None) -> Cause:
        return cls(actor or system_actor(service), envelope.correlation_id, envelope.event_id)


def evolved(aggregate: A, events: Sequence[tuple[EventEnvelope, BaseModel]]) -> A:
    """The (empty) aggregate brought to the state its stream's events leave it in."""
    for _, payload in events:
        aggregate.evolve(payload)
    aggregate.version = len(events)
    if events:
        aggregate.jurisdiction = events[0][0].jurisdiction
    return aggregate


class UnitOfWork:
    """One transaction: get aggregates (their case locked), save what they decided (events,
    outbox rows, projections), publish integration messages; all commit or none does.

    Lock policy, the same for the four services: `get` takes the case's transaction lock before
    it reads the stream, so every writer of a case (a command, a reaction, two consumers) waits
    its turn and decides on the state the previous one left; it is the lock the store takes for
    the case's outbox order, so a case costs one lock. A unit of work spanning several cases can
    still meet another in the opposite order: PostgreSQL breaks the deadlock and the loser runs
    again (`Runtime.command`, `Runtime.react`), as it does on a version conflict.

    The lock and the read are one round trip (`EventStore.load_locked`), and the loaded stream's
    last event is the head `save` hands the store: it neither locks again nor reads the head again."""

    def __init__(
        self,
        store: EventStore,
        conn: Conn,
        projector: Projector | None,
        cause: Cause,
        cipher: FieldCipher | None = None,
    ) -> None:
        self.store = store
        self.conn = conn
        self._cipher = cipher
        self.projector = projector
        self.cause = cause
        self.recorded: list[EventEnvelope] = []
        self._last_occurred: dict[str, datetime] = {}
        self._locked: set[str] = set()
        """The cases whose lock this transaction holds."""
        self._heads: dict[str, Head] = {}
        """Each stream's head as read (or written) under its case's lock in this transaction."""

    @property
    def cipher(self) -> FieldCipher:
        """The service's field cipher (sealing and opening personal data in this transaction)."""
        if self._cipher is None:
            raise RuntimeError("this unit of work has no cipher")
        return self._cipher

    async def load(self, stream_id: str) -> list[tuple[EventEnvelope, BaseModel]]:
        """A stream's events with their typed (upcast) payloads, in version order."""
        return self._decoded(stream_id, await self.store.load_in(self.conn, stream_id))

    def _decoded(self, stream_id: str, events: list[EventEnvelope]) -> list[tuple[EventEnvelope, BaseModel]]:
        if events:
            self._last_occurred[stream_id] = events[-1].occurred_at
        return [(e, registry.decode(e)) for e in events]

    async def get(self, aggregate: A) -> A:
        """Lock the aggregate's case, load its stream and evolve the (empty) aggregate to its state."""
        stream_id, case_id = aggregate.stream_id, aggregate.case_id
        if case_id in self._locked:
            events = await self.store.load_in(self.conn, stream_id)
        else:
            events = await self.store.load_locked(self.conn, stream_id, case_id)
            self._locked.add(case_id)
        self._heads[stream_id] = Head.of(events)
        return evolved(aggregate, self._decoded(stream_id, events))

    async def get_visible(self, aggregate: A) -> A:
        """`get`, and 404 when the stream does not exist or lies outside the caller's jurisdictions."""
        await self.get(aggregate)
        principal = self.cause.principal
        if not aggregate.exists or (principal is not None and not aggregate.visible_to(principal)):
            raise aggregate.missing()
        return aggregate

    async def save(
        self, aggregate: Aggregate, events: Sequence[BaseModel], *, causation_id: uuid.UUID | None = None
    ) -> list[EventEnvelope]:
        """Append what the aggregate decided after the version it was loaded at, project it and
        evolve the aggregate; a stream another writer moved meanwhile raises ConcurrencyError."""
        if not events:
            return []
        if not aggregate.jurisdiction:
            raise ValueError(f"{aggregate.stream_id}: a new stream needs its jurisdiction")
        envelopes = await self._append(aggregate, events, causation_id or self.cause.causation_id)
        for event in events:
            aggregate.evolve(event)
        aggregate.version += len(events)
        return envelopes

    async def _append(
        self, aggregate: Aggregate, payloads: Sequence[BaseModel], causation_id: uuid.UUID | None
    ) -> list[EventEnvelope]:
        stream_id = aggregate.stream_id
        new = []
        for payload in payloads:
            event_type, version, body = registry.encode(payload)
            # A step without a date of its own happened when the stream's previous step did.
            occurred = business_time(payload) or self._last_occurred.get(stream_id) or datetime.now(UTC)
            self._last_occurred[stream_id] = occurred
            new.append(NewEvent(event_type, version, body, occurred_at=occurred))
        envelopes = await self.store.append(
            stream_id,
            aggregate.version,
            new,
            case_id=aggregate.case_id,
            jurisdiction=aggregate.jurisdiction,
            actor=self.cause.actor,
            correlation_id=self.cause.correlation_id,
            causation_id=causation_id,
            conn=self.conn,
            head=self._heads.get(stream_id),
            locked=aggregate.case_id in self._locked,
        )
        # The store took the case's lock if this transaction did not hold it yet.
        self._locked.add(aggregate.case_id)
        self._heads[stream_id] = Head.of(envelopes)
        if self.projector is not None:
            for envelope, payload in zip(envelopes, payloads, strict=True):
                await self.projector(self.conn, envelope, payload)
        self.recorded.extend(envelopes)
        return envelopes

    async def publish(self, *, topic: str, key: str, message: BaseModel) -> None:
        """An outbound integration message, sent when (and only if) this unit of work commits; on a
        public topic with CloudEvents, hash and signature headers (shared/public.py)."""
        body = message.model_dump_json().encode()
        headers = None
        if public.is_public(topic):
            headers = public.public_headers(
                topic=topic, key=key, body=body, contract=type(message), signer=self.store.signer
            )
        await self.store.enqueue_integration(
            self.conn, topic=topic, key=key, body=body, message_id=uuid.uuid4(), headers=headers
        )


@dataclass
class Decided(Generic[A]):
    """What a decision left: the aggregate in its new state, the events it decided, as recorded."""

    state: A
    events: list[BaseModel]
    recorded: list[EventEnvelope]

    @property
    def last(self) -> BaseModel:
        return self.events[-1]


def decision(aggregate: A, decide: Callable[[A, C], Sequence[BaseModel]]) -> Handler[C, Decided[A]]:
    """The common handler: get one aggregate (visible to a command's caller), let it decide on
    the command (in a reaction, on the foreign event), save what it decided."""

    async def handle(uow: UnitOfWork, command: C) -> Decided[A]:
        fresh = copy.deepcopy(aggregate)  # a run that lost a race starts from the empty state again
        state = await (uow.get(fresh) if uow.cause.principal is None else uow.get_visible(fresh))
        events = list(decide(state, command))
        recorded = await uow.save(state, events)
        return Decided(state, events, recorded)

    return handle


Reaction = Callable[["Runtime", Conn, EventEnvelope, Any], Awaitable[None]]
"""What a service does with one foreign event, on the consumer's transaction."""


@dataclass(frozen=True)
class Subscription:
    """A consumer a service runs: its name (inbox, consumer group, dead-letter topic), the topics
    it reads (a pattern over the served jurisdictions) and the event types it reacts to, each with
    its reaction. Events of other types are skipped on their `event_type` header, unread, and
    their offsets committed with the next batch (shared/consumer.py)."""

    name: str
    topics: Callable[[Sequence[str]], str]
    reactions: Mapping[type[BaseModel], Reaction]
    consumer_class: type[EventConsumer] = EventConsumer

    @property
    def event_types(self) -> frozenset[str] | None:
        """The registered event types reacted to; None when the topic carries no domain events."""
        if not all(registry.knows_model(model) for model in self.reactions):
            return None
        return frozenset(registry.type_of(model) for model in self.reactions)


@dataclass(frozen=True)
class EventsOf:
    """The topics of a context's domain events in the served jurisdictions (a pattern)."""

    context: str

    def __call__(self, jurisdictions: Sequence[str]) -> str:
        return events_pattern(self.context, list(jurisdictions))


def events_of(context: str) -> EventsOf:
    """The topics of a context's domain events in the served jurisdictions."""
    return EventsOf(context)


Update = Callable[[Conn, EventEnvelope, Any], Awaitable[None]]
"""One read model's update for one event type."""


class ReadModels:
    """One projector out of a table of read-model updates by event type; `event_types` names the
    types it does anything with (replay skips the others unread, on their header)."""

    def __init__(self, updates: Mapping[type[BaseModel], Update]) -> None:
        self.updates = dict(updates)
        self.event_types = frozenset(registry.type_of(model) for model in updates)

    async def __call__(self, conn: Conn, envelope: EventEnvelope, payload: BaseModel) -> None:
        update = self.updates.get(type(payload))
        if update is not None:
            await update(conn, envelope, payload)


def read_models(updates: Mapping[type[BaseModel], Update]) -> ReadModels:
    """One projector out of a table of read-model updates by event type."""
    return ReadModels(updates)


def read_model(update: Update) -> Reaction:
    """A reaction that only updates a read model (replay runs the same function)."""

    async def react(_: Runtime, conn: Conn, envelope: EventEnvelope, payload: Any) -> None:
        await update(conn, envelope, payload)

    return react


@dataclass
class ConsumerSpec:
    """A subscription bound to a runtime: what `serve` subscribes (and tests apply directly)."""

    name: str
    apply: Callable[[Conn, EventEnvelope, BaseModel], Awaitable[None]]
    pattern: str
    consumer_class: type[EventConsumer] = EventConsumer
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
    consumer_states: tuple[datetime, list[ConsumerState]] | None = None
    """Each consumer's lag and dead letters as the operations watch last saw them (and when)."""
    checkpoint_at: datetime | None = None
    """When this process last published a signed checkpoint (for /metrics)."""

    @contextlib.asynccontextmanager
    async def unit_of_work(self, cause: Cause) -> AsyncIterator[UnitOfWork]:
        """One transaction on a connection of the pool (queries that must not retry use it)."""
        async with acquired(self.pool) as conn:
            async with conn.transaction():
                yield UnitOfWork(self.store, conn, self.projector, cause, self.cipher)
            transactions_only(conn)  # not inside a request's transaction (joined): it is still open

    async def read(self, conn: Conn, aggregate: A) -> A:
        """An aggregate as its stream leaves it, without the case lock: for queries, which change
        nothing and need not wait for the command in hand."""
        events = await self.store.load_in(conn, aggregate.stream_id)
        return evolved(aggregate, [(e, registry.decode(e)) for e in events])

    async def command(self, ctx: CommandContext, handle: Handler[C, T], command: C) -> T:
        """Run a command in one unit of work, again from the start when it loses a race."""
        cause = Cause.of_command(ctx)
        for attempt in range(1, ATTEMPTS + 1):
            try:
                async with self.unit_of_work(cause) as uow:
                    return await handle(uow, command)
            except RETRIED:
                if attempt == ATTEMPTS:
                    raise
                log.info("command.retry_after_conflict", attempt=attempt)
        raise AssertionError("unreachable")

    async def react(
        self,
        conn: Conn,
        envelope: EventEnvelope,
        handle: Handler[C, T],
        event: C,
        *,
        actor: Actor | None = None,
    ) -> T:
        """Run a reaction to `envelope` on the consumer's transaction, in a savepoint that runs
        again from the start when it loses a race (the inbox row stays in the outer transaction)."""
        cause = Cause.of_reaction(self.service, envelope, actor)
        for attempt in range(1, ATTEMPTS + 1):
            try:
                async with conn.transaction():
                    return await handle(
                        UnitOfWork(self.store, conn, self.projector, cause, self.cipher), event
                    )
            except RETRIED:
                if attempt == ATTEMPTS:
                    raise
                log.info("reaction.retry_after_conflict", attempt=attempt)
        raise AssertionError("unreachable")

    def bind(self, subscription: Subscription) -> ConsumerSpec:
        """The subscription as a consumer of this runtime: each event to its reaction."""
        reactions = subscription.reactions

        async def apply(conn: Conn, envelope: EventEnvelope, payload: BaseModel) -> None:
            reaction = reactions.get(type(payload))
            if reaction is not None:
                await reaction(self, conn, envelope, payload)

        return ConsumerSpec(
            name=subscription.name,
            apply=apply,
            pattern=subscription.topics(self.jurisdictions),
            consumer_class=subscription.consumer_class,
            event_types=subscription.event_types,
        )


@dataclass(frozen=True)
class ServiceDefinition:
    """One service, declared in one place: its API, its projector, what it consumes and reacts
    to, the foreign events that feed its read models on replay, what replay leaves alone, and the
    integration contracts it publishes or receives."""

    name: str
    build_api: Callable[[Runtime], FastAPI]
    projector: Projector | None = None
    subscriptions: Sequence[Subscription] = ()
    foreign_read_models: Mapping[str, Projector] = field(default_factory=dict)
    """Replay (`zhengming audit replay`): context -> the pure read-model update its events feed
    (reactions, documents and the outbox never run on replay)."""
    replay_exclude: frozenset[str] = frozenset()
    """Tables that are not projections (written once by a command): replay leaves them alone."""
    public_contracts: Mapping[str, tuple[str, type[BaseModel]]] = field(default_factory=dict)
    """Integration contracts (AsyncAPI): name -> (topic address, message model)."""
    on_start: Callable[[Runtime], Awaitable[None]] | None = None

    def consumers(self, runtime: Runtime) -> list[ConsumerSpec]:
        return [runtime.bind(s) for s in self.subscriptions]


def served_jurisdictions() -> list[str]:
    configured = settings.services().jurisdictions
    return [j for j in JURISDICTIONS if not configured or j in configured]


async def open_runtime(definition: ServiceDefinition, *, schema: str | None = None) -> Runtime:
    """Pool (schema migrated, the shared user directory too), store and cipher; no broker yet
    (tests use this directly)."""
    name = definition.name
    schema = schema or name
    conn = await asyncpg.connect(settings.postgres().dsn())
    try:
        await migrate(conn, schema, service_migrations(name))
        await Directory.configured().migrate(conn)
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
        # Today's deadlines need today's year in the working-day calendar.
        year = business_today().year
        checks["calendar"] = covered(year)
        ok = all(checks.values())
        body: dict[str, Any] = {"ready": ok, "checks": checks}
        # Figures, not checks: a dead letter waits for an operator, it does not stop the service.
        if runtime.consumer_states is not None:
            seen_at, states = runtime.consumer_states
            body["consumer_figures"] = {
                "as_of": seen_at.isoformat(),
                "consumers": {
                    c.consumer: {
                        "lag": c.lag,
                        "dead_letters": c.dead_letters,
                        "dead_letters_pending": c.dead_letters_pending,
                    }
                    for c in states
                },
            }
        if stopped:
            body["stopped_consumers"] = stopped
        if not checks["calendar"]:
            body["calendar_year_unknown"] = year
        return JSONResponse(body, status_code=200 if ok else 503)


def served_app(
    definition: ServiceDefinition, runtime: Runtime, keys: IdempotencySettings | None = None
) -> FastAPI:
    """The HTTP application a service process serves (tests serve the very same in-process)."""
    app = definition.build_api(runtime)
    idempotency.install(app, runtime.pool, keys or IdempotencySettings())
    add_health_routes(app, runtime)
    add_audit_routes(app, runtime)
    add_ops_routes(app, runtime)
    # Every service logs in: the directory is shared, so whichever service an officer's client
    # talks to first can issue the token (one process holding the key is a deployment choice).
    add_auth_routes(app, runtime.pool)
    metrics.install(app, runtime)
    tracing.instrument_app(app)
    document_api(app)  # last: it documents every route added before
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
                        runtime.checkpoint_at = datetime.now(UTC)
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
    tracing.configure(definition.name)
    runtime = await open_runtime(definition)
    kafka = settings.kafka()
    # Pattern subscriptions learn of new topics at each metadata refresh: keep it short.
    runtime.broker = KafkaBroker(
        kafka.bootstrap_list,
        logger=None,
        enable_idempotence=True,
        metadata_max_age_ms=15_000,
        security=broker_security(kafka),
        # The consumers' handlers take the message and nothing FastStream must inject or
        # validate (shared/consumer.py): no dependency resolution per message.
        apply_types=False,
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
    watching = asyncio.create_task(ops_api.watch(runtime, stop, settings.services().ops_watch_interval_s))
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
            # The C parser; the loop is the process's, uvloop's (`zhengming serve` runs on it).
            http="httptools",
            loop="uvloop",
        )
    )
    log.info("service.start", url=svc.url(definition.name), jurisdictions=runtime.jurisdictions)
    try:
        await server.serve()
    finally:
        log.info("service.stopping")
        # Finishes the message in hand, then each consumer commits the offsets it settled (and
        # nothing beyond) right before its Kafka consumer closes (EventConsumer._adopt).
        await runtime.broker.stop()
        stop.set()
        await relay_task
        await checkpoints
        await watching
        await purging
        await runtime.pool.close()
        log.info("service.stopped")
        tracing.shutdown()
