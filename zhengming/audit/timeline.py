"""A case's timeline across the four services, in causal order, and its table."""

from __future__ import annotations

import heapq
import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
from rich.markup import escape
from rich.table import Table

from shared import settings
from shared.auth import Principal, mint
from shared.envelope import JURISDICTIONS
from shared.settings import SERVICES


@dataclass
class TimelineEntry:
    """One step of a case: when, who, what, and the documents it produced."""

    service: str
    event_id: str
    event_type: str
    occurred_at: str
    recorded_at: str
    actor: dict[str, str]
    stream_id: str
    stream_version: int
    causation_id: str | None
    payload: dict[str, Any]
    hash_ok: bool
    documents: list[str] = field(default_factory=list)


def causal_order(entries: list[TimelineEntry]) -> list[TimelineEntry]:
    """Each event after its cause and after its stream predecessor; otherwise by business time,
    then by the time it was recorded."""
    by_id = {e.event_id: e for e in entries}
    after: dict[str, list[str]] = defaultdict(list)
    waiting: dict[str, int] = {e.event_id: 0 for e in entries}
    by_stream: dict[tuple[str, str], list[TimelineEntry]] = defaultdict(list)
    for e in entries:
        by_stream[(e.service, e.stream_id)].append(e)
    for stream in by_stream.values():
        stream.sort(key=lambda e: e.stream_version)
        for prev, following in itertools.pairwise(stream):
            after[prev.event_id].append(following.event_id)
            waiting[following.event_id] += 1
    for e in entries:
        if e.causation_id and e.causation_id in by_id:
            after[e.causation_id].append(e.event_id)
            waiting[e.event_id] += 1

    def rank(e: TimelineEntry) -> tuple[str, str, str]:
        return (e.occurred_at, e.recorded_at, e.event_id)

    ready = [(rank(by_id[i]), i) for i, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    ordered: list[TimelineEntry] = []
    while ready:
        _, event_id = heapq.heappop(ready)
        ordered.append(by_id[event_id])
        for nxt in after[event_id]:
            waiting[nxt] -= 1
            if waiting[nxt] == 0:
                heapq.heappush(ready, (rank(by_id[nxt]), nxt))
    return ordered


def _documents(event_type: str, payload: dict[str, Any], case_id: str) -> list[str]:
    docs = list(payload.get("documents") or [])
    if event_type == "ClarificationApproved":
        docs.append(f"{case_id}-approval_form")
    return docs


async def case_timeline(
    case_id: str, *, role: str = "auditor", jurisdiction: str, user: str | None = None
) -> list[TimelineEntry]:
    """Every event of one case in the four services, fetched over HTTP as `role` of
    `jurisdiction` (the reporter's identity is opened only for the intake role)."""
    principal = Principal(
        user_id=user or f"{role}-{jurisdiction}",
        role=role,
        unit=f"{JURISDICTIONS[jurisdiction]}纪委监委",
        jurisdictions=[jurisdiction],
    )
    headers = {"Authorization": f"Bearer {mint(principal)}"}
    entries: list[TimelineEntry] = []
    async with httpx.AsyncClient(timeout=30) as http:
        for service in SERVICES:
            url = f"{settings.services().url(service)}/audit/cases/{case_id}/events"
            response = await http.get(url, headers=headers)
            if response.status_code == 404:
                continue
            response.raise_for_status()
            for e in response.json():
                entries.append(
                    TimelineEntry(
                        service=service,
                        event_id=e["event_id"],
                        event_type=e["event_type"],
                        occurred_at=e["occurred_at"],
                        recorded_at=e["recorded_at"],
                        actor=e["actor"],
                        stream_id=e["stream_id"],
                        stream_version=e["stream_version"],
                        causation_id=e.get("causation_id"),
                        payload=e["payload"],
                        hash_ok=e["hash_ok"],
                        documents=_documents(e["event_type"], e["payload"], case_id),
                    )
                )
    return causal_order(entries)


def _what(entry: TimelineEntry) -> str:
    p = entry.payload
    reporter = p.get("reporter")
    parts: list[str] = []
    if isinstance(reporter, dict):
        if "identity" in reporter:
            parts.append(f"reporter: {reporter['identity']}")
        elif reporter.get("erased"):
            parts.append("reporter: (erased)")
        elif reporter.get("masked"):
            parts.append("reporter: (masked)")
    for key in (
        "channel",
        "method",
        "finding",
        "allegation_id",
        "state",
        "eligible",
        "passed",
        "forms",
        "level",
        "via",
        "round_id",
        "refusals",
        "reasons",
        "department",
        "visit_id",
    ):
        if key in p and p[key] not in (None, [], ""):
            parts.append(f"{key}={p[key]}")
    return ", ".join(str(x) for x in parts)


def _who(actor: dict[str, str]) -> str:
    """The actor as a reader names them: a named user by name, then id, role and unit."""
    named = f"{actor['name']} " if actor.get("name") else ""
    return f"{named}{actor['user_id']} ({actor['role']}, {actor['unit']})"


def render_timeline(entries: list[TimelineEntry]) -> Table:
    table = Table(title="audit timeline", show_lines=False)
    for column in ("when (business)", "service", "event", "who", "what", "document", "ok"):
        table.add_column(column)
    for e in entries:
        table.add_row(
            *(
                escape(cell)
                for cell in (
                    e.occurred_at[:10],
                    e.service,
                    e.event_type,
                    _who(e.actor),
                    _what(e),
                    "\n".join(e.documents),
                    "✓" if e.hash_ok else "✗",
                )
            )
        )
    return table
