"""待办: what waits for the logged-in user in their jurisdictions, with the date it is due on the
working-day calendar (shared.workdays), overdue first. Read from the services' lists with the
user's own token, so a user sees exactly what the services let them see."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from console.actions import RE_REVIEW_OFFICES, RE_REVIEW_OPEN, has_step, signed_offices
from console.backend import Backend
from console.labels import intake_overdue
from console.session import Session
from services.clarification.domain import WITHDRAWABLE
from services.intake.domain import disposition_due
from shared.envelope import CITY
from shared.errors import OutOfRange

VISITS_AHEAD = 14
"""Return visits show in 待办 this many days before they fall due."""
DETAIL_LIMIT = 60
"""At most this many matters are read one by one for a list (signatures, 澄清内容, feedback)."""


@dataclass(frozen=True)
class Task:
    what: str
    case_id: str
    about: str
    jurisdiction: str
    due: date | None = None
    since: date | None = None

    def overdue(self, today: date) -> bool:
        return self.due is not None and self.due < today

    def days_left(self, today: date) -> int | None:
        return None if self.due is None else (self.due - today).days


def _d(value: Any) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) and value else None


def _due(rule: Callable[[date], date], since: date | None) -> date | None:
    """A due date by the working-day rule, or none where the calendar does not know the year."""
    if since is None:
        return None
    try:
        return rule(since)
    except OutOfRange:
        return None


def _about(view: dict[str, Any]) -> str:
    person = view.get("person") or (view.get("subjects") or [{}])[0]
    parts = [person.get("name"), person.get("unit"), person.get("post")]
    return "，".join(str(p) for p in parts if p)


class TaskList:
    def __init__(self, backend: Backend, session: Session, today: date) -> None:
        self.b = backend
        self.s = session
        self.today = today

    async def _get(self, service: str, path: str, **params: Any) -> Any:
        """A list (or view) of a service; empty when it is not the user's or the service is away
        (the page then names the service that did not answer)."""
        return await self.b.get_or_none(self.s.token, service, path, params) or []

    async def collect(self) -> list[Task]:
        role = self.s.role
        places = sorted(self.s.jurisdictions)
        found = await asyncio.gather(*(self._for(role, j) for j in places), self._approvals())
        tasks = [t for part in found for t in part]
        far = date.max
        return sorted(tasks, key=lambda t: (not t.overdue(self.today), t.due or far, t.case_id))

    async def _for(self, role: str, j: str) -> list[Task]:
        parts: list[list[Task]] = []
        if role == "letters_office":
            parts += await asyncio.gather(self._reports(j), self._intake_overdue(j))
        if role == "handling_department":
            parts += await asyncio.gather(self._verifications(j, role), self._visits(j))
        if role == "head":
            parts.append(await self._verifications(j, role))
        if role in ("handling_department", "case_trial", "case_management", "letters_office"):
            parts.append(await self._clarifications(j, role))
        if role == "case_management":
            parts.append(await self._visits(j))
        return [t for p in parts for t in p]

    async def _reports(self, j: str) -> list[Task]:
        out = []
        # By state: the reports still to dispose of, however many the jurisdiction holds in all.
        lists = await asyncio.gather(
            *(
                self._get("intake", "/reports", jurisdiction=j, state=s)
                for s in ("received", "logged", "accepted")
            )
        )
        for r in (r for rows in lists for r in rows):
            state, about = r["state"], _about(r)
            if state == "received":
                out.append(Task("登记", r["report_id"], about, j, _d(r["received_on"]), _d(r["received_on"])))
            elif state == "logged":
                logged = _d(r.get("logged_on"))
                due = _due(disposition_due, logged)
                out.append(Task("受理或分流", r["report_id"], about, j, due, logged))
            elif state == "accepted":
                out.append(Task("移送承办部门", r["report_id"], about, j, None, _d(r.get("logged_on"))))
        return out

    async def _intake_overdue(self, j: str) -> list[Task]:
        rows = await self._get("intake", "/overdue", jurisdiction=j, as_of=self.today.isoformat())
        return [Task(intake_overdue(o["kind"]), o["report_id"], "", j, _d(o["due_on"])) for o in rows]

    async def _verifications(self, j: str, role: str) -> list[Task]:
        out = []
        for v in await self._get("review", "/verifications", jurisdiction=j):
            about, opened = _about(v), _d(v.get("opened_on"))
            if role == "handling_department":
                if v["state"] == "open":
                    out.append(Task("提出处置方式", v["case_id"], about, j, None, opened))
                elif v["state"] in ("decided", "reopened"):
                    what = "补充核查并办结" if v["state"] == "reopened" else "认定问题并办结"
                    out.append(Task(what, v["case_id"], about, j, None, opened))
                for o in v.get("objections") or []:
                    if o.get("examined_on") is None:
                        out.append(
                            Task("复查检举人异议", v["case_id"], about, j, None, _d(o.get("lodged_on")))
                        )
            if role == "head" and v["state"] == "proposed":
                out.append(Task("审批处置方式", v["case_id"], about, j, None, opened))
        return out

    async def _clarifications(self, j: str, role: str) -> list[Task]:
        matters = await self._get("clarification", "/clarifications", jurisdiction=j)
        out: list[Task] = []
        detail: list[dict[str, Any]] = []
        for m in matters:
            state, about, case_id = m["state"], _about(m), m["case_id"]
            if role == "handling_department":
                if state == "candidate":
                    out.append(
                        Task("启动澄清（征求本人意见）", case_id, about, j, None, _d(m.get("added_on")))
                    )
                elif state == "started":
                    out.append(Task("拟定澄清内容、评估", case_id, about, j, None, _d(m.get("added_on"))))
                elif state in ("sent_back", "returned_by_head"):
                    out.append(
                        Task("按退回意见完善，重新复核", case_id, about, j, None, _d(m.get("added_on")))
                    )
                elif state == "approved":
                    out.append(
                        Task("实施澄清", case_id, about, j, _d(m.get("clarify_by")), _d(m.get("approved_on")))
                    )
                elif state == "performed":
                    performed = _d(m.get("performed_on"))
                    out.append(Task("反馈单位、告知本人", case_id, about, j, None, performed))
            needs_detail = (
                (role in RE_REVIEW_OFFICES and state in RE_REVIEW_OPEN)
                or (role == "case_trial" and state in WITHDRAWABLE)
                or (role == "case_management" and state == "performed")
            )
            if needs_detail:
                detail.append(m)
        views = await asyncio.gather(
            *(self._get("clarification", f"/clarifications/{m['case_id']}") for m in detail[:DETAIL_LIMIT])
        )
        for view in views:
            if not view:
                continue
            case_id, about, state = view["case_id"], _about(view), view["state"]
            if (
                role in RE_REVIEW_OFFICES
                and state in RE_REVIEW_OPEN
                and view.get("eligible")
                and role not in signed_offices(view)
            ):
                out.append(Task("复核签署", case_id, about, j, None, None))
            if role == "case_trial" and (view.get("content") or {}).get("state") == "drafted":
                out.append(
                    Task("审核澄清内容", case_id, about, j, None, _d(view["content"].get("drafted_on")))
                )
            if (
                role == "case_management"
                and state == "performed"
                and has_step(view, "feedback")
                and has_step(view, "acknowledged")
            ):
                out.append(Task("备案", case_id, about, j, None, _d(view.get("performed_on"))))
        return out

    async def _approvals(self) -> list[Task]:
        """What a head approves wherever it is: the clarifications that are theirs to approve (the
        city's head: every county's city-managed cadres) and, for the city's head, every county's
        诬告陷害 (市级以上审批)."""
        if self.s.role != "head":
            return []
        out = [
            Task("审批澄清", m["case_id"], _about(m), m["jurisdiction"], None, _d(m.get("added_on")))
            for m in await self._get("clarification", "/clarifications/awaiting-approval")
        ]
        if CITY in self.s.jurisdictions:
            for v in await self._get("review", "/false-accusations/awaiting-approval"):
                opened = _d(v.get("opened_on"))
                out.append(
                    Task("审批诬告陷害认定（市级）", v["case_id"], _about(v), v["jurisdiction"], None, opened)
                )
        return out

    async def _visits(self, j: str) -> list[Task]:
        """Return visits due within VISITS_AHEAD days or overdue, not yet recorded."""
        ahead = (self.today + timedelta(days=VISITS_AHEAD)).isoformat()
        found = await self._get("archive", "/visits/overdue", jurisdiction=j, as_of=ahead)
        rows = found.get("visits", []) if isinstance(found, dict) else []
        who = {"person": "回访本人", "unit": "回访所在单位"}
        return [Task(who.get(v["visit_with"], "回访"), v["case_id"], "", j, _d(v["due_on"])) for v in rows]
