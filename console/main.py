"""`zhengming serve console`: the console in the foreground, beside the four services it calls."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from console.app import build_console
from console.settings import console_settings
from shared import settings
from shared.logging import configure_logging, get_logger

log = get_logger(__name__)


def served_console() -> FastAPI:
    app = build_console(console_settings(), settings.services())

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> dict[str, str]:
        # The console holds no state of its own: it is ready when it answers (a service that does
        # not answer shows on the page that needs it, and on /operations).
        return {"status": "ready"}

    return app


def serve() -> None:
    configure_logging("console")
    svc = settings.services()
    log.info("console.start", url=svc.url("console"))
    uvicorn.run(
        served_console(),
        host=svc.host,
        port=svc.port("console"),
        log_config=None,
        access_log=False,
        timeout_keep_alive=svc.keep_alive_s,
        http="httptools",  # the C parser and loop: h11 and asyncio's loop cost CPU per request
        loop="uvloop",
    )
