"""structlog configured once: JSON when not on a terminal, context bound per message and request."""

from __future__ import annotations

import logging
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import structlog

from shared import tracing
from shared.settings import LogSettings

_configured = False


def configure_logging(service: str, settings: LogSettings | None = None) -> None:
    """Set up structlog and the standard logging bridge for this process (idempotent)."""
    global _configured
    settings = settings or LogSettings()
    json_output = settings.json_output if settings.json_output is not None else not sys.stderr.isatty()
    level = logging.getLevelName(settings.level.upper())
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        tracing.log_ids,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json_output
        else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    if not _configured:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
                foreign_pre_chain=shared,
            )
        )
        root = logging.getLogger()
        root.handlers[:] = [handler]
        root.setLevel(max(level, logging.INFO))
        logging.getLogger("aiokafka").setLevel(logging.WARNING)
        handler.addFilter(BrokerNoiseFilter(quiet_s=settings.broker_quiet_s))
        _configured = True
    structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)


class Outages:
    """One log line when a component (the database, the broker) goes away and one when it is back,
    however many requests or retries meet it in between."""

    def __init__(self) -> None:
        self._since: dict[str, float] = {}
        self._met: dict[str, int] = {}
        self._lock = threading.Lock()

    def down(self, component: str, error: BaseException | str) -> None:
        with self._lock:
            first = component not in self._since
            if first:
                self._since[component] = time.monotonic()
                self._met[component] = 0
            self._met[component] += 1
        if first:
            get_logger("zhengming.outage").warning(
                f"{component}.unavailable",
                component=component,
                error=error if isinstance(error, str) else repr(error),
            )

    def up(self, component: str) -> None:
        if component not in self._since:  # the common case: nothing to say, no lock taken
            return
        with self._lock:
            since = self._since.pop(component, None)
            met = self._met.pop(component, 0)
        if since is not None:
            get_logger("zhengming.outage").warning(
                f"{component}.recovered",
                component=component,
                down_s=round(time.monotonic() - since, 1),
                failures=met,
            )

    def is_down(self, component: str) -> bool:
        return component in self._since


outages = Outages()
"""The process's outage book; HTTP edges and background loops report to it."""


class BrokerNoiseFilter(logging.Filter):
    """aiokafka logs every failed reconnection of every client (producer, consumers, coordinator):
    27,627 lines in a 48 s broker outage. The first warning of an outage passes, as one
    `broker.unavailable` line; the rest are counted, not printed, until the broker has been quiet
    for `quiet_s`, when a `broker.recovered` line tells how many were swallowed. With `quiet_s` 0
    every line passes."""

    def __init__(self, quiet_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.quiet_s = quiet_s
        self.clock = clock
        self.last_noise: float | None = None
        self.suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        now = self.clock()
        if not record.name.startswith("aiokafka"):
            self._close_quiet_outage(now)
            return True
        if record.levelno < logging.WARNING or self.quiet_s == 0:
            return True
        ongoing = self.last_noise is not None and now - self.last_noise < self.quiet_s
        if not ongoing:
            self._close_quiet_outage(now, force=True)
        self.last_noise = now
        if ongoing:
            self.suppressed += 1
            return False
        record.msg = f"broker.unavailable: {record.getMessage()} (repeats suppressed until quiet)"
        record.args = None
        return True

    def _close_quiet_outage(self, now: float, *, force: bool = False) -> None:
        if self.last_noise is None or not (force or now - self.last_noise >= self.quiet_s):
            return
        suppressed, self.suppressed, self.last_noise = self.suppressed, 0, None
        logging.getLogger("zhengming.outage").warning(
            "broker.recovered: no broker errors for %ss; %d repeated lines suppressed",
            self.quiet_s,
            suppressed,
        )


ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]


def _uuid_or_new(value: str | None) -> str:
    """Correlation ids travel into event envelopes, which take UUIDs only."""
    try:
        return str(uuid.UUID(value)) if value else str(uuid.uuid4())
    except ValueError:
        return str(uuid.uuid4())


class RequestContextMiddleware:
    """ASGI middleware: binds correlation, causation and case ids to every log line of a request.

    The correlation id comes from the `X-Correlation-ID` header or is made fresh, and is echoed
    in the response so a caller can follow its command through the services.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        correlation_id = _uuid_or_new(headers.get("x-correlation-id"))
        context = {
            "correlation_id": correlation_id,
            "causation_id": headers.get("x-causation-id"),
            "case_id": (scope.get("path_params") or {}).get("case_id") or headers.get("x-case-id"),
            "http_method": scope.get("method"),
            "http_path": scope.get("path"),
        }

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-correlation-id", correlation_id.encode("latin-1")),
                ]
            await send(message)

        with structlog.contextvars.bound_contextvars(**context):
            await self.app(scope, receive, send_with_id)
