"""End-to-end fixtures: the four services as separate processes on the real broker and database.

Services already running (`make up`) are used as they are; otherwise this package starts them and
stops them when its tests are done. Every HTTP response is recorded so the confidentiality test can
look for reporter identities in everything a caller without the intake role was shown.

Each run works in a year of its own (dates are part of the commands), so quarterly figures,
rounds and notices of one run never mix with those of an earlier run on the same database.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import date

import httpx
import pytest

from shared import settings
from shared.auth import AuthSettings, ensure_keys
from zhengming.client import Client, Users
from zhengming.driver import Driver
from zhengming.local import LocalKafka, LocalPostgres
from zhengming.services import all_services


@dataclass
class Seen:
    service: str
    role: str
    method: str
    status: int
    path: str
    body: str


@dataclass
class Transcript:
    """Every response of the run and every reporter identity used, for the confidentiality test."""

    responses: list[Seen] = field(default_factory=list)
    reporter_names: set[str] = field(default_factory=set)
    id_numbers: set[str] = field(default_factory=set)
    """居民身份证号码 of reported persons: in no message, log line, document or response at all."""
    case_ids: set[str] = field(default_factory=set)

    def observe(self, service: str, role: str, method: str, status: int, path: str, body: str) -> None:
        self.responses.append(Seen(service, role, method, status, path, body))


TRANSCRIPT = Transcript()
YEARS = list(range(2005, 2021))
YEAR = random.Random().choice(YEARS)


def day(month: int, dom: int) -> date:
    """A date in this run's year."""
    return date(YEAR, month, dom)


def quarter(q: int) -> str:
    return f"{YEAR}Q{q}"


@pytest.fixture(scope="package", autouse=True)
def services() -> Iterator[None]:
    pg = LocalPostgres(settings.local(), settings.postgres())
    kafka = LocalKafka(settings.local(), settings.kafka())
    if not (pg.answering() and kafka.answering()):
        pytest.fail("Kafka and PostgreSQL must run: use `make test` (or `zhengming up`)")
    ensure_keys(AuthSettings())
    started = []
    procs = all_services(settings.local(), settings.services())
    for svc in procs:
        if svc.start():
            started.append(svc)
    for svc in procs:
        svc.wait_ready(timeout_s=90)
    _pick_unused_year()
    yield
    for svc in started:
        svc.stop()


def _pick_unused_year() -> None:
    """A year no earlier run used (rounds and notices happen once per quarter)."""
    global YEAR
    users = Users()
    token = users.token("auditor", "331124")
    url = settings.services().url("clarification") + "/rounds?jurisdiction=331124"
    held = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30).json()
    used = {int(r["quarter"][:4]) for r in held}
    free = [y for y in YEARS if y not in used]
    if not free:
        pytest.fail("every test year is used on this database: `make clean` resets the local data")
    YEAR = random.Random().choice(free)


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    c = Client(settings.services(), Users(), observer=TRANSCRIPT.observe)
    yield c
    await c.close()


@pytest.fixture
def driver(client: Client) -> Driver:
    return Driver(client)
