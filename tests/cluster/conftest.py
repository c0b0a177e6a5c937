"""Cluster fixtures: a fresh stack of its own with a 3-node Kafka (RF 3, min.insync.replicas 2),
PostgreSQL and the four services, under .local/cluster/stack on ports of its own (Kafka 24092-24097,
PostgreSQL 18532, services 9401-9404), so it never touches `make up`'s, `make test`'s, the demo's or
the bench's.

The stack is this process's whole environment (every other ZM_ setting is dropped), so these tests
run in a pytest process of their own: `make test-cluster` (which `make test` runs after the suite).
Collected together with other tests they are skipped.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from shared import settings
from shared.settings import PROJECT_ROOT, SERVICES
from zhengming.client import Client, Users
from zhengming.driver import Driver
from zhengming.stack import Stack, start, stop, use_environment

HERE = Path(__file__).resolve().parent

STACK = Stack(
    PROJECT_ROOT / ".local" / "cluster" / "stack",
    {
        "ZM_KAFKA_NODES": "3",
        "ZM_KAFKA_PORT": "24092",
        "ZM_KAFKA_CONTROLLER_PORT": "24093",
        "ZM_PG_PORT": "18532",
        "ZM_SERVICE_INTAKE_PORT": "9401",
        "ZM_SERVICE_REVIEW_PORT": "9402",
        "ZM_SERVICE_CLARIFICATION_PORT": "9403",
        "ZM_SERVICE_ARCHIVE_PORT": "9404",
        "ZM_SERVICE_CONSOLE_PORT": "9400",
    },
    # Three JVMs on two shared cores: a smaller heap each is plenty for the test's traffic. Every
    # aiokafka warning is logged (not one per outage), so the test can count the client's retries.
    {"ZM_KAFKA_HEAP": "384m", "ZM_LOG_BROKER_QUIET_S": "0"},
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ours = [i for i in items if HERE in Path(str(i.path)).resolve().parents]
    if len(ours) == len(items):
        return
    skip = pytest.mark.skip(reason="the cluster tests switch the whole environment: `make test-cluster`")
    for item in ours:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Stack]:
    """The cluster stack, wiped and started; stopped afterwards, also when a test failed."""
    # The readiness probes and a killed broker make aiokafka log every refused connection.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    use_environment(STACK.environment(), only=True)
    STACK.prepare()
    try:
        start(with_services=True, processes=SERVICES, ready_timeout_s=120)  # the console is not needed
        yield STACK
    finally:
        stop()


@pytest.fixture
async def client(cluster: Stack) -> AsyncIterator[Client]:
    c = Client(settings.services(), Users())
    yield c
    await c.close()


@pytest.fixture
def driver(client: Client) -> Driver:
    return Driver(client)
