"""`zhengming dlq ...`: the dead letters of the running services, for operators (运维).

Every subcommand calls the service that runs the consumer (`<service>.<name>`) over its HTTP API
with the operator's bearer token (`--token` or ZM_TOKEN): the service decides who may, and only
the role `operator` may. Replay and purge are the service's (shared/dead_letters.py)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from shared import settings

dlq_app = typer.Typer(
    help="Dead letters of the running services: list, show, replay, purge (role operator).",
    no_args_is_help=True,
)
out = Console()
err = Console(stderr=True)

Token = Annotated[
    str,
    typer.Option(envvar="ZM_TOKEN", help="an operator's bearer token (env ZM_TOKEN)", show_default=False),
]
TIMEOUT_S = 90.0


def _service_of(consumer: str) -> str:
    service = consumer.split(".", 1)[0]
    if service not in settings.SERVICES:
        raise typer.BadParameter(
            f"{consumer}: a consumer is named <service>.<name>, service one of {', '.join(settings.SERVICES)}"
        )
    return service


def _call(method: str, service: str, path: str, token: str, body: dict[str, Any] | None = None) -> Any:
    import httpx

    url = settings.services().url(service) + path
    try:
        response = httpx.request(
            method, url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT_S
        )
    except httpx.HTTPError as exc:
        err.print(f"{service} does not answer at {url}: {exc!r}")
        raise typer.Exit(2) from exc
    if response.status_code >= 400:
        try:
            problem = response.json()
            err.print(f"{service}: {response.status_code} {problem.get('code')}: {problem.get('detail_en')}")
            err.print(f"{service}: {problem.get('detail_zh')}")
        except ValueError:
            err.print(f"{service}: {response.status_code} {response.text[:500]}")
        raise typer.Exit(1)
    return response.json()


def _entries_table(entries: list[dict[str, Any]]) -> Table:
    table = Table("partition", "offset", "dead-lettered", "code", "event", "from", "state", "reason")
    for e in entries:
        origin = f"{e['original_topic']}[{e['original_partition']}]@{e['original_offset']}"
        state = e["state"] + (f" ({e['replay_code']})" if e.get("replay_code") else "")
        table.add_row(
            str(e["partition"]),
            str(e["offset"]),
            e["dead_lettered_at"][:19],
            e["code"],
            e.get("event_type") or "-",
            origin,
            state,
            (e.get("replay_reason") or e["reason"])[:120],
        )
    return table


@dlq_app.command("list")
def list_(
    token: Token,
    consumer: Annotated[
        str | None, typer.Argument(help="a consumer (e.g. intake.inbound): its entries")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table")] = False,
) -> None:
    """Each consumer's dead letters (pending of all) and lag across the four services; with a
    consumer, the entries of its dead-letter topic."""
    if consumer is not None:
        entries = _call("GET", _service_of(consumer), f"/ops/dead-letters/{consumer}", token)
        if as_json:
            typer.echo(json.dumps(entries, ensure_ascii=False, indent=2))
        else:
            out.print(_entries_table(entries))
        return
    states = [s for service in settings.SERVICES for s in _call("GET", service, "/ops/consumers", token)]
    if as_json:
        typer.echo(json.dumps(states, ensure_ascii=False, indent=2))
        return
    table = Table("consumer", "dead letters", "pending", "lag", "dead-letter topic", "stopped")
    for s in states:
        table.add_row(
            s["consumer"],
            str(s["dead_letters"]),
            str(s["dead_letters_pending"]),
            str(s["lag"]),
            s["dead_letter_topic"],
            s["stopped"] or "",
        )
    out.print(table)


@dlq_app.command()
def show(
    token: Token,
    consumer: Annotated[str, typer.Argument(help="e.g. intake.inbound")],
    partition: Annotated[int, typer.Argument(min=0)],
    offset: Annotated[int, typer.Argument(min=0)],
) -> None:
    """One dead letter: why it was refused, where it came from, what replays made of it."""
    entry = _call("GET", _service_of(consumer), f"/ops/dead-letters/{consumer}/{partition}/{offset}", token)
    typer.echo(json.dumps(entry, ensure_ascii=False, indent=2))


@dlq_app.command()
def replay(
    token: Token,
    consumer: Annotated[str, typer.Argument(help="e.g. intake.inbound")],
    entry: Annotated[
        list[str] | None, typer.Option(help="PARTITION:OFFSET (repeat); default: every unsettled entry")
    ] = None,
) -> None:
    """Run dead letters through their consumer again (each is applied once: the inbox decides).
    Exit 1 when one is refused again."""
    body: dict[str, Any] = {}
    if entry:
        try:
            body["entries"] = [
                {"partition": int(p), "offset": int(o)} for p, o in (e.split(":", 1) for e in entry)
            ]
        except ValueError as exc:
            raise typer.BadParameter("--entry is PARTITION:OFFSET, e.g. 0:12") from exc
    replayed = _call("POST", _service_of(consumer), f"/ops/dead-letters/{consumer}/replay", token, body)
    out.print(_entries_table(replayed))
    out.print(
        f"replayed {len(replayed)}: "
        + ", ".join(f"{e['partition']}@{e['offset']} {e['state']}" for e in replayed)
    )
    if any(e["state"] == "failed" for e in replayed):
        raise typer.Exit(1)


@dlq_app.command()
def purge(
    token: Token,
    consumer: Annotated[str, typer.Argument(help="e.g. intake.inbound")],
    everything: Annotated[
        bool, typer.Option("--all", help="also the entries no replay settled (needs --reason)")
    ] = False,
    reason: Annotated[str | None, typer.Option(help="why (recorded with the purge)")] = None,
) -> None:
    """Delete the dead letters a replay settled (with --all, every one)."""
    result = _call(
        "POST",
        _service_of(consumer),
        f"/ops/dead-letters/{consumer}/purge",
        token,
        {"everything": everything, "reason": reason},
    )
    removed = sum(p["removed"] for p in result["partitions"])
    unresolved = sum(p["unresolved"] for p in result["partitions"])
    out.print(f"{result['topic']}: removed {removed} ({unresolved} unsettled), {result['left']} left")
