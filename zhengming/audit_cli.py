"""`zhengming audit ...`: timeline, verify, checkpoint, replay and time travel for auditors."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console

from shared.settings import SERVICES

audit_app = typer.Typer(
    help="The audit trail: timeline, verify, checkpoint, replay, as-of.", no_args_is_help=True
)
out = Console()


@audit_app.command()
def timeline(
    case_id: str,
    jurisdiction: Annotated[
        str | None, typer.Option(help="the caller's jurisdiction (default: the case's)")
    ] = None,
    role: Annotated[
        str, typer.Option(help="the caller's role; letters_office sees the reporter")
    ] = "auditor",
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table")] = False,
) -> None:
    """Every event of one case across the four services in causal order."""
    from zhengming import audit  # here, not at import: the other commands stay fast

    j = jurisdiction or case_id.split("-")[0]
    entries = asyncio.run(audit.case_timeline(case_id, role=role, jurisdiction=j))
    if not entries:
        out.print(f"no events of {case_id} visible to {role} of {j}")
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps([e.__dict__ for e in entries], ensure_ascii=False, indent=2))
    else:
        out.print(audit.render_timeline(entries))


@audit_app.command()
def verify(
    jurisdiction: Annotated[str | None, typer.Option(help="only this jurisdiction's events")] = None,
) -> None:
    """Check every hash chain, the Kafka copy of every event and the signed checkpoints.
    Exit 0 when all holds; otherwise 1, naming the first broken link."""
    from zhengming import audit  # here, not at import: the other commands stay fast

    report = asyncio.run(audit.verify_trail(jurisdiction))
    for line in report.lines():
        out.print(line, markup=False)
    raise typer.Exit(0 if report.ok else 1)


@audit_app.command()
def checkpoint(
    service: Annotated[list[str] | None, typer.Option(help="service (repeat); default all")] = None,
) -> None:
    """Take and publish a signed checkpoint now (services also do it periodically)."""
    from zhengming import audit  # here, not at import: the other commands stay fast

    for name in service or list(SERVICES):
        taken = asyncio.run(audit.publish_checkpoint(name))
        out.print(f"{name}: {len(taken.heads)} streams, {taken.events} events, root {taken.merkle_root}")


@audit_app.command("rotate-key")
def rotate_key(
    service: Annotated[str, typer.Argument(help="intake, review, clarification or archive")],
) -> None:
    """A new signing key for a service (the old public key stays in the keyring, so what it signed
    still verifies); restart the service afterwards, and copy the new .pub to other deployments."""
    if service not in SERVICES:
        raise typer.BadParameter(f"one of {', '.join(SERVICES)}")
    from shared.settings import SigningSettings
    from shared.signing import rotate

    key = rotate(service)
    out.print(f"{service}: new key {key.key_id}; keyring {SigningSettings().keyring()}", markup=False)


@audit_app.command()
def replay(
    service: Annotated[list[str] | None, typer.Option(help="service (repeat); default all")] = None,
    jurisdiction: Annotated[str | None, typer.Option(help="only this jurisdiction's topics and rows")] = None,
    switch: Annotated[bool, typer.Option(help="switch the live read models to the rebuilt ones")] = False,
    keep_schema: Annotated[bool, typer.Option(help="keep the rebuilt schema for inspection")] = False,
) -> None:
    """Rebuild read models from Kafka offset 0 into a fresh schema and compare them with the live
    ones. Publishes nothing, renders nothing. Exit 1 when a read model differs."""
    from zhengming import audit  # here, not at import: the other commands stay fast

    equal = True
    for name in service or list(SERVICES):
        report = asyncio.run(
            audit.replay(name, jurisdiction=jurisdiction, switch=switch, keep_schema=keep_schema)
        )
        for line in report.lines():
            out.print(line, markup=False)
        equal = equal and report.equal
    raise typer.Exit(0 if equal else 1)


@audit_app.command("as-of")
def as_of_command(
    instant: Annotated[str, typer.Argument(help="ISO instant, e.g. 2023-03-31T23:59:59+08:00")],
    case: Annotated[str | None, typer.Option(help="a case id")] = None,
    person: Annotated[str | None, typer.Option(help="a subject id (一人一档)")] = None,
    statistics: Annotated[str | None, typer.Option(help="a quarter, e.g. 2023Q1")] = None,
    jurisdiction: Annotated[str | None, typer.Option(help="with --statistics: one jurisdiction")] = None,
) -> None:
    """The state of a case, a person's file or the quarterly statistics as of an instant,
    computed from the trail."""
    from zhengming import audit  # here, not at import: the other commands stay fast

    when = datetime.fromisoformat(instant)
    if when.tzinfo is None:
        raise typer.BadParameter("give a time zone, e.g. +08:00")
    if sum(x is not None for x in (case, person, statistics)) != 1:
        raise typer.BadParameter("give exactly one of --case, --person, --statistics")
    result = asyncio.run(
        audit.time_travel(when, case=case, person=person, quarter=statistics, jurisdiction=jurisdiction)
    )
    typer.echo(json.dumps(result, ensure_ascii=False, indent=2, default=str))
