"""Docs offline (issue 13): `zhengming docs serve` and each service's /docs load nothing from the
internet. Every page's script, style, image and link is relative or on loopback and is served; and
in Debian's Chromium (driven by Playwright) each viewer renders its document while every request
the browser makes stays on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from shared import settings
from shared.openapi import VENDOR
from zhengming.docs import docs_app, offline_app

CHROMIUM = Path("/usr/bin/chromium")
LOOPBACK = {"127.0.0.1", "localhost"}

pytestmark = pytest.mark.skipif(
    not (VENDOR / "swagger-ui-bundle.js").exists(), reason="viewers not built: run `make docs-assets`"
)


class References(HTMLParser):
    """Every URL a page refers to: scripts, styles, images, links."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and (
                (tag in {"script", "img", "iframe"} and name == "src")
                or (tag in {"link", "a"} and name == "href")
            ):
                self.urls.append(value)


def references(page: str) -> list[str]:
    parser = References()
    parser.feed(page)
    return parser.urls


def on_loopback(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in {"", "http", "https", "data", "blob"} and (
        parts.scheme in {"data", "blob"} or not parts.netloc or parts.hostname in LOOPBACK
    )


async def crawl(client: httpx.AsyncClient, start: str) -> set[str]:
    """Every page and asset reachable from `start` on the same host; fails on an external one."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        url = todo.pop()
        if url in seen:
            continue
        seen.add(url)
        response = await client.get(url)
        assert response.status_code == 200, f"{url}: {response.status_code}"
        if response.headers["content-type"].startswith("text/html"):
            for ref in references(response.text):
                assert on_loopback(ref), f"{url} refers to {ref}"
                todo.append(urljoin(url, ref).split("#")[0])
    return seen


@pytest.fixture(scope="module")
async def docs() -> AsyncIterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(docs_app(), lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    await task


async def test_docs_serve_refers_to_nothing_outside(docs: str) -> None:
    async with httpx.AsyncClient(base_url=docs) as client:
        seen = await crawl(client, f"{docs}/")
        for service in settings.SERVICES:
            assert f"{docs}/openapi/{service}" in seen and f"{docs}/asyncapi/{service}" in seen
            document = (await client.get(f"/openapi/{service}.json")).json()
            assert document["components"]["schemas"]["Problem"]
        assert (
            f"{docs}/assets/swagger-ui-bundle.js" in seen and f"{docs}/assets/asyncapi-standalone.js" in seen
        )


@pytest.mark.parametrize("service", settings.SERVICES)
async def test_each_service_docs_use_its_own_assets(service: str) -> None:
    app: FastAPI = offline_app(service)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=f"http://{service}"
    ) as client:
        seen = await crawl(client, f"http://{service}/docs")
        assert f"http://{service}/docs/assets/swagger-ui-bundle.js" in seen
        assert (await client.get("/redoc")).status_code == 404


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (make system)")
async def test_viewers_render_in_a_browser_without_the_internet(docs: str) -> None:
    from playwright.async_api import async_playwright

    requested: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = await browser.new_page()
            page.on("request", lambda request: requested.append(request.url))
            for service in settings.SERVICES:
                await page.goto(f"{docs}/openapi/{service}")
                # Swagger UI rendered the document's operations (each with its x-roles shown).
                await page.locator(".opblock").first.wait_for(timeout=60_000)
                await page.goto(f"{docs}/asyncapi/{service}")
                # The viewer rendered the document (or what its parser says of it: issue 13 item 4).
                await page.wait_for_function(
                    "document.querySelector('#asyncapi').innerText.trim().length > 0", timeout=60_000
                )
        finally:
            await browser.close()
    outside = [url for url in requested if not on_loopback(url)]
    assert requested and not outside, outside
