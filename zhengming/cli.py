"""The `zhengming` command for operators: local infrastructure, migrations and (later) services."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import warnings
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from shared import settings
from shared.db import migrate as run_migrations
from shared.db import service_migrations
from zhengming.local import LocalKafka, LocalPostgres

# The readiness probes expect refused connections while a broker boots; keep them quiet.
logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
warnings.filterwarnings("ignore", module="platformdirs")

app = typer.Typer(help="zhengming (正名): operate the clarification services.", no_args_is_help=True)
console = Console(stderr=True)


def _kafka() -> LocalKafka:
    return LocalKafka(settings.local(), settings.kafka())


def _postgres() -> LocalPostgres:
    return LocalPostgres(settings.local(), settings.postgres())


async def _migrate_all() -> dict[str, list[str]]:
    import asyncpg

    conn = await asyncpg.connect(settings.postgres().dsn())
    try:
        return {s: await run_migrations(conn, s, service_migrations(s)) for s in settings.SERVICES}
    finally:
        await conn.close()


@app.command()
def migrate() -> None:
    """Create each service's schema and apply the SQL migrations it lacks."""
    for service, applied in asyncio.run(_migrate_all()).items():
        console.print(f"{service}: {', '.join(applied) if applied else 'up to date'}")


def start_infra() -> list[str]:
    """Start what is not running; returns the names of the parts this call started."""
    started: list[str] = []
    kafka, postgres = _kafka(), _postgres()
    console.print("kafka: starting…" if kafka.pid() is None else "kafka: already running")
    if kafka.start():
        started.append("kafka")
    kafka.create_topics()
    console.print("postgres: starting…" if postgres.pid() is None else "postgres: already running")
    if postgres.start():
        started.append("postgres")
    asyncio.run(_migrate_all())
    return started


def stop_infra(parts: list[str] | None = None) -> None:
    """Stop the named parts (all when None), services first, Kafka last."""
    wanted = set(parts) if parts is not None else {"postgres", "kafka"}
    if "postgres" in wanted and _postgres().stop():
        console.print("postgres: stopped")
    if "kafka" in wanted and _kafka().stop():
        console.print("kafka: stopped")


@app.command()
def up() -> None:
    """Start Kafka and PostgreSQL (and migrate) unless already running; wait until they answer."""
    start_infra()
    status()


@app.command()
def down() -> None:
    """Stop exactly what `up` started (by pid file)."""
    stop_infra()


@app.command()
def status() -> None:
    """Say what runs where and whether it answers."""
    table = Table("part", "running", "answering", "pid", "where")
    rows = [_kafka().status(), _postgres().status()]
    for s in rows:
        table.add_row(
            s.name, "yes" if s.running else "no", "yes" if s.answering else "no", str(s.pid or "-"), s.where
        )
    Console().print(table)


@app.command("with-infra", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def with_infra(
    ctx: typer.Context,
    keep: Annotated[bool, typer.Option(help="leave the infrastructure running afterwards")] = False,
) -> None:
    """Run a command with Kafka and PostgreSQL up; stop afterwards what this call started,
    also when the command fails (e.g. `zhengming with-infra -- pytest`)."""
    if not ctx.args:
        raise typer.BadParameter("give the command to run after --")
    started: list[str] = []
    code = 1
    try:
        started = start_infra()
        code = subprocess.call(ctx.args)
    except KeyboardInterrupt:
        code = 130
    finally:
        if not keep:
            stop_infra(started)
    sys.exit(code)


if __name__ == "__main__":
    app()
