"""The `zhengming` command for operators: local infrastructure, migrations and (later) services."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import warnings
from collections.abc import Collection
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from shared import settings
from shared.roles import OFFICER_ROLES
from zhengming.audit_cli import audit_app
from zhengming.dlq_cli import dlq_app
from zhengming.keys_cli import keys_app
from zhengming.users_cli import users_app

if TYPE_CHECKING:
    from zhengming.local import LocalKafka, LocalPostgres
    from zhengming.services import LocalService

# The commands import what they need when they run: `zhengming token` and `tokens` stay fast.

# The readiness probes expect refused connections while a broker boots; keep them quiet.
logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
warnings.filterwarnings("ignore", module="platformdirs")

app = typer.Typer(help="zhengming (正名): operate the clarification services.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(dlq_app, name="dlq")
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
console = Console(stderr=True)


def _kafka() -> LocalKafka:
    from zhengming.local import LocalKafka

    return LocalKafka(settings.local(), settings.kafka())


def _processes() -> list[LocalService]:
    from zhengming.services import all_services

    return all_services(settings.local(), settings.services())


def _postgres() -> LocalPostgres:
    from zhengming.local import LocalPostgres

    return LocalPostgres(settings.local(), settings.postgres())


async def _migrate_all() -> dict[str, list[str]]:
    import asyncpg

    from shared.db import migrate as run_migrations
    from shared.db import service_migrations
    from shared.directory import Directory

    conn = await asyncpg.connect(settings.postgres().dsn())
    try:
        applied = {s: await run_migrations(conn, s, service_migrations(s)) for s in settings.SERVICES}
        directory = Directory.configured()
        applied[directory.schema] = await directory.migrate(conn)
        return applied
    finally:
        await conn.close()


@app.command()
def migrate() -> None:
    """Create each service's schema and the user directory's, and apply the SQL migrations they lack."""
    for service, applied in asyncio.run(_migrate_all()).items():
        console.print(f"{service}: {', '.join(applied) if applied else 'up to date'}")


def start_infra(
    with_services: bool = False, processes: Collection[str] | None = None, ready_timeout_s: float = 60
) -> list[str]:
    """Start what is not running (with_services: the processes named, every one when None);
    returns the names of the parts this call started."""
    started: list[str] = []
    kafka, postgres = _kafka(), _postgres()
    name = "kafka" if len(kafka.nodes) == 1 else f"kafka ({len(kafka.nodes)} nodes)"
    stopped = any(kafka.node_pid(n.node_id) is None for n in kafka.nodes)
    console.print(f"{name}: starting…" if stopped else f"{name}: already running")
    if kafka.start():
        started.append("kafka")
    kafka.create_topics()
    console.print("postgres: starting…" if postgres.pid() is None else "postgres: already running")
    if postgres.start():
        started.append("postgres")
    asyncio.run(_migrate_all())
    if with_services:
        from shared.auth import AuthSettings, ensure_keys

        ensure_keys(AuthSettings())
        services = [svc for svc in _processes() if processes is None or svc.name in processes]
        for svc in services:
            if svc.start():
                started.append(svc.name)
                console.print(f"{svc.name}: starting…")
            else:
                console.print(f"{svc.name}: already running")
        for svc in services:
            svc.wait_ready(timeout_s=ready_timeout_s)
    return started


def stop_infra(parts: list[str] | None = None) -> None:
    """Stop the named parts (all when None), services first, Kafka last."""
    wanted = set(parts) if parts is not None else {"postgres", "kafka", *settings.PROCESSES}
    for svc in _processes():
        if svc.name in wanted and svc.stop():
            console.print(f"{svc.name}: stopped")
    if "postgres" in wanted and _postgres().stop():
        console.print("postgres: stopped")
    if "kafka" in wanted and _kafka().stop():
        console.print("kafka: stopped")


@app.command()
def up(
    infra_only: Annotated[bool, typer.Option(help="Kafka and PostgreSQL only, no services")] = False,
) -> None:
    """Start Kafka, PostgreSQL (migrated) and the four services unless already running; wait
    until each answers (`ZM_KAFKA_NODES=3`: a 3-node Kafka cluster)."""
    try:
        start_infra(with_services=not infra_only)
    except RuntimeError as exc:  # a part that cannot start says why, without a traceback
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    status()


@app.command()
def down() -> None:
    """Stop exactly what `up` started (by pid file)."""
    stop_infra()


@app.command()
def status() -> None:
    """Say what runs where and whether it answers."""
    table = Table("part", "running", "answering", "pid", "where")
    rows = [*_kafka().statuses(), _postgres().status()]
    rows += [svc.status() for svc in _processes()]
    for s in rows:
        table.add_row(
            s.name, "yes" if s.running else "no", "yes" if s.answering else "no", str(s.pid or "-"), s.where
        )
    Console().print(table)
    figures = consumer_figures([s.name for s in rows if s.answering and s.name in settings.SERVICES])
    if figures:
        Console().print(figures)


def consumer_figures(services: list[str]) -> Table | None:
    """Each consumer's lag and dead letters, as the services' /readyz last counted them."""
    import httpx

    table = Table("consumer", "lag", "dead letters", "pending", "as of")
    for service in services:
        try:
            ready = httpx.get(settings.services().url(service) + "/readyz", timeout=5).json()
        except (httpx.HTTPError, ValueError):
            continue
        seen = ready.get("consumer_figures")
        if not seen:
            continue
        for name, f in seen["consumers"].items():
            table.add_row(
                name,
                str(f["lag"]),
                str(f["dead_letters"]),
                str(f["dead_letters_pending"]),
                seen["as_of"][11:19],
            )
    return table if table.row_count else None


@app.command("with-infra", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def with_infra(
    ctx: typer.Context,
    keep: Annotated[bool, typer.Option(help="leave the infrastructure running afterwards")] = False,
    services: Annotated[bool, typer.Option(help="also start the four services")] = False,
) -> None:
    """Run a command with Kafka and PostgreSQL up; stop afterwards what this call started,
    also when the command fails (e.g. `zhengming with-infra -- pytest`)."""
    if not ctx.args:
        raise typer.BadParameter("give the command to run after --")
    started: list[str] = []
    code = 1
    try:
        started = start_infra(with_services=services)
        code = subprocess.call(ctx.args)
    except KeyboardInterrupt:
        code = 130
    finally:
        if not keep:
            stop_infra(started)
    sys.exit(code)


@app.command()
def serve(
    service: Annotated[str, typer.Argument(help="intake | review | clarification | archive | console")],
) -> None:
    """Run one service in the foreground (HTTP API, Kafka consumers, outbox relay), or the
    officers' console."""
    if service == "console":
        from console.main import serve as run_console

        run_console()
        return
    if service not in settings.SERVICES:
        raise typer.BadParameter(f"unknown service {service}; one of {', '.join(settings.PROCESSES)}")
    import uvloop

    from services.definitions import definition_of
    from shared.runtime import serve as run

    # The whole process on uvloop (HTTP, Kafka, PostgreSQL): asyncio's own loop costs CPU per request.
    uvloop.run(run(definition_of(service)))


@app.command()
def asyncapi(
    check: Annotated[bool, typer.Option(help="only check that docs/asyncapi is current")] = False,
) -> None:
    """Write (or check) the AsyncAPI documents of the four services under docs/asyncapi/."""
    from zhengming import asyncapi as spec

    if check:
        stale = [
            s
            for s in settings.SERVICES
            if (spec.DOCS / f"{s}.json").read_text(encoding="utf-8") != spec.render(s)
        ]
        if stale:
            console.print(f"stale: {', '.join(stale)}; run `zhengming asyncapi`")
            raise typer.Exit(1)
        return
    for path in spec.write_all():
        console.print(f"wrote {path}")


docs_app = typer.Typer(help="The API documents and their viewers, served offline.", no_args_is_help=True)
app.add_typer(docs_app, name="docs")


@docs_app.command("serve")
def docs_serve(
    port: Annotated[int, typer.Option(help="the port on 127.0.0.1")] = 8088,
) -> None:
    """Serve the four OpenAPI and the four AsyncAPI documents with Swagger UI and the AsyncAPI
    viewer on 127.0.0.1, every script from the project (`make docs-assets` builds them)."""
    import uvicorn

    from zhengming.docs import docs_app as build

    console.print(f"docs on http://127.0.0.1:{port}/")
    uvicorn.run(build(), host="127.0.0.1", port=port, log_level="warning")


@app.command()
def token(
    user: Annotated[str, typer.Option(help="user id")],
    role: Annotated[
        str,
        typer.Option(help=", ".join(OFFICER_ROLES)),
    ],
    unit: Annotated[str, typer.Option(help="the user's unit")],
    jurisdiction: Annotated[list[str], typer.Option(help="granted jurisdiction (repeat)")],
    hours: Annotated[int, typer.Option(help="validity")] = 12,
    name: Annotated[str | None, typer.Option(help="the user's name (姓名), carried as the actor's")] = None,
) -> None:
    """Mint a signed bearer token for scripts and local use (officers log in: POST /auth/login)."""
    from datetime import timedelta

    from shared.auth import Principal, mint

    principal = Principal(user_id=user, role=role, unit=unit, jurisdictions=jurisdiction, name=name)
    typer.echo(mint(principal, ttl=timedelta(hours=hours)))


@app.command()
def tokens(
    jurisdiction: Annotated[
        list[str] | None, typer.Option(help="a jurisdiction granted to the users (repeat); default 331122")
    ] = None,
    city: Annotated[
        bool, typer.Option(help="grant the city and its nine counties (the city's users)")
    ] = False,
    hours: Annotated[int, typer.Option(min=1, help="validity")] = 12,
) -> None:
    """Print one token per role (export lines for a shell) for users granted the given
    jurisdictions, or the whole city; each user is `<role>-<first jurisdiction>`."""
    from datetime import timedelta

    from shared.auth import Principal, mint
    from shared.envelope import CITY, JURISDICTIONS

    if city and jurisdiction:
        raise typer.BadParameter("give --city or --jurisdiction, not both")
    # The city's users are granted its nine counties too (as zhengming.client.Users grants them).
    city = city or jurisdiction == [CITY]
    granted = sorted(JURISDICTIONS) if city else list(dict.fromkeys(jurisdiction or ["331122"]))
    unknown = [j for j in granted if j not in JURISDICTIONS]
    if unknown:
        raise typer.BadParameter(
            f"unknown jurisdiction {', '.join(unknown)}; one of {', '.join(JURISDICTIONS)}"
        )
    first = CITY if city else granted[0]
    for role in OFFICER_ROLES:
        principal = Principal(
            user_id=f"{role}-{first}",
            role=role,
            unit=f"{JURISDICTIONS[first]}纪委监委",
            jurisdictions=granted,
        )
        typer.echo(f"export ZM_TOKEN_{role.upper()}={mint(principal, ttl=timedelta(hours=hours))}")


@app.command()
def demo(
    scale: Annotated[int, typer.Option(min=1, help="multiply the case counts (and the targets)")] = 1,
    seed: Annotated[int, typer.Option(help="seed of the generated scenario")] = 20230331,
    keep: Annotated[bool, typer.Option(help="leave the demo's stack running afterwards")] = False,
) -> None:
    """The Lishui Q1 2023 scenario on a fresh stack of its own (Kafka, PostgreSQL, the four
    services): quarterly report, documents, an audit timeline and the trail verification. Exit 0
    only when the published figures come out of the workflow and the trail verifies."""
    from zhengming.demo import run_demo

    raise typer.Exit(run_demo(scale=scale, seed=seed, keep=keep))


@app.command()
def chaos(
    cases: Annotated[int, typer.Option(min=1, help="cases carried in each run")] = 300,
    kill_every: Annotated[float, typer.Option(min=0.5, help="seconds between two disturbances")] = 10.0,
    kills: Annotated[int | None, typer.Option(min=1, help="stop after this many disturbances")] = None,
    seed: Annotated[int, typer.Option(help="seed of the cases and of what is killed when")] = 20230331,
    concurrency: Annotated[int, typer.Option(min=1, help="cases carried at once")] = 8,
) -> None:
    """A failure rehearsal: the same seeded cases on a clean stack and on one whose services are
    SIGKILLed and restarted every few seconds (the broker and PostgreSQL restarted once each);
    compares what both left and prints the table. Exit 1 on any difference."""
    from zhengming.chaos import ChaosParams, run_chaos

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    params = ChaosParams(
        cases=cases, kill_every_s=kill_every, kills=kills, seed=seed, concurrency=concurrency
    )
    raise typer.Exit(run_chaos(params))


if __name__ == "__main__":
    app()
