"""Contract (issue 13): schemathesis against each service's own OpenAPI document finds no 5xx, no
undocumented status or content type and no body off its schema.

Each service is served in process (the app `serve` builds, on a real runtime on the real database)
by uvicorn on a loopback port; schemathesis draws requests for every operation from the document
(positive and negative, `ZM_CONTRACT_EXAMPLES` per operation and mode) with a token of one of the
roles the operation admits (its `x-roles`), and checks every answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation
from schemathesis.checks import CheckContext, not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Ok
from schemathesis.core.transport import Response
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from shared.openapi import READINESS
from tests.integration.service_apps import DEFINITIONS, ServiceApp, bearer, service_apps
from tests.integration.test_http_properties import seed

EXAMPLES = int(os.environ.get("ZM_CONTRACT_EXAMPLES", "6"))
COUNTY, CITY = "331122", "331100"


def not_ready_is_not_a_fault(
    ctx: CheckContext, response: Response, case: schemathesis.Case[Any]
) -> bool | None:
    """No 5xx, but the readiness probe's documented 503 (no broker in process: not ready by design)."""
    if case.path == READINESS and response.status_code == 503:
        return True
    return not_a_server_error(ctx, response, case)


CHECKS = [
    not_ready_is_not_a_fault,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
MATTER_PARAMETERS = {"case_id", "report_id"}
"""Path parameters naming the matter (a report's id is its case id)."""
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)


@dataclass
class Findings:
    """What schemathesis found on one service: requests sent, failures by kind with an example."""

    requests: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    by_kind: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def record(self, label: str, failure: Failure) -> None:
        self.by_kind[failure.title] += 1
        self.examples.setdefault(f"{failure.title} @ {label}", str(failure)[:600])


def tokens_for(operation: dict[str, Any]) -> list[dict[str, str]]:
    """Tokens that pass the operation's role check, of a county and of a city officer."""
    roles = operation.get("x-roles")
    if roles is None:
        return [{}]
    return [bearer(role, *jurisdictions) for role in roles for jurisdictions in ((COUNTY,), (CITY, COUNTY))]


def passes(operation: APIOperation[Any, Any, Any, Any], seeded: str) -> list[Any]:
    """The generation passes of an operation: positive and negative, and where its path names a
    matter only, positive on the seeded matter (so answers with a body are checked too)."""
    names = {p.name for p in operation.path_parameters}
    out: list[Any] = [operation.as_strategy(generation_mode=mode) for mode in MODES]
    if names and names <= MATTER_PARAMETERS:
        out.append(operation.as_strategy(path_parameters=dict.fromkeys(names, seeded)))
    return out


def run_schemathesis(document: dict[str, Any], base_url: str, seeded: str) -> Findings:
    """Every operation of the document, bounded examples each; runs in a worker thread."""
    schema = schemathesis.openapi.from_dict(document)
    found = Findings()
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        raw = document["paths"][operation.path][operation.method.lower()]
        for strategy in passes(operation, seeded):

            @given(case=strategy, token=st.sampled_from(tokens_for(raw)))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def exercise(case: schemathesis.Case[Any], token: dict[str, str]) -> None:
                response = case.call(base_url=base_url, headers=token, timeout=60)
                found.requests += 1
                found.by_status[response.status_code] += 1
                try:
                    case.validate_response(response, checks=CHECKS)
                except FailureGroup as group:
                    for failure in group.exceptions:
                        found.record(case.operation.label, failure)
                except Failure as failure:
                    found.record(case.operation.label, failure)

            with contextlib.suppress(Unsatisfiable):  # no invalid input exists (no parameters)
                exercise()
    return found


@pytest.fixture(scope="module")
async def services() -> AsyncIterator[dict[str, ServiceApp]]:
    async with service_apps() as apps:
        yield apps


@pytest.fixture(scope="module")
async def seeded(services: dict[str, ServiceApp]) -> str:
    """A matter through the chain (registered, verified untrue, a candidate started)."""
    ids: list[str] = []
    await seed(services, ids)
    return ids[0]


async def serve_on_loopback(svc: ServiceApp) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(svc.app, lifespan="off", log_level="warning", access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    return server, task, f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", list(DEFINITIONS))
async def test_schemathesis_finds_nothing(services: dict[str, ServiceApp], seeded: str, name: str) -> None:
    svc = services[name]
    document = svc.app.openapi()
    server, task, base_url = await serve_on_loopback(svc)
    try:
        found = await asyncio.to_thread(run_schemathesis, document, base_url, seeded)
    finally:
        server.should_exit = True
        await task
    statuses = dict(sorted(found.by_status.items()))
    print(f"\n{name}: {found.requests} requests {statuses}, findings {dict(found.by_kind) or 'none'}")
    assert found.requests > 0
    assert not found.by_kind, "\n\n".join(f"{k}\n{v}" for k, v in found.examples.items())


async def test_every_operation_declares_roles_and_problems(services: dict[str, ServiceApp]) -> None:
    for name, svc in services.items():
        document = svc.app.openapi()
        assert "Problem" in document["components"]["schemas"], name
        for path, item in document["paths"].items():
            for method, operation in item.items():
                label = f"{name} {method.upper()} {path}"
                responses = operation["responses"]
                problems = {
                    s for s, r in responses.items() if "application/problem+json" in r.get("content", {})
                }
                assert "503" in responses, label
                assert not any("application/json" in responses[s].get("content", {}) for s in problems), label
                if "x-roles" in operation:
                    assert operation["x-roles"], label
                    assert {"401", "403"} <= problems, label
                    assert "roles allowed" in operation["description"], label
                if method != "get":
                    assert {"404", "409", "422"} <= problems, label
