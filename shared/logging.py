"""structlog configured once: JSON when not on a terminal, context bound per message and request."""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import structlog

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
        _configured = True
    structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)


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
