"""Property (issue 8): no operation of the four services answers 5xx, whatever it is sent.

Every operation of the four OpenAPI documents gets generated requests: path parameters, query
parameters and bodies drawn from the operation's own schemas (dates over the whole calendar,
integers past 2^63, text with control characters and lone surrogates), mixed with arbitrary JSON,
unparsable bytes, and tokens of every role, a forged one or none. The services run in process on a
real runtime on the real database; ids of matters seeded through the chain (a report handed over, a
verification concluded untrue, a candidate started) are drawn for path parameters so commands reach
past "not found". `ZM_PROPERTY_EXAMPLES` sets the examples per operation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from shared.events import registry
from shared.topics import events_topic
from tests.integration.service_apps import DEFINITIONS, ServiceApp, bearer, service_apps

EXAMPLES = int(os.environ.get("ZM_PROPERTY_EXAMPLES", "25"))
COUNTY, CITY = "331122", "331100"
ROLES = [
    "letters_office",
    "handling_department",
    "case_trial",
    "case_management",
    "head",
    "organisation_department",
    "auditor",
]
# The roles that issue most commands come thrice, so more requests pass the role check.
TOKENS: list[dict[str, str]] = [
    *(bearer(role, COUNTY) for role in ROLES),
    *(bearer(role, COUNTY) for role in ROLES[:4] for _ in range(2)),
    *(bearer(role, CITY, COUNTY) for role in ROLES),
    {"Authorization": "Bearer not.a.token"},
    {},
]
NASTY_TEXT = ["", " ", "a\x00b", "\x00", "%00", "\r\n", "\x1b[31m", "\ud800", "../..", "𠮷" * 60, "x" * 300]
NASTY_DATES = [
    "0001-01-01",
    "1999-12-31",
    "2000-01-01",
    "2099-01-01",
    "9999-12-31",
    "2023-02-29",
    "2023-13-01",
]
NASTY_INTS = [-1, 0, 2**31, 2**53 + 1, 2**63, -(2**63) - 1, 10**30]


@dataclass
class Operation:
    service: str
    method: str
    path: str
    parameters: list[dict[str, Any]]
    body: dict[str, Any] | None


@dataclass
class Tally:
    requests: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    server_errors: list[str] = field(default_factory=list)


def operations(svc: ServiceApp) -> tuple[list[Operation], dict[str, Any]]:
    spec = svc.app.openapi()
    ops = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            ops.append(Operation(svc.name, method.upper(), path, op.get("parameters", []), body))
    return ops, spec.get("components", {}).get("schemas", {})


def json_values() -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=20) | st.sampled_from(NASTY_TEXT)
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
        max_leaves=8,
    )


def from_schema(schema: dict[str, Any], components: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values for the subset of JSON Schema that FastAPI writes, biased to the edges."""
    if depth > 8:
        return st.none()
    if "$ref" in schema:
        target = components[schema["$ref"].rsplit("/", 1)[-1]]
        return st.deferred(lambda: from_schema(target, components, depth + 1))
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([from_schema(s, components, depth + 1) for s in schema[key]])
    if "allOf" in schema:
        return from_schema(schema["allOf"][0], components, depth + 1)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        fixed = {k: from_schema(v, components, depth + 1) for k, v in props.items() if k in required}
        optional = {k: from_schema(v, components, depth + 1) for k, v in props.items() if k not in required}
        extra = schema.get("additionalProperties")
        base = st.fixed_dictionaries(fixed, optional=optional)
        if isinstance(extra, dict):
            keys = from_schema({"type": "string", **schema.get("propertyNames", {})}, components, depth + 1)
            more = st.dictionaries(keys, from_schema(extra, components, depth + 1), max_size=3)
            return st.tuples(base, more).map(lambda t: {**t[1], **t[0]})
        return base
    if kind == "array":
        items = from_schema(schema.get("items", {}), components, depth + 1)
        low = schema.get("minItems", 0)
        return st.lists(items, min_size=low, max_size=max(low, min(schema.get("maxItems", 3), 3)))
    if kind == "string":
        if schema.get("format") == "date":
            return st.one_of(
                st.dates(date(2000, 1, 1), date(2027, 12, 31)).map(date.isoformat),
                st.dates().map(date.isoformat),
                st.sampled_from(NASTY_DATES),
            )
        if "pattern" in schema:
            return st.one_of(st.from_regex(schema["pattern"], fullmatch=True), st.sampled_from(NASTY_TEXT))
        low = schema.get("minLength", 0)
        high = min(schema.get("maxLength", 40), 40)
        return st.one_of(
            st.text(st.characters(codec=None, exclude_categories=()), min_size=low, max_size=max(low, high)),
            st.text(string.printable, min_size=low, max_size=max(low, high)),
            st.sampled_from(NASTY_TEXT),
        )
    if kind == "integer":
        low, high = schema.get("minimum"), schema.get("maximum")
        return st.one_of(st.integers(low, high), st.sampled_from(NASTY_INTS))
    if kind == "number":
        return st.floats(allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    return json_values()


def as_query(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def request_strategy(
    op: Operation, components: dict[str, Any], known_ids: Callable[[], list[str]]
) -> st.SearchStrategy[dict[str, Any]]:
    path_values: dict[str, st.SearchStrategy[Any]] = {}
    query_values: dict[str, st.SearchStrategy[Any]] = {}
    for param in op.parameters:
        values = from_schema(param.get("schema", {}), components)
        if param["in"] == "path":
            ids = st.builds(known_ids).flatmap(lambda ids: st.sampled_from(ids) if ids else st.just("x"))
            path_values[param["name"]] = st.one_of(ids, values)
        elif param["in"] == "query":
            query_values[param["name"]] = (
                st.one_of(values, st.sampled_from([*NASTY_DATES, "2023Q1", "0000Q1", str(2**63)]))
                if param.get("required")
                else st.one_of(st.none(), values)
            )
    if op.body is not None:
        body: st.SearchStrategy[Any] = st.one_of(
            from_schema(op.body, components).map(lambda b: ("json", b)),
            json_values().map(lambda b: ("json", b)),
            st.sampled_from([b"{", b'{"a": "\xff"}', b"", b"null"]).map(lambda b: ("raw", b)),
        )
    else:
        body = st.just(("none", None))
    return st.fixed_dictionaries(
        {
            "path": st.fixed_dictionaries(path_values),
            "query": st.fixed_dictionaries(query_values),
            "headers": st.sampled_from(TOKENS),
            "body": body,
        }
    )


async def send(svc: ServiceApp, op: Operation, drawn: dict[str, Any]) -> httpx.Response:
    path = op.path
    for name, value in drawn["path"].items():
        # A lone surrogate goes as its (invalid) UTF-8 bytes, as a hand-made request could send it.
        path = path.replace("{" + name + "}", quote(str(value), safe="", errors="surrogatepass"))
    params = {k: v for k, v in ((k, as_query(v)) for k, v in drawn["query"].items()) if v is not None}
    if params:
        path += "?" + urlencode(params, errors="surrogatepass")
    kind, body = drawn["body"]
    headers = dict(drawn["headers"])
    content: bytes | None = None
    if kind == "json":
        content = json.dumps(body, ensure_ascii=True).encode()  # escapes lone surrogates too
        headers["content-type"] = "application/json"
    elif kind == "raw":
        content = body
        headers["content-type"] = "application/json"
    return await svc.client.request(op.method, path, content=content, headers=headers)


IDS_IN = re.compile(
    r'"(?:report_id|case_id|matter_id|visit_id|subject_id|person_subject_id|doc_id)":\s*"([^"]+)"'
)


async def seed(apps: dict[str, ServiceApp], ids: list[str]) -> None:
    """A matter through the chain so that commands find something: registered, handed over,
    verified untrue and concluded, a candidate of the pool, started with consent."""
    office, department = bearer("letters_office", COUNTY), bearer("handling_department", COUNTY)
    intake, review, clarification = (apps[n].client for n in ("intake", "review", "clarification"))
    report = {
        "jurisdiction": COUNTY,
        "channel": "letter",
        "received_on": "2025-03-03",
        "real_name": True,
        "reporter": {"name": "郑实名", "contact": "13812345678"},
        "subjects": [{"kind": "person", "name": "李某", "post": "镇长", "unit": "缙云县某镇人民政府"}],
        "allegations": [{"summary": "违规收受礼金"}, {"summary": "公车私用"}],
        "summary": "反映李某问题",
    }
    for _ in range(2):
        created = await intake.post("/reports", json=report, headers=office)
        assert created.status_code == 201, created.text
        ids.append(created.json()["report_id"])
    case_id = ids[0]
    steps = [
        (f"/reports/{case_id}/log", {"logged_on": "2025-03-04"}),
        (f"/reports/{case_id}/accept", {"accepted_on": "2025-03-05"}),
        (f"/reports/{case_id}/hand-over", {"department": "第一监督检查室", "handed_on": "2025-03-06"}),
    ]
    for path, body in steps:
        done = await intake.post(path, json=body, headers=office)
        assert done.status_code == 200, done.text
    await bridge(apps)
    decision = {
        "method": "preliminary_verification",
        "decided_on": "2025-03-10",
        "approved_by": "head-1",
        "collective": True,
    }
    done = await review.post(f"/verifications/{case_id}/decision", json=decision, headers=department)
    assert done.status_code == 200, done.text
    for allegation in ("A1", "A2"):
        finding = {"allegation_id": allegation, "finding": "untrue", "basis": "经初步核实，反映问题失实"}
        done = await review.post(f"/verifications/{case_id}/findings", json=finding, headers=department)
        assert done.status_code == 200, done.text
    done = await review.post(
        f"/verifications/{case_id}/conclude", json={"concluded_on": "2025-04-01"}, headers=department
    )
    assert done.status_code == 200, done.text
    await bridge(apps)
    matter = await clarification.get(f"/clarifications/{case_id}", headers=department)
    ids.extend(IDS_IN.findall(matter.text))


_bridged: set[tuple[str, str]] = set()


async def bridge(apps: dict[str, ServiceApp]) -> None:
    """Deliver every event of each store to the other services' consumers, as Kafka would."""
    for upstream in apps.values():
        async for envelope in upstream.runtime.store.iter_all():
            topic = events_topic(envelope.jurisdiction, upstream.name)
            for downstream in apps.values():
                for spec in DEFINITIONS[downstream.name].consumers(downstream.runtime):
                    key = (spec.name, str(envelope.event_id))
                    wanted = spec.event_types is None or envelope.event_type in spec.event_types
                    if key in _bridged or not wanted or not re.match(spec.pattern, topic):
                        continue
                    _bridged.add(key)
                    async with downstream.runtime.pool.acquire() as conn, conn.transaction():
                        await spec.apply(conn, envelope, registry.decode(envelope))


def test_no_operation_answers_5xx() -> None:
    loop = asyncio.new_event_loop()
    stack = contextlib.AsyncExitStack()
    tally = Tally()
    ids: list[str] = []
    try:
        apps = loop.run_until_complete(stack.enter_async_context(service_apps()))
        for svc in apps.values():
            svc.runtime.broker_started = True  # no broker in process: /readyz would say so with 503
        loop.run_until_complete(seed(apps, ids))
        for name in ("intake", "review", "clarification", "archive"):
            svc = apps[name]
            ops, components = operations(svc)
            for op in ops:
                check_operation(loop, svc, op, components, ids, tally)
            loop.run_until_complete(bridge(apps))
    finally:
        loop.run_until_complete(stack.aclose())
        loop.close()
    print(
        f"\nproperty: {tally.requests} requests, {len(tally.server_errors)} answered 5xx; {tally.by_status}"
    )
    assert tally.requests >= EXAMPLES * 40
    assert not tally.server_errors, "\n".join(tally.server_errors[:10])


def check_operation(
    loop: asyncio.AbstractEventLoop,
    svc: ServiceApp,
    op: Operation,
    components: dict[str, Any],
    ids: list[str],
    tally: Tally,
) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(drawn=request_strategy(op, components, lambda: ids))
    def one(drawn: dict[str, Any]) -> None:
        response = loop.run_until_complete(send(svc, op, drawn))
        tally.requests += 1
        tally.by_status[response.status_code] = tally.by_status.get(response.status_code, 0) + 1
        if response.status_code >= 500:
            tally.server_errors.append(f"{op.method} {svc.name}{op.path} {drawn!r} -> {response.text[:300]}")
        elif response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/problem+json"), (
                f"{op.method} {op.path} {response.status_code} {response.text[:200]}"
            )
        ids.extend(i for i in IDS_IN.findall(response.text) if i not in ids and len(ids) < 200)

    one()
