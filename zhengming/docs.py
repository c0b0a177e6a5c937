"""`zhengming docs serve`: the four OpenAPI and the four AsyncAPI documents with their viewers, every
script and style served from the project's own assets (the docs work on an intranet)."""

from __future__ import annotations

import html
import json
from typing import Any, cast

from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.staticfiles import StaticFiles

from shared import settings
from shared.openapi import VENDOR, missing_assets, swagger_page
from shared.runtime import Runtime, served_app

ASYNCAPI = settings.PROJECT_ROOT / "docs" / "asyncapi"


def offline_app(service: str) -> FastAPI:
    """A service's HTTP app as it is served, built without a database (the routes only reach the
    runtime when called): for its OpenAPI document and /docs page, never for requests."""
    from services.definitions import definition_of

    placeholder = cast(Any, None)
    runtime = Runtime(
        service=service, pool=placeholder, store=placeholder, cipher=placeholder, jurisdictions=[]
    )
    return served_app(definition_of(service), runtime)


def openapi_document(service: str) -> dict[str, Any]:
    """A service's OpenAPI document as the service serves it at /openapi.json."""
    return offline_app(service).openapi()


def _page(title: str, body: str, head: str = "") -> HTMLResponse:
    return HTMLResponse(
        f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<link rel="icon" href="/assets/favicon-32x32.png">{head}</head><body>{body}</body></html>'
    )


def asyncapi_page(service: str) -> HTMLResponse:
    if not (VENDOR / "asyncapi-standalone.js").exists():
        return missing_assets()
    config = {"schema": {"url": f"/asyncapi/{service}.json"}, "config": {"show": {"sidebar": True}}}
    return _page(
        f"zhengming {service} — AsyncAPI",
        '<div id="asyncapi"></div><script src="/assets/asyncapi-standalone.js"></script>'
        f"<script>AsyncApiStandalone.render({json.dumps(config)}, "
        "document.getElementById('asyncapi'));</script>",
        '<link rel="stylesheet" href="/assets/asyncapi.css">',
    )


def docs_app() -> FastAPI:
    """The documents and their viewers; the OpenAPI documents are built once, at start."""
    openapi = {service: openapi_document(service) for service in settings.SERVICES}
    app = FastAPI(title="zhengming docs", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/assets", StaticFiles(directory=VENDOR, check_dir=False), name="assets")

    def known(service: str) -> str:
        if service not in openapi:
            raise HTTPException(404)
        return service

    @app.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        rows = "".join(
            f"<li>{s}: <a href='/openapi/{s}'>HTTP (OpenAPI)</a>"
            f" · <a href='/asyncapi/{s}'>Kafka (AsyncAPI)</a>"
            f" · <a href='/openapi/{s}.json'>openapi.json</a>"
            f" · <a href='/asyncapi/{s}.json'>asyncapi.json</a></li>"
            for s in openapi
        )
        return _page(
            "zhengming 接口文档 / API docs", f"<h1>zhengming 接口文档 / API docs</h1><ul>{rows}</ul>"
        )

    @app.get("/openapi/{service}.json")
    async def openapi_json(service: str) -> JSONResponse:
        return JSONResponse(openapi[known(service)])

    @app.get("/openapi/{service}", response_class=HTMLResponse)
    async def openapi_viewer(service: str) -> HTMLResponse:
        return swagger_page(f"zhengming {known(service)} — OpenAPI", f"/openapi/{service}.json", "/assets")

    @app.get("/asyncapi/{service}.json")
    async def asyncapi_json(service: str) -> JSONResponse:
        return JSONResponse(json.loads((ASYNCAPI / f"{known(service)}.json").read_text(encoding="utf-8")))

    @app.get("/asyncapi/{service}", response_class=HTMLResponse)
    async def asyncapi_viewer(service: str) -> HTMLResponse:
        return asyncapi_page(known(service))

    return app
