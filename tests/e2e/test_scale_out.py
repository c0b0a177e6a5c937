"""Scale-out: more review processes join the consumer group and share the partitions; killing one
(SIGKILL, no goodbye) leaves the others carrying everything, with every matter opened exactly once.
The outbox relay, leader-elected by a session advisory lock, moves to a survivor when its holder dies.

The extra instances are started here as separate processes (`zhengming.cli serve review` on free
ports) and killed or stopped here. The package's review service is killed only when it holds the
relay lock, and then restarted before the test ends, so the other e2e tests find all four services.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TypeVar

import asyncpg
import httpx
import psutil
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from faker import Faker

from shared import settings
from shared.envelope import EventEnvelope
from shared.outbox import _relay_lock
from shared.runtime import served_jurisdictions
from shared.topics import events_topic
from tests.e2e.conftest import TRANSCRIPT
from zhengming.client import Client, Users
from zhengming.driver import CaseDriver, CasePlan, Driver, Reporter
from zhengming.services import LocalService

fake = Faker("zh_CN")
T = TypeVar("T")

# Matters of this module live in a year the workflow tests never use (they pick 2005-2020), so
# their quarterly figures, rounds and sweeps are not touched by these open verifications.
YEAR = 2004
N = 40  # matters driven while an instance is killed
M = 12  # matters driven after the relay leader was killed
GROUP = "review.handover"

Partition = tuple[str, int]


# -- processes ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((settings.services().host, 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class ReviewProcess:
    """One review instance: the package's own (no `proc`) or one this module started."""

    port: int
    pid: int
    proc: subprocess.Popen[bytes] | None = None
    log_file: Path | None = None

    @property
    def ours(self) -> bool:
        return self.proc is not None

    @property
    def url(self) -> str:
        return f"http://{settings.services().host}:{self.port}"

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        try:
            return bool(psutil.Process(self.pid).status() != psutil.STATUS_ZOMBIE)
        except psutil.NoSuchProcess:
            return False

    def kill(self) -> None:
        """SIGKILL: no shutdown, no offset commit, no lock release but the kernel's."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=30)
        else:
            with contextlib.suppress(ChildProcessError):  # reap it if the package fixture started it
                os.waitpid(self.pid, 0)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def log_tail(self) -> str:
        if self.log_file is None or not self.log_file.exists():
            return ""
        return self.log_file.read_text(encoding="utf-8", errors="replace")[-3000:]

    def opened_in_log(self) -> set[str]:
        """Matters this instance opened a verification for, from its JSON log."""
        if self.log_file is None:
            return set()
        opened = set()
        for line in self.log_file.read_text(encoding="utf-8", errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and entry.get("event") == "verification.opened":
                    opened.add(str(entry.get("case_id")))
        return opened


def start_review(tag: str) -> ReviewProcess:
    port = free_port()
    logs = settings.local().logs
    logs.mkdir(parents=True, exist_ok=True)
    log_file = logs / f"review-scale-{tag}.log"
    env = {**os.environ, "ZM_SERVICE_REVIEW_PORT": str(port), "ZM_LOG_JSON_OUTPUT": "true"}
    with open(log_file, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "zhengming.cli", "serve", "review"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )
    return ReviewProcess(port=port, pid=proc.pid, proc=proc, log_file=log_file)


def package_review() -> ReviewProcess:
    svc = LocalService("review", settings.local(), settings.services())
    pid = svc.pid()
    assert pid is not None, "the e2e package runs the review service"
    return ReviewProcess(port=settings.services().review_port, pid=pid)


async def until(what: str, check: Callable[[], Awaitable[T | None]], timeout_s: float) -> T:
    """Poll `check` until it answers something truthy, or fail with the last answer."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}; last: {last!r}")


async def wait_ready(process: ReviewProcess, timeout_s: float = 90) -> None:
    async with httpx.AsyncClient(timeout=3) as http:

        async def ready() -> bool:
            if not process.alive():
                raise AssertionError(f"review on {process.port} exited:\n{process.log_tail()}")
            try:
                return (await http.get(f"{process.url}/readyz")).status_code == 200
            except httpx.HTTPError:
                return False

        await until(f"review on port {process.port} ready", ready, timeout_s)


@pytest.fixture(scope="module")
def extra_reviews() -> Iterator[list[ReviewProcess]]:
    """Two more review instances; whatever of them is still alive is stopped afterwards."""
    started = [start_review("a"), start_review("b")]
    try:
        yield started
    finally:
        for process in started:
            process.stop()


# -- Kafka and PostgreSQL probes -----------------------------------------------------------------


def admin_client() -> AIOKafkaAdminClient:
    kafka = settings.kafka()
    return AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap, **kafka.client_options())


async def intake_partitions() -> set[Partition]:
    topics = [events_topic(j, "intake") for j in served_jurisdictions()]
    admin = admin_client()
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    found = {(d["topic"], p["partition"]) for d in described for p in d["partitions"]}
    assert {t for t, _ in found} == set(topics), "every intake topic is provisioned"
    return found


@dataclass
class Group:
    state: str
    assignments: list[set[Partition]]  # one per member


async def describe_group(group_id: str) -> Group:
    admin = admin_client()
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group_id])
    finally:
        await admin.close()
    [group] = response.to_object()["groups"]
    assignments = []
    for member in group["members"]:
        raw = member["member_assignment"]
        decoded = ConsumerProtocolMemberAssignment.decode(raw) if raw else None
        assignments.append({(tp.topic, tp.partition) for tp in decoded.partitions()} if decoded else set())
    return Group(state=group["state"], assignments=assignments)


async def wait_shared(members: int, partitions: set[Partition], timeout_s: float = 90) -> Group:
    """The review group settles with `members` members, each owning a share, together owning
    every intake partition, no partition twice."""
    group_id = settings.services().group_id(GROUP)
    seen: list[Group] = []

    async def settled() -> Group | None:
        group = await describe_group(group_id)
        seen[:] = [group]
        owned = [p for a in group.assignments for p in a]
        ok = (
            group.state == "Stable"
            and len(group.assignments) == members
            and all(group.assignments)
            and len(owned) == len(set(owned))
            and set(owned) == partitions
        )
        return group if ok else None

    try:
        return await until(f"{members} members sharing {group_id}", settled, timeout_s)
    except AssertionError as exc:
        last = seen[0] if seen else None
        sizes = None if last is None else sorted(len(a) for a in last.assignments)
        raise AssertionError(f"{exc}: state {last and last.state}, partitions per member {sizes}") from None


async def relay_holder(conn: asyncpg.Connection) -> int | None:
    """Port on this side of the PostgreSQL session that holds review's relay lock."""
    key = _relay_lock("review") & 0xFFFFFFFFFFFFFFFF
    port: int | None = await conn.fetchval(
        "SELECT a.client_port FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
        " AND l.classid::bigint = $1 AND l.objid::bigint = $2 AND a.application_name = 'zm-review'",
        key >> 32,
        key & 0xFFFFFFFF,
    )
    return port


def owner_of(client_port: int, candidates: list[ReviewProcess]) -> ReviewProcess | None:
    pg_port = settings.postgres().port
    for process in candidates:
        if not process.alive():
            continue
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            for c in psutil.Process(process.pid).net_connections(kind="tcp"):
                if c.laddr and c.raddr and c.laddr.port == client_port and c.raddr.port == pg_port:
                    return process
    return None


async def opened_counts(conn: asyncpg.Connection, case_ids: list[str]) -> dict[str, int]:
    """VerificationOpened events per matter in review's own event store."""
    rows = await conn.fetch(
        "SELECT case_id, count(*) FILTER (WHERE event_type = 'VerificationOpened') AS opened"
        " FROM review.events WHERE case_id = ANY($1::text[]) GROUP BY case_id",
        case_ids,
    )
    return {r["case_id"]: r["opened"] for r in rows}


async def find_on_topic(topic: str, case_id: str, event_type: str, timeout_s: float = 60) -> EventEnvelope:
    """The first `event_type` of the matter on the topic, read from offset 0 (no group)."""
    admin = admin_client()
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
    assert partitions, f"no partitions of {topic}"
    kafka = settings.kafka()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap, group_id=None, enable_auto_commit=False, **kafka.client_options()
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for records in batch.values():
                for record in records:
                    if record.key != case_id.encode():
                        continue
                    envelope = EventEnvelope.from_bytes(record.value or b"")
                    if envelope.event_type == event_type:
                        return envelope
        raise AssertionError(f"no {event_type} of {case_id} on {topic} within {timeout_s:.0f}s")
    finally:
        await consumer.stop()


# -- matters -------------------------------------------------------------------------------------


def matter(jurisdiction: str, index: int) -> CasePlan:
    name = f"{fake.name()}{uuid.uuid4().hex[:4]}"
    TRANSCRIPT.reporter_names.add(name)
    received = date(YEAR, 2, 1) + timedelta(days=index % 20)
    return CasePlan(
        jurisdiction=jurisdiction,
        subject={
            "kind": "person",
            "name": fake.name() + uuid.uuid4().hex[:3],
            "post": fake.job(),
            "unit": f"{fake.city_name()}镇",
            "cadre_level": "county",
        },
        allegations=[fake.sentence()],
        findings=["untrue"],
        received_on=received,
        reporter=Reporter(name=name, contact=fake.phone_number()),
    )


async def drive(
    driver: Driver, count: int, *, halfway: Callable[[], None] | None = None
) -> list[tuple[CasePlan, str]]:
    """Register and hand over `count` matters spread over every served jurisdiction (so every
    intake topic, and most partitions, get traffic); `halfway` runs once half are handed over."""
    codes = served_jurisdictions()
    gate = asyncio.Semaphore(8)
    handed: list[tuple[CasePlan, str]] = []

    async def one(index: int) -> None:
        plan = matter(codes[index % len(codes)], index)
        async with gate:
            case_id = await driver.register(plan)
            TRANSCRIPT.case_ids.add(case_id)
            await driver.intake(plan, case_id)
        handed.append((plan, case_id))
        if len(handed) == count // 2 and halfway is not None:
            halfway()

    await asyncio.gather(*(one(i) for i in range(count)))
    return handed


async def assert_opened_once(client: Client, handed: list[tuple[CasePlan, str]], timeout_s: float) -> None:
    """Every matter has its verification, opened by exactly one event: nothing lost, nothing twice."""
    pending = dict((case_id, plan) for plan, case_id in handed)

    async def all_open() -> bool:
        for case_id, plan in list(pending.items()):
            found = await client.get_if(
                "review",
                f"/verifications/{case_id}",
                role="handling_department",
                jurisdiction=plan.jurisdiction,
            )
            if found is not None:
                assert found["state"] == "open" and found["version"] == 1, found
                del pending[case_id]
        return not pending

    await until(f"{len(pending)} verifications opened", all_open, timeout_s)
    conn = await asyncpg.connect(settings.postgres().dsn())
    try:
        counts = await opened_counts(conn, [case_id for _, case_id in handed])
    finally:
        await conn.close()
    assert counts == {case_id: 1 for _, case_id in handed}


@pytest.fixture
async def db() -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(settings.postgres().dsn())
    yield conn
    await conn.close()


# -- tests ---------------------------------------------------------------------------------------


async def test_instances_share_partitions_and_survive_a_kill(
    extra_reviews: list[ReviewProcess], client: Client, driver: Driver
) -> None:
    original = package_review()
    a, b = extra_reviews
    for process in extra_reviews:
        await wait_ready(process)
    partitions = await intake_partitions()
    group = await wait_shared(3, partitions)
    assert sum(len(x) for x in group.assignments) == len(partitions) == 3 * len(served_jurisdictions())

    handed = await drive(driver, N, halfway=a.kill)
    assert not a.alive() and b.alive() and original.alive()
    await assert_opened_once(client, handed, timeout_s=120)
    # The killed member left; the two survivors now own every partition between them.
    await wait_shared(2, partitions)
    # The work was shared: the extra instances opened some of the matters themselves.
    ours = {case_id for _, case_id in handed}
    assert ours & {c for p in extra_reviews for c in p.opened_in_log()}, "the extra instances opened nothing"


async def test_relay_leadership_moves_to_a_survivor(
    extra_reviews: list[ReviewProcess], driver: Driver, db: asyncpg.Connection
) -> None:
    original = package_review()
    for process in extra_reviews:
        if process.alive():
            await wait_ready(process)
    candidates = [original, *(p for p in extra_reviews if p.alive())]
    port = await until("the relay lock held", lambda: relay_holder(db), 30)
    leader = owner_of(port, candidates)
    assert leader is not None, f"no review process owns the session on port {port}"

    restart = not leader.ours
    try:
        leader.kill()
        survivors = [p for p in candidates if p is not leader and p.alive()]
        assert survivors

        async def new_leader() -> ReviewProcess | None:
            held = await relay_holder(db)
            return None if held is None else owner_of(held, survivors)

        await until("a survivor holding the relay lock", new_leader, 30)
        # The survivors alone carry the group and open every new matter once.
        await wait_shared(len(survivors), await intake_partitions())
        handed = await drive(driver, M)
        at = survivors[-1]
        local = Client(
            settings.services().model_copy(update={"review_port": at.port}),
            Users(),
            observer=TRANSCRIPT.observe,
        )
        try:
            await assert_opened_once(local, handed, timeout_s=120)
            # A command on a survivor: its events go through the new relay to Kafka.
            plan, case_id = handed[0]
            decided = await CaseDriver(local).decide(
                plan.jurisdiction,
                case_id,
                method="preliminary_verification",
                on=plan.received_on + timedelta(days=5),
            )
            assert decided["recorded"] == ["HandlingDecided"]
        finally:
            await local.close()
        topic = events_topic(plan.jurisdiction, "review")
        opened = await find_on_topic(topic, case_id, "VerificationOpened")
        proposed = await find_on_topic(topic, case_id, "HandlingProposed")
        event = await find_on_topic(topic, case_id, "HandlingDecided")
        assert proposed.stream_version == 2 and proposed.prev_hash == opened.hash
        assert event.stream_version == 3 and event.prev_hash == proposed.hash

        async def all_marked() -> bool:
            # The relay marks a row published after its Kafka transaction commits: on a loaded
            # machine the record can be read before the mark lands.
            unpublished = await db.fetchval(
                "SELECT count(*) FROM review.outbox WHERE key = $1 AND published_at IS NULL", case_id
            )
            return bool(unpublished == 0)

        await until("the new relay marking the case's outbox rows published", all_marked, 30)
    finally:
        if restart:
            # The package's review service was the leader: bring it back for the other tests.
            svc = LocalService("review", settings.local(), settings.services())
            svc.start()
            svc.wait_ready(timeout_s=90)
