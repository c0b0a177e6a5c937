"""Workflow throughput and per-step latency through the four running services, over HTTP only.

One case (a report that turns out untrue and is clarified) is 15 HTTP commands and 3 asynchronous
hops across Kafka:

    intake          register, log, accept, hand-over
      ~> review     verification opened by review's consumer          (hop: hand-over -> review)
    review          decision, finding (untrue), conclude
      ~> clarif.    candidate in the pool, by clarification's consumer (hop: conclude -> clarification)
    clarification   start, assess, re-review, approve, perform, feedback, acknowledge, file
      ~> archive    the filing in the person's file, by archive's consumer (hop: file -> archive)

Offered load: a closed loop (C cases at a time until N are done) and an open loop (a case starts
every 1/rate seconds whatever is still in flight). Each command's latency is its HTTP round trip
as the client sees it; each hop's latency runs from the response of the command that causes it to
the first poll that sees its effect (polled every `poll_ms`, so the poll interval plus one GET
bound the resolution). Baselines from the same run:

- throughput: the bare-HTTP ceiling, the same closed loop whose cases make the same 16 round
  trips in the same order to `/healthz` of the same services (no command path, no hops);
- command latency: `/healthz` of the same service, sampled every `sample_ms` during the same
  loop, so it sees the same load;
- hop latency: a bare aiokafka round trip (the relay's producer settings -> an assigned consumer
  on the same broker), sampled likewise during the same loop;
- end to end: a case of the bare-HTTP ceiling (15 `/healthz` round trips in sequence);
- open loop: the offered arrival rate (achieved / offered).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, TypeVar

import httpx
import psutil
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from rich.console import Console

from bench.common import Figure, latency_summary
from shared import settings
from shared.envelope import JURISDICTIONS
from shared.outbox import make_producer
from shared.settings import SERVICES, RelaySettings
from zhengming.client import KEEPALIVE_EXPIRY_S, RETRY_STATUSES, ApiError, Users, new_idempotency_key
from zhengming.driver import CaseDriver
from zhengming.local import ensure_topics

T = TypeVar("T")

COMMANDS: tuple[tuple[str, str], ...] = (
    ("register", "intake"),
    ("log", "intake"),
    ("accept", "intake"),
    ("hand-over", "intake"),
    ("decision", "review"),
    ("decision-approve", "review"),
    ("finding", "review"),
    ("conclude", "review"),
    ("start", "clarification"),
    ("draft-content", "clarification"),
    ("approve-content", "clarification"),
    ("assess", "clarification"),
    ("re-review", "clarification"),
    ("approve", "clarification"),
    ("perform", "clarification"),
    ("feedback", "clarification"),
    ("acknowledge", "clarification"),
    ("file", "clarification"),
)
HANDED, CONCLUDED, FILED = "hand-over ~> review", "conclude ~> clarification", "file ~> archive"
HOPS: tuple[tuple[str, str], ...] = ((HANDED, "review"), (CONCLUDED, "clarification"), (FILED, "archive"))
END_TO_END = "case, end to end"
IDLE_CPU_S = 5.0  # how long the idle stack's own CPU use is measured
ROLES = ("letters_office", "handling_department", "case_trial", "head", "case_management")
CYCLE = sorted(JURISDICTIONS)  # cases go round the city and its nine counties
RECEIVED_ON = date(2024, 3, 1)
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ("建国", "志强", "海燕", "丽华", "晓明", "国平", "红梅", "伟东", "秀英", "文军")
TOWNS = ("壶镇镇", "新建镇", "五云街道", "东渡镇", "舒洪镇", "大洋镇", "七里乡", "胡源乡")


@dataclass(frozen=True)
class WorkflowParams:
    cases: int = 150
    concurrency: int = 8
    rate: float = 2.0
    duration_s: float = 60.0
    poll_ms: float = 20.0
    sample_ms: float = 200.0
    warmup: int = 4
    idle_samples: int = 100


@dataclass
class Recorder:
    """What one loop measured."""

    commands: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    hops: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    end_to_end: list[float] = field(default_factory=list)
    finished: list[float] = field(default_factory=list)  # perf_counter() at each case's last hop
    retries: int = 0
    polls: int = 0
    polls_by_hop: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    failures: list[str] = field(default_factory=list)


@dataclass
class Samples:
    """Baseline round trips sampled while a loop ran (or on the idle stack)."""

    healthz: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in SERVICES})
    kafka: list[float] = field(default_factory=list)


def _code(response: httpx.Response) -> str | None:
    with contextlib.suppress(ValueError):
        body = response.json()
        if isinstance(body, dict):
            code = body.get("code")
            return code if isinstance(code, str) else None
    return None


class Api:
    """The services' HTTP APIs as the roles of each jurisdiction, timing every command."""

    def __init__(self, poll_s: float) -> None:
        self.services = settings.services()
        self.users = Users()
        self.poll_s = poll_s
        self.http = httpx.AsyncClient(
            timeout=60,
            limits=httpx.Limits(
                max_connections=256, max_keepalive_connections=256, keepalive_expiry=KEEPALIVE_EXPIRY_S
            ),
        )
        # Tokens up front: no command's latency includes signing one.
        self.headers = {
            (role, j): {"Authorization": f"Bearer {self.users.token(role, j)}"}
            for role in ROLES
            for j in JURISDICTIONS
        }

    async def close(self) -> None:
        await self.http.aclose()

    async def command(
        self, rec: Recorder, step: str, service: str, path: str, role: str, j: str, body: dict[str, Any]
    ) -> tuple[Any, float]:
        """POST a command with an idempotency key of its own, sent again on every retry: a
        concurrent writer of the same stream (409 concurrency_conflict), a connection error or a
        5xx is retried (counted in rec.retries). Returns the answer and the time it arrived."""
        url = self.services.url(service) + path
        headers = {**self.headers[(role, j)], "Idempotency-Key": f'"{new_idempotency_key()}"'}
        started = time.perf_counter()
        for attempt in range(10):
            try:
                response = await self.http.post(url, json=body, headers=headers)
            except httpx.TransportError:
                if attempt == 9:
                    raise
                rec.retries += 1
                await asyncio.sleep(0.05 * (attempt + 1))
                continue
            if response.status_code in RETRY_STATUSES or (
                response.status_code == 409 and _code(response) == "concurrency_conflict"
            ):
                rec.retries += 1
                await asyncio.sleep(0.01 * (attempt + 1))
                continue
            done = time.perf_counter()
            if response.status_code >= 300:
                raise ApiError("POST", url, response.status_code, response.text)
            rec.commands[step].append(done - started)
            return (response.json() if response.content else None), done
        raise ApiError("POST", url, 409, "concurrency conflict persisted")

    async def get_if(self, service: str, path: str, role: str, j: str) -> Any:
        """GET that answers None on 404 (not there yet)."""
        url = self.services.url(service) + path
        response = await self.http.get(url, headers=self.headers[(role, j)])
        if response.status_code == 404:
            return None
        if response.status_code >= 300:
            raise ApiError("GET", url, response.status_code, response.text)
        return response.json()

    async def visible(
        self, rec: Recorder, hop: str, since: float, check: Callable[[], Awaitable[T | None]]
    ) -> T:
        """Poll `check` every poll_s until it answers; the hop took from `since` to that answer."""
        deadline = since + 120
        while True:
            found = await check()
            rec.polls += 1
            rec.polls_by_hop[hop] += 1
            if found is not None:
                rec.hops[hop].append(time.perf_counter() - since)
                return found
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{hop}: nothing after 120 s")
            await asyncio.sleep(self.poll_s)

    async def healthz(self, service: str) -> float:
        url = self.services.url(service) + "/healthz"
        started = time.perf_counter()
        response = await self.http.get(url)
        took = time.perf_counter() - started
        if response.status_code != 200:
            raise ApiError("GET", url, response.status_code, response.text)
        return took


def _subject(k: int, j: str) -> dict[str, Any]:
    town = TOWNS[k % len(TOWNS)]
    return {
        "kind": "person",
        "name": f"{SURNAMES[k % len(SURNAMES)]}{GIVEN[(k // len(SURNAMES)) % len(GIVEN)]}{k:05d}",
        "post": f"{town}党委副书记",
        "unit": f"{JURISDICTIONS[j]}{town}",
        "cadre_level": "county",
    }


class Timed:
    """The bench's sender for one case's driver: every command timed into `rec` by its step, and
    the time its answer arrived kept (a hop is measured from there)."""

    def __init__(self, api: Api, rec: Recorder) -> None:
        self.api = api
        self.rec = rec
        self.answered = 0.0

    async def command(
        self, step: str, service: str, path: str, *, role: str, jurisdiction: str, body: dict[str, Any]
    ) -> Any:
        answer, self.answered = await self.api.command(
            self.rec, step, service, path, role, jurisdiction, body
        )
        return answer

    async def get_if(self, service: str, path: str, *, role: str, jurisdiction: str) -> Any:
        return await self.api.get_if(service, path, role, jurisdiction)


async def carry(api: Api, rec: Recorder, k: int) -> None:
    """Case number k from its report to its filing in the archive."""
    j = CYCLE[k % len(CYCLE)]
    d = RECEIVED_ON
    started = time.perf_counter()
    sender = Timed(api, rec)
    case = CaseDriver(sender)
    subject = _subject(k, j)
    allegation = f"反映其在{subject['unit']}征地拆迁补偿中优亲厚友（第{k}号）"
    case_id = await case.register(
        j,
        channel="letter",
        received_on=d,
        real_name=True,
        reporter={"name": f"检举人{k:05d}", "contact": f"1390578{k % 10000:04d}"},
        subject=subject,
        allegations=[allegation],
    )
    await case.log(j, case_id, d)
    await case.accept(j, case_id, d + timedelta(days=1))
    await case.hand_over(j, case_id, "第一监督检查室", d + timedelta(days=2))

    verification: dict[str, Any] = await api.visible(
        rec, HANDED, sender.answered, lambda: case.verification(j, case_id)
    )
    await case.decide(j, case_id, method="preliminary_verification", on=d + timedelta(days=5))
    for item in verification["allegations"]:
        await case.find(
            j,
            case_id,
            allegation_id=item["allegation_id"],
            finding="untrue",
            basis="经初步核实，反映问题失实",
        )
    await case.conclude(j, case_id, d + timedelta(days=25))

    matter = await api.visible(rec, CONCLUDED, sender.answered, lambda: case.candidate(j, case_id))
    subject_id = str(matter["outcome"]["subjects"][0]["subject_id"])
    await case.start(j, case_id, CaseDriver.start_body(subject_id, d + timedelta(days=26)))
    await case.word_content(j, case_id, d + timedelta(days=26))
    assessed = await case.assess(
        j,
        case_id,
        on=d + timedelta(days=27),
        bad_effects=["repeated_reports"],
        proposed_forms=["written_notice", "face_to_face"],
    )
    if not assessed["eligible"]:
        raise RuntimeError(f"{case_id}: assessed not eligible: {assessed}")
    checked = await case.re_review(j, case_id, on=d + timedelta(days=28))
    if not checked["passed"]:
        raise RuntimeError(f"{case_id}: re-review not passed: {checked}")
    await case.approve(j, case_id, d + timedelta(days=29))
    await case.perform(j, case_id, d + timedelta(days=30), ["face_to_face"])
    await case.feedback(j, case_id, d + timedelta(days=31), f"中共{subject['unit']}委员会")
    await case.acknowledge(j, case_id, d + timedelta(days=31))
    await case.file(j, case_id, d + timedelta(days=32))

    async def in_archive() -> dict[str, Any] | None:
        record = await api.get_if("archive", f"/files/{subject_id}", "case_management", j)
        if record and any(f["case_id"] == case_id for f in record["filings"]):
            return dict(record)
        return None

    await api.visible(rec, FILED, sender.answered, in_archive)
    done = time.perf_counter()
    rec.end_to_end.append(done - started)
    rec.finished.append(done)


async def _carry_logged(api: Api, rec: Recorder, k: int) -> None:
    try:
        await carry(api, rec, k)
    except Exception as exc:
        rec.failures.append(f"case {k}: {type(exc).__name__}: {exc}"[:600])


# --- the baselines -----------------------------------------------------------------------------


class KafkaPing:
    """A bare aiokafka round trip on the same broker: a producer with the relay's settings
    (idempotent, acks=all, the relay's linger) to a consumer assigned to the topic's end."""

    def __init__(self) -> None:
        self.topic = f"zm.bench.ping.{uuid.uuid4().hex[:8]}"
        self.linger_ms = RelaySettings().linger_ms
        self.producer = make_producer(settings.kafka(), linger_ms=self.linger_ms)
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka().bootstrap,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            **settings.kafka().client_options(),
        )
        self.waiting: dict[int, asyncio.Future[float]] = {}
        self.seq = 0
        self.reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await ensure_topics(settings.kafka(), [self.topic], 1)
        await self.producer.start()
        await self.producer.partitions_for(self.topic)
        await self.consumer.start()
        tp = TopicPartition(self.topic, 0)
        self.consumer.assign([tp])
        await self.consumer.seek_to_end(tp)
        self.reader = asyncio.create_task(self._read())
        for _ in range(5):  # warm: metadata, connections, the fetch loop
            await self.ping()

    async def _read(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=1000)
            now = time.perf_counter()
            for records in batch.values():
                for record in records:
                    assert record.value is not None
                    future = self.waiting.pop(int(record.value), None)
                    if future is not None and not future.done():
                        future.set_result(now)

    async def ping(self) -> float:
        self.seq += 1
        seq = self.seq
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiting[seq] = future
        sent = time.perf_counter()
        await self.producer.send(self.topic, str(seq).encode(), key=b"ping")
        received = await asyncio.wait_for(future, 30)
        return received - sent

    async def stop(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.reader
        with contextlib.suppress(Exception):
            await self.consumer.stop()
        with contextlib.suppress(Exception):
            await self.producer.stop()
        admin = AIOKafkaAdminClient(
            bootstrap_servers=settings.kafka().bootstrap, **settings.kafka().client_options()
        )
        with contextlib.suppress(Exception):
            await admin.start()
            await admin.delete_topics([self.topic])
        with contextlib.suppress(Exception):
            await admin.close()


@contextlib.asynccontextmanager
async def sampling(api: Api, ping: KafkaPing, interval_s: float) -> AsyncIterator[Samples]:
    """While the body runs, sample /healthz of each service and the Kafka round trip every
    interval_s (staggered), so the baselines see the load the loop makes."""
    samples = Samples()
    stop = asyncio.Event()

    async def every(offset: float, probe: Callable[[], Awaitable[float]], into: list[float]) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), offset)
        while not stop.is_set():
            started = time.perf_counter()
            with contextlib.suppress(Exception):  # a lost sample is no measurement of ours
                into.append(await probe())
            remaining = interval_s - (time.perf_counter() - started)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, remaining))

    probes: list[tuple[Callable[[], Awaitable[float]], list[float]]] = [
        (functools.partial(api.healthz, s), samples.healthz[s]) for s in SERVICES
    ]
    probes.append((ping.ping, samples.kafka))
    tasks = [
        asyncio.create_task(every(interval_s * i / len(probes), probe, into))
        for i, (probe, into) in enumerate(probes)
    ]
    try:
        yield samples
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)


async def idle_samples(api: Api, ping: KafkaPing, n: int) -> Samples:
    """Round trips one at a time on the idle stack (for reference)."""
    samples = Samples()
    for service in SERVICES:
        for _ in range(n):
            samples.healthz[service].append(await api.healthz(service))
    for _ in range(n):
        samples.kafka.append(await ping.ping())
    return samples


async def http_ceiling(api: Api, cases: int, concurrency: int) -> tuple[float, list[float], Samples]:
    """The closed loop's HTTP skeleton: `cases` synthetic cases, `concurrency` at a time, each the
    same 16 round trips in the same order to /healthz of the same services. Returns the wall
    time, each synthetic case's latency and the round trips per service."""
    samples = Samples()
    latencies: list[float] = []
    numbers = iter(range(cases))

    async def worker() -> None:
        for _ in numbers:
            started = time.perf_counter()
            for _step, service in COMMANDS:
                samples.healthz[service].append(await api.healthz(service))
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, samples


# --- where the CPU went ------------------------------------------------------------------------------


def _component_pids() -> dict[str, list[int]]:
    """The bench's stack by component: each service, Kafka, PostgreSQL (the postmaster and its
    backends alive now) and this process (the load generator)."""
    from zhengming.local import LocalKafka, LocalPostgres
    from zhengming.services import all_services

    pids: dict[str, list[int]] = {}
    for svc in all_services(settings.local(), settings.services()):
        if (pid := svc.pid()) is not None:
            pids[svc.name] = [pid]
    if (pid := LocalKafka(settings.local(), settings.kafka()).pid()) is not None:
        pids["kafka"] = [pid]
    if (pid := LocalPostgres(settings.local(), settings.postgres()).pid()) is not None:
        with contextlib.suppress(psutil.Error):
            pids["postgres"] = [pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))]
    pids["bench client"] = [psutil.Process().pid]
    return pids


def cpu_snapshot() -> dict[str, dict[int, float]]:
    """CPU seconds (user + system) of every process of every component, by pid."""
    out: dict[str, dict[int, float]] = {}
    for name, pids in _component_pids().items():
        out[name] = {}
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                times = psutil.Process(pid).cpu_times()
                out[name][pid] = times.user + times.system
    return out


def cpu_used(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict[str, float]:
    """CPU seconds each component used in between (a PostgreSQL backend that exited in between
    is not counted; one that started counts from zero)."""
    return {
        name: round(sum(t - before.get(name, {}).get(pid, 0.0) for pid, t in procs.items()), 3)
        for name, procs in after.items()
    }


# --- the loops -------------------------------------------------------------------------------------


@dataclass
class Loop:
    """One loop's recording, with the baselines sampled while it ran."""

    kind: str
    rec: Recorder
    samples: Samples
    wall_s: float
    offered: int
    cpu_s: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def cpu_json(self) -> dict[str, Any]:
        """CPU seconds per component over the loop, per completed case, and the share of the
        machine's cores the whole stack kept busy."""
        done = max(1, len(self.rec.end_to_end))
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return {
            "cpu_s": self.cpu_s,
            "cpu_ms_per_case": {k: round(1000 * v / done, 1) for k, v in self.cpu_s.items()},
            "cores": cores,
            "stack_share_of_cores": round(sum(self.cpu_s.values()) / (self.wall_s * cores), 3),
        }


async def closed_loop(api: Api, ping: KafkaPing, p: WorkflowParams, numbers: Iterator[int]) -> Loop:
    rec = Recorder()
    todo = [next(numbers) for _ in range(p.cases)]
    queue = iter(todo)

    async def worker() -> None:
        for k in queue:
            await _carry_logged(api, rec, k)

    async with sampling(api, ping, p.sample_ms / 1000) as samples:
        cpu = cpu_snapshot()
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(p.concurrency)))
        wall = time.perf_counter() - started
        used = cpu_used(cpu, cpu_snapshot())
    return Loop("closed", rec, samples, wall, p.cases, cpu_s=used)


async def open_loop(api: Api, ping: KafkaPing, p: WorkflowParams, numbers: Iterator[int]) -> Loop:
    rec = Recorder()
    offered = max(2, round(p.rate * p.duration_s))
    in_flight = peak = 0
    late: list[float] = []

    async def one(k: int) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            await _carry_logged(api, rec, k)
        finally:
            in_flight -= 1

    tasks: list[asyncio.Task[None]] = []
    async with sampling(api, ping, p.sample_ms / 1000) as samples:
        cpu = cpu_snapshot()
        started = time.perf_counter()
        for i in range(offered):
            due = started + i / p.rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            late.append(max(0.0, time.perf_counter() - due))
            tasks.append(asyncio.create_task(one(next(numbers))))
        arrivals = time.perf_counter() - started
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - started
        used = cpu_used(cpu, cpu_snapshot())
    return Loop(
        "open",
        rec,
        samples,
        wall,
        offered,
        cpu_s=used,
        extra={
            "arrivals_s": round(arrivals, 3),
            "peak_in_flight": peak,
            "arrival_lateness": latency_summary(late),
        },
    )


# --- the figures -----------------------------------------------------------------------------------


@dataclass
class StepRow:
    step: str
    kind: str  # command, hop, case
    service: str
    ours: dict[str, float | int]
    baseline_name: str
    baseline: dict[str, float | int]

    def ratio(self, key: str) -> float | None:
        ours, base = self.ours.get(key), self.baseline.get(key)
        return round(float(ours) / float(base), 2) if ours and base else None

    def as_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "kind": self.kind,
            "service": self.service,
            "ours": self.ours,
            "baseline": {"name": self.baseline_name, **self.baseline},
            "ratio_p50": self.ratio("p50_ms"),
            "ratio_p99": self.ratio("p99_ms"),
        }


def step_rows(loop: Loop, ceiling_cases: list[float]) -> list[StepRow]:
    rows = [
        StepRow(
            step,
            "command",
            service,
            latency_summary(loop.rec.commands.get(step, [])),
            f"GET /healthz of {service}, sampled during the loop",
            latency_summary(loop.samples.healthz[service]),
        )
        for step, service in COMMANDS
    ]
    rows += [
        StepRow(
            hop,
            "hop",
            service,
            latency_summary(loop.rec.hops.get(hop, [])),
            "bare aiokafka produce -> consume, sampled during the loop",
            latency_summary(loop.samples.kafka),
        )
        for hop, service in HOPS
    ]
    rows.append(
        StepRow(
            END_TO_END,
            "case",
            "all",
            latency_summary(loop.rec.end_to_end),
            "a case of the bare-HTTP ceiling: 15 /healthz round trips in sequence",
            latency_summary(ceiling_cases),
        )
    )
    return rows


@dataclass
class WorkflowResult:
    figures: list[Figure]
    closed_rows: list[StepRow]
    open_rows: list[StepRow]
    failures: list[str]
    json: dict[str, Any]


def _loop_json(loop: Loop, rows: list[StepRow]) -> dict[str, Any]:
    rec = loop.rec
    return {
        "completed": len(rec.end_to_end),
        "failed": len(rec.failures),
        "failures": rec.failures[:10],
        "wall_s": round(loop.wall_s, 3),
        "http_commands": sum(len(v) for v in rec.commands.values()),
        "concurrency_retries": rec.retries,
        "polls": rec.polls,
        "polls_by_hop": dict(rec.polls_by_hop),
        **loop.extra,
        "cpu": loop.cpu_json(),
        "steps": [r.as_json() for r in rows],
    }


def _samples_json(samples: Samples) -> dict[str, Any]:
    return {
        "healthz": {s: latency_summary(v) for s, v in samples.healthz.items()},
        "kafka_round_trip": latency_summary(samples.kafka),
    }


async def bench_workflow(p: WorkflowParams, console: Console) -> WorkflowResult:
    api = Api(p.poll_ms / 1000)
    ping = KafkaPing()
    numbers = iter(range(1_000_000))
    try:
        await ping.start()
        with console.status("workflow: warm-up and idle round trips…"):
            warm = Recorder()
            await asyncio.gather(*(_carry_logged(api, warm, next(numbers)) for _ in range(p.warmup)))
            if warm.failures:
                raise RuntimeError(f"warm-up case failed: {warm.failures[0]}")
            await asyncio.sleep(1)  # let the warm-up's last events settle
            before = cpu_snapshot()
            await asyncio.sleep(IDLE_CPU_S)
            idle_cpu = {k: round(v / IDLE_CPU_S, 4) for k, v in cpu_used(before, cpu_snapshot()).items()}
            idle = await idle_samples(api, ping, p.idle_samples)
        with console.status(f"workflow: bare-HTTP ceiling, {p.cases} cases, {p.concurrency} at a time…"):
            ceiling_s, ceiling_cases, ceiling = await http_ceiling(api, p.cases, p.concurrency)
        with console.status(f"workflow: closed loop, {p.cases} cases, {p.concurrency} at a time…"):
            closed = await closed_loop(api, ping, p, numbers)
        with console.status(f"workflow: open loop, {p.rate:g} reports/s for {p.duration_s:g} s…"):
            opened = await open_loop(api, ping, p, numbers)
    finally:
        await ping.stop()
        await api.close()

    closed_rows, open_rows = step_rows(closed, ceiling_cases), step_rows(opened, ceiling_cases)
    done = len(closed.rec.end_to_end)
    resolution = (
        f"hops polled every {p.poll_ms:g} ms (resolution: the interval plus one GET);"
        f" baselines sampled every {p.sample_ms:g} ms per service during the loop"
    )
    closed_figure = Figure(
        name=f"workflow, closed loop ({p.concurrency} cases at a time)",
        label=f"workflow closed C={p.concurrency}",
        unit="reports/s",
        count=done,
        ours_s=closed.wall_s,
        baseline_name=(
            "bare-HTTP ceiling: the same closed loop, each case the same 16 round trips to /healthz"
            " of the same services, no hops"
        ),
        baseline_label="HTTP ceiling",
        baseline_s=ceiling_s,
        baseline_count=p.cases,
        notes=(
            f"{p.cases} cases from report to archive filing, {p.concurrency} at a time; 15 HTTP commands"
            f" and 3 Kafka hops per case, spread over the {len(CYCLE)} jurisdictions; {resolution}"
        ),
        extra={
            **_loop_json(closed, closed_rows),
            "baseline_samples": {
                "during_loop": _samples_json(closed.samples),
                "during_http_ceiling": _samples_json(ceiling),
                "idle_sequential": _samples_json(idle),
            },
        },
    )
    finished = sorted(opened.rec.finished)
    completed = len(finished)
    span = finished[-1] - finished[0] if completed >= 2 else 0.0
    # completions per second between the first and the last completion: (completed - 1) / span
    achieved_s = span * completed / (completed - 1) if completed >= 2 else opened.wall_s
    open_figure = Figure(
        name=f"workflow, open loop ({p.rate:g} reports/s offered for {p.duration_s:g} s)",
        label=f"workflow open {p.rate:g}/s",
        unit="reports/s",
        count=completed,
        ours_s=achieved_s,
        baseline_name=f"offered load: a case started every {1 / p.rate:g} s",
        baseline_label="offered",
        baseline_s=opened.offered / p.rate,
        baseline_count=opened.offered,
        notes=(
            "achieved = (completed - 1) / (last completion - first completion); the same case as"
            f" the closed loop, started on schedule whatever is in flight; {resolution}"
        ),
        extra={
            **_loop_json(opened, open_rows),
            "completion_span_s": round(span, 3),
            "baseline_samples": {"during_loop": _samples_json(opened.samples)},
        },
    )
    return WorkflowResult(
        figures=[closed_figure, open_figure],
        closed_rows=closed_rows,
        open_rows=open_rows,
        failures=closed.rec.failures + opened.rec.failures,
        json={
            "parameters": {**p.__dict__, "jurisdictions": len(CYCLE)},
            "idle_cpu_s_per_s": idle_cpu,
        },
    )
