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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from shared.events import registry
from shared.topics import events_topic
from tests.integration.service_apps import DEFINITIONS, ServiceApp, bearer, service_apps

EXAMPLES = int(os.environ.get("ZM_PROPERTY_EXAMPLES", "30"))
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
LIKELY = {r"^\d{6}$": [COUNTY, CITY], r"^\d{4}Q[1-4]$": ["2025Q1", "2025Q2", "0000Q1", "9999Q4"]}
NASTY_INTS = [-1, 2**31, 2**63, -(2**63) - 1, 10**30]


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


PLAIN_TEXT = st.characters(exclude_categories=("Cc", "Cs"))
CONTROLS = ["\x00", "\x07", "\x1b", "\x7f", "\r", "\x85"]


class FreeText(str):
    """A generated free-text value (not an enum, pattern or date), so a mutation can find it."""


class DateText(str):
    """A generated date."""


def from_schema(
    schema: dict[str, Any], components: dict[str, Any], hostile: bool = False, depth: int = 0
) -> st.SearchStrategy[Any]:
    """Values for the subset of JSON Schema that FastAPI writes: valid ones, or (hostile) with
    edge values mixed in at every leaf."""

    def inner(sub: dict[str, Any]) -> st.SearchStrategy[Any]:
        return from_schema(sub, components, hostile, depth + 1)

    def maybe(valid: st.SearchStrategy[Any], nasty: list[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(valid, st.sampled_from(nasty)) if hostile else valid

    if depth > 8:
        return st.none()
    if "$ref" in schema:
        target = components[schema["$ref"].rsplit("/", 1)[-1]]
        return st.deferred(lambda: inner(target))
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([inner(s) for s in schema[key]])
    if "allOf" in schema:
        return inner(schema["allOf"][0])
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        fixed = {k: inner(v) for k, v in props.items() if k in required}
        optional = {k: inner(v) for k, v in props.items() if k not in required}
        extra = schema.get("additionalProperties")
        base = st.fixed_dictionaries(fixed, optional=optional)
        if isinstance(extra, dict):
            keys = inner({"type": "string", **schema.get("propertyNames", {})})
            more = st.dictionaries(keys, inner(extra), max_size=3)
            return st.tuples(base, more).map(lambda t: {**t[1], **t[0]})
        return base
    if kind == "array":
        low = schema.get("minItems", 0)
        return st.lists(
            inner(schema.get("items", {})), min_size=low, max_size=max(low, min(schema.get("maxItems", 3), 3))
        )
    if kind == "string":
        if schema.get("format") == "date":
            dates = st.dates(date(2020, 1, 1), date(2026, 6, 30)).map(lambda d: DateText(d.isoformat()))
            return maybe(dates, NASTY_DATES)
        if "pattern" in schema:
            # Jurisdiction codes and quarters that the tokens and the seeded matters know, often,
            # so requests get past "no access" to the input that matters.
            likely = LIKELY.get(schema["pattern"], [])
            ascii_pattern = schema["pattern"].replace(r"\d", "[0-9]")  # \d: every script's digits
            valid = st.one_of(
                *([st.sampled_from(likely)] * 2 if likely else []),
                st.from_regex(ascii_pattern, fullmatch=True),
            )
            return maybe(valid, NASTY_TEXT)
        low = schema.get("minLength", 0)
        high = max(low, min(schema.get("maxLength", 40), 40))
        valid = (
            st.text(PLAIN_TEXT, min_size=low, max_size=high)
            .filter(lambda t: len(t.strip()) >= low)
            .map(FreeText)
        )
        if not hostile:
            return valid
        return st.one_of(
            valid,
            st.text(st.characters(codec=None, exclude_categories=()), max_size=high),
            st.sampled_from(NASTY_TEXT),
        )
    if kind == "integer":
        return maybe(st.integers(schema.get("minimum"), schema.get("maximum")), NASTY_INTS)
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


DATE_LIKE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def nasty_for(value: Any) -> list[Any]:
    """Edge values of the same kind as `value` (a date stays a date-shaped string)."""
    if isinstance(value, bool) or value is None:
        return [None, "true", 0, [], {}]
    if isinstance(value, int):
        return NASTY_INTS
    if isinstance(value, str) and DATE_LIKE.match(value):
        return ["0001-01-01", "9999-12-31", "1999-12-31", "2099-01-01"]
    if isinstance(value, str):
        return NASTY_TEXT
    return [None, "x", -1, []]


def leaves(tree: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(tree, dict):
        return [p for k, v in tree.items() for p in leaves(v, (*at, k))]
    if isinstance(tree, list):
        return [p for i, v in enumerate(tree) for p in leaves(v, (*at, i))]
    return [at]


def put(tree: Any, at: tuple[Any, ...], value: Any) -> None:
    for key in at[:-1]:
        tree = tree[key]
    tree[at[-1]] = value


def get(tree: Any, at: tuple[Any, ...]) -> Any:
    for key in at:
        tree = tree[key]
    return tree


def request_strategy(
    op: Operation,
    components: dict[str, Any],
    known_ids: Callable[[], list[str]],
    admitted: Callable[[], list[int]] = list,
) -> st.SearchStrategy[dict[str, Any]]:
    """A request in one of five modes: all valid; valid but for one leaf (a parameter or a body
    field) set to an edge value of its kind; valid but with a control character in one free
    text; valid but with every date set to one edge date; or hostile everywhere, arbitrary JSON
    and unparsable bytes included. Bad values among valid ones are what reaches the code behind
    validation (an offset of 2^63 with a good limit, a NUL in an otherwise good report)."""
    by_name = {"jurisdiction": [COUNTY, CITY], "quarter": LIKELY[r"^\d{4}Q[1-4]$"], "period": ["2025Q1"]}

    def params(hostile: bool) -> st.SearchStrategy[dict[str, Any]]:
        path_values: dict[str, st.SearchStrategy[Any]] = {}
        query_values: dict[str, st.SearchStrategy[Any]] = {}
        for param in op.parameters:
            values = from_schema(param.get("schema", {}), components, hostile)
            if param["name"] in by_name:
                values = st.one_of(st.sampled_from(by_name[param["name"]]), values)
            if param["in"] == "path":
                ids = st.integers(0, 2**16).map(
                    lambda i: (known_ids() or ["x"])[i % max(len(known_ids()), 1)]
                )
                path_values[param["name"]] = st.one_of(ids, values)
            elif param["in"] == "query":
                # Optional parameters are mostly present, so that a mutation can land on them.
                optional = st.one_of(values, values, st.none())
                query_values[param["name"]] = values if param.get("required") else optional
        return st.fixed_dictionaries(
            {"path": st.fixed_dictionaries(path_values), "query": st.fixed_dictionaries(query_values)}
        )

    def body(hostile: bool) -> st.SearchStrategy[Any]:
        if op.body is None:
            return st.just(("none", None))
        valid = from_schema(op.body, components, hostile).map(lambda b: ("json", b))
        if not hostile:
            return valid
        return st.one_of(
            valid,
            json_values().map(lambda b: ("json", b)),
            st.sampled_from([b"{", b'{"a": "\xff"}', b"", b"null"]).map(lambda b: ("raw", b)),
        )

    @st.composite
    def request(draw: st.DrawFn) -> dict[str, Any]:
        mode = draw(st.sampled_from(["valid", "one_leaf", "one_leaf", "text_one", "dates_all", "hostile"]))
        hostile = mode == "hostile"
        drawn: dict[str, Any] = {**draw(params(hostile)), "body": draw(body(hostile))}
        # Half the time a token this operation admitted before (not 401/403), so that fewer
        # requests stop at the role check.
        # (External state is read through a fixed-range draw, which hypothesis can replay.)
        welcome, pick, prefer = admitted(), draw(st.integers(0, 2**16)), draw(st.booleans())
        token = welcome[pick % len(welcome)] if welcome and prefer else pick % len(TOKENS)
        drawn["headers"] = TOKENS[token]
        drawn["token"] = token
        drawn["mode"] = mode
        tree = {"path": drawn["path"], "query": drawn["query"], "body": drawn["body"][1]}
        spots = [p for p in leaves(tree) if len(p) > 1 and get(tree, p) is not None]
        if mode == "one_leaf" and spots:
            spot = draw(st.sampled_from(spots))
            put(tree, spot, draw(st.sampled_from(nasty_for(get(tree, spot)))))
        elif mode == "text_one":
            # A control character into one free text (or id), all else valid.
            texts = [p for p in spots if isinstance(get(tree, p), FreeText)]
            char, where, pick = (
                draw(st.sampled_from(CONTROLS)),
                draw(st.integers(0, 40)),
                draw(st.integers(0, 99)),
            )
            if texts:
                spot = texts[pick % len(texts)]
                text = get(tree, spot)
                put(tree, spot, text[:where] + char + text[where:])
        elif mode == "dates_all":
            day = draw(st.sampled_from(["0001-01-01", "9999-12-31", "1999-12-31", "2099-01-01"]))
            for spot in (p for p in spots if isinstance(get(tree, p), DateText)):
                put(tree, spot, day)
        return drawn

    return request()


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
    decision = {"method": "preliminary_verification", "decided_on": "2025-03-10", "collective": True}
    done = await review.post(f"/verifications/{case_id}/decision", json=decision, headers=department)
    assert done.status_code == 200, done.text
    done = await review.post(
        f"/verifications/{case_id}/decision/approve",
        json={"approved_on": "2025-03-10"},
        headers=bearer("head", COUNTY),
    )
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


# One test walks every operation of the four services with EXAMPLES inputs each (some of them
# Kafka reads, the operations' dead letters): minutes on a loaded machine. The timeout guards
# against a hang, it measures nothing.
@pytest.mark.timeout(1200)
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
    admitted: list[int] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(drawn=request_strategy(op, components, lambda: ids, lambda: admitted))
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
        if response.status_code not in (401, 403) and drawn["token"] not in admitted:
            admitted.append(drawn["token"])

    one()
