"""Logging: JSON lines on stderr, and the request context the ASGI middleware binds to them."""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

import pytest
import structlog

import shared.logging as logging_module
from shared.logging import RequestContextMiddleware, configure_logging
from shared.settings import LogSettings

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]


@pytest.fixture(autouse=True)
def _isolated_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test configures logging afresh onto its captured stderr and leaves nothing behind."""
    for name in list(os.environ):
        if name.upper().startswith("ZM_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(logging_module, "_configured", False)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    root.handlers[:] = handlers
    root.setLevel(level)


def _json_lines(err: str) -> list[dict[str, Any]]:
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "nothing was logged"
    return [json.loads(line) for line in lines]


def test_json_output_renders_one_json_object_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("review", LogSettings(json_output=True))
    log = structlog.get_logger("test")
    log.info("case.opened", case_id="case-1", official="张三")
    log.warning("case.flagged", count=2)
    first, second = _json_lines(capsys.readouterr().err)
    assert first["event"] == "case.opened"
    assert first["level"] == "info"
    assert first["service"] == "review"
    assert first["case_id"] == "case-1"
    assert first["official"] == "张三"
    assert first["timestamp"].endswith("Z")
    assert second["event"] == "case.flagged"
    assert second["level"] == "warning"
    assert second["count"] == 2


def test_json_output_keeps_chinese_unescaped(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("review", LogSettings(json_output=True))
    structlog.get_logger().info("正名")
    err = capsys.readouterr().err
    assert "正名" in err
    assert "\\u" not in err


def test_level_filters_lower_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("review", LogSettings(level="warning", json_output=True))
    log = structlog.get_logger()
    log.info("quiet")
    log.error("loud")
    (line,) = _json_lines(capsys.readouterr().err)
    assert line["event"] == "loud"


def test_standard_logging_is_rendered_as_json_with_context(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("intake", LogSettings(json_output=True))
    with structlog.contextvars.bound_contextvars(case_id="case-9"):
        logging.getLogger("some.library").warning("library says %s", "hi")
    (line,) = _json_lines(capsys.readouterr().err)
    assert line["event"] == "library says hi"
    assert line["level"] == "warning"
    assert line["service"] == "intake"
    assert line["case_id"] == "case-9"


class _Recorder:
    """A minimal ASGI app that logs once, plus the fake receive/send around it."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.context_seen: dict[str, Any] = {}

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        self.context_seen = structlog.contextvars.get_contextvars()
        structlog.get_logger().info("request.handled")
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive(self) -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(self, message: Any) -> None:
        self.sent.append(message)

    def response_headers(self) -> dict[bytes, list[bytes]]:
        (start,) = [m for m in self.sent if m["type"] == "http.response.start"]
        headers: dict[bytes, list[bytes]] = {}
        for name, value in start["headers"]:
            headers.setdefault(name.lower(), []).append(value)
        return headers


def _scope(headers: list[tuple[bytes, bytes]], **extra: Any) -> Scope:
    scope: Scope = {"type": "http", "method": "POST", "path": "/cases", "headers": headers}
    scope.update(extra)
    return scope


async def test_middleware_binds_the_callers_correlation_id(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("review", LogSettings(json_output=True))
    recorder = _Recorder()
    correlation_id = str(uuid.uuid4())
    causation_id = str(uuid.uuid4())
    scope = _scope(
        [
            (b"X-Correlation-ID", correlation_id.encode()),
            (b"x-causation-id", causation_id.encode()),
            (b"x-case-id", b"case-7"),
        ]
    )
    await RequestContextMiddleware(recorder.app)(scope, recorder.receive, recorder.send)

    (line,) = _json_lines(capsys.readouterr().err)
    assert line["event"] == "request.handled"
    assert line["correlation_id"] == correlation_id
    assert line["causation_id"] == causation_id
    assert line["case_id"] == "case-7"
    assert line["http_method"] == "POST"
    assert line["http_path"] == "/cases"
    assert line["service"] == "review"
    headers = recorder.response_headers()
    assert headers[b"x-correlation-id"] == [correlation_id.encode()]
    assert headers[b"content-type"] == [b"text/plain"]
    assert [m["type"] for m in recorder.sent] == ["http.response.start", "http.response.body"]


async def test_middleware_makes_a_fresh_correlation_id(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("review", LogSettings(json_output=True))
    recorder = _Recorder()
    await RequestContextMiddleware(recorder.app)(_scope([]), recorder.receive, recorder.send)

    (line,) = _json_lines(capsys.readouterr().err)
    fresh = line["correlation_id"]
    assert uuid.UUID(fresh)
    assert recorder.response_headers()[b"x-correlation-id"] == [fresh.encode()]


async def test_middleware_gives_each_request_its_own_correlation_id() -> None:
    first, second = _Recorder(), _Recorder()
    await RequestContextMiddleware(first.app)(_scope([]), first.receive, first.send)
    await RequestContextMiddleware(second.app)(_scope([]), second.receive, second.send)
    assert first.context_seen["correlation_id"] != second.context_seen["correlation_id"]


async def test_middleware_prefers_the_path_case_id() -> None:
    recorder = _Recorder()
    scope = _scope([(b"x-case-id", b"from-header")], path_params={"case_id": "from-path"})
    await RequestContextMiddleware(recorder.app)(scope, recorder.receive, recorder.send)
    assert recorder.context_seen["case_id"] == "from-path"


async def test_middleware_unbinds_the_context_after_the_request() -> None:
    structlog.contextvars.bind_contextvars(service="review")
    recorder = _Recorder()
    await RequestContextMiddleware(recorder.app)(
        _scope([(b"x-correlation-id", b"5f0c6a7e-2f7e-4c1e-9a51-0d3a3f3f1a10")]),
        recorder.receive,
        recorder.send,
    )
    assert recorder.context_seen["correlation_id"] == "5f0c6a7e-2f7e-4c1e-9a51-0d3a3f3f1a10"
    assert structlog.contextvars.get_contextvars() == {"service": "review"}


async def test_middleware_passes_other_scopes_through() -> None:
    recorder = _Recorder()
    await RequestContextMiddleware(recorder.app)({"type": "lifespan"}, recorder.receive, recorder.send)
    assert "correlation_id" not in recorder.context_seen
    assert b"x-correlation-id" not in recorder.response_headers()


async def test_a_correlation_id_that_is_not_a_uuid_is_replaced() -> None:
    recorder = _Recorder()
    await RequestContextMiddleware(recorder.app)(
        _scope([(b"x-correlation-id", b"not-a-uuid")]), recorder.receive, recorder.send
    )
    seen = recorder.context_seen["correlation_id"]
    assert seen != "not-a-uuid"
    assert str(uuid.UUID(seen)) == seen


def _kafka_record(message: str, level: int = logging.ERROR, name: str = "aiokafka.conn") -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


def test_broker_noise_is_one_line_per_outage() -> None:
    now = [0.0]
    noise = logging_module.BrokerNoiseFilter(quiet_s=30, clock=lambda: now[0])
    passed = []
    for i in range(27_627):  # the 48 s outage of issue 8
        now[0] = i * 48 / 27_627
        if noise.filter(_kafka_record(f"Unable connect to node with id 1: attempt {i}")):
            passed.append(i)
    assert passed == [0]
    assert noise.suppressed == 27_626
    # Debug chatter of aiokafka is left to the level setting; other loggers are never touched.
    assert noise.filter(_kafka_record("fetching", level=logging.DEBUG))
    now[0] = 100.0
    assert noise.filter(_kafka_record("hello", level=logging.INFO, name="some.library"))
    assert noise.suppressed == 0 and noise.last_noise is None  # the outage was closed as quiet
    now[0] = 500.0
    assert noise.filter(_kafka_record("Unable connect to node with id 1"))  # a new outage: one line


def test_broker_noise_is_kept_line_by_line_when_quiet_s_is_zero(capsys: pytest.CaptureFixture[str]) -> None:
    noise = logging_module.BrokerNoiseFilter(quiet_s=0)
    assert all(
        noise.filter(_kafka_record(f"Unable connect to node with id 1: attempt {i}")) for i in range(50)
    )
    assert noise.suppressed == 0
    configure_logging("review", LogSettings(json_output=True, broker_quiet_s=0))
    for _ in range(3):
        logging.getLogger("aiokafka.producer.sender").warning("Got error produce response: %s", "NotLeader")
    assert [line["event"] for line in _json_lines(capsys.readouterr().err)] == [
        "Got error produce response: NotLeader"
    ] * 3


def test_broker_noise_is_filtered_on_the_configured_handler(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("review", LogSettings(json_output=True))
    for _ in range(500):
        logging.getLogger("aiokafka.conn").error("Unable connect to node with id 1: [Errno 111]")
        logging.getLogger("aiokafka.consumer.group_coordinator").error("Error sending JoinGroup")
    (line,) = _json_lines(capsys.readouterr().err)
    assert line["event"].startswith("broker.unavailable")


def test_an_outage_is_logged_when_it_starts_and_when_it_ends() -> None:
    outages = logging_module.Outages()
    with structlog.testing.capture_logs() as logs:
        outages.up("database")  # nothing was down: nothing said
        for _ in range(100):
            outages.down("database", ConnectionRefusedError(111, "refused"))
        assert outages.is_down("database")
        outages.up("database")
        outages.up("database")
    assert [e["event"] for e in logs] == ["database.unavailable", "database.recovered"]
    assert logs[1]["failures"] == 100
