"""The four services' HTTP apps in process, each on a real runtime (fresh schema) on the real
database, with the health and audit routes `serve` adds; no broker (commands only write the outbox)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from functools import partial

import asyncpg
import httpx
from fastapi import FastAPI

from services.archive.main import definition as archive
from services.clarification.api import build_api as clarification_api
from services.clarification.main import definition as clarification
from services.clarification.reporters import IntakeIdentityCheck
from services.clarification.settings import IntakeSettings
from services.intake.main import definition as intake
from services.review.main import definition as review
from shared import settings
from shared.auth import Principal, mint
from shared.runtime import Runtime, ServiceDefinition, open_runtime, served_app

DEFINITIONS: dict[str, ServiceDefinition] = {d.name: d for d in (intake, review, clarification, archive)}


@dataclass
class ServiceApp:
    name: str
    schema: str
    runtime: Runtime
    app: FastAPI
    client: httpx.AsyncClient


def checked_api(runtime: Runtime, *, check: IntakeIdentityCheck) -> FastAPI:
    return clarification_api(runtime, check)


@asynccontextmanager
async def service_apps(*names: str) -> AsyncIterator[dict[str, ServiceApp]]:
    """The named services (default: all four), torn down with their schemas afterwards."""
    out: dict[str, ServiceApp] = {}
    try:
        for name in names or tuple(DEFINITIONS):
            definition = DEFINITIONS[name]
            if name == "clarification" and "intake" in out:
                # The 澄清内容 is checked by the intake running beside it, as in a deployment.
                check = IntakeIdentityCheck(IntakeSettings(url="http://intake"), out["intake"].client)
                definition = replace(definition, build_api=partial(checked_api, check=check))
            schema = f"t_{name[:4]}_{uuid.uuid4().hex[:10]}"
            runtime = await open_runtime(definition, schema=schema)
            app = served_app(definition, runtime)
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}")
            out[name] = ServiceApp(name, schema, runtime, app, client)
        yield out
    finally:
        conn = await asyncpg.connect(settings.postgres().dsn())
        try:
            for svc in out.values():
                await svc.client.aclose()
                await svc.runtime.pool.close()
                await conn.execute(f"DROP SCHEMA {svc.schema} CASCADE")
        finally:
            await conn.close()


def bearer(role: str, *jurisdictions: str, user: str | None = None) -> dict[str, str]:
    principal = Principal(
        user_id=user or f"u-{role}",
        role=role,
        unit="缙云县纪委监委",
        jurisdictions=list(jurisdictions or ["331122"]),
    )
    return {"Authorization": f"Bearer {mint(principal)}"}
