"""A typed HTTP client of the four services and a driver that carries one case through the chain.

Used by `make demo` and the end-to-end tests: both go through the public interfaces only.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx

from shared.auth import Principal, mint
from shared.envelope import CITY, JURISDICTIONS
from shared.settings import ServiceSettings

Observer = Callable[[str, str, str, int, str, str], None]
"""(service, role, method, status, path, body) of every response, e.g. for confidentiality checks."""


# Answers worth another try: the server failed or is going away, or the first request with the
# same idempotency key is still running. Everything else is the answer.
RETRY_STATUSES = frozenset({500, 502, 503, 504})
RETRY_CODES = frozenset({"idempotency_key_in_use"})
# Shorter than the services' keep-alive (ZM_SERVICE_KEEP_ALIVE_S, 75 s): the client drops an idle
# connection before the server may close it, so a request is never sent into a closing socket.
KEEPALIVE_EXPIRY_S = 15.0


def new_idempotency_key() -> str:
    """A key for one logical command (IETF httpapi Idempotency-Key), sent on each of its tries."""
    return str(uuid.uuid4())


class ApiError(Exception):
    def __init__(self, method: str, url: str, status: int, body: str) -> None:
        super().__init__(f"{method} {url}: {status} {body[:500]}")
        self.status = status
        self.body = body


class Users:
    """Signed tokens for the users of each role and jurisdiction (minted with the local key)."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str], str] = {}

    def token(self, role: str, jurisdiction: str) -> str:
        """A user of the commission of `jurisdiction`; the city's users are also granted the nine
        counties (the city level oversees them and approves for city-managed cadres)."""
        key = (role, jurisdiction)
        if key not in self._tokens:
            granted = sorted(JURISDICTIONS) if jurisdiction == CITY else [jurisdiction]
            principal = Principal(
                user_id=f"{role}-{jurisdiction}",
                role=role,
                unit=f"{JURISDICTIONS[jurisdiction]}纪委监委",
                jurisdictions=granted,
            )
            self._tokens[key] = mint(principal)
        return self._tokens[key]


class Client:
    """HTTP calls as a given role of a given jurisdiction.

    Every POST carries an `Idempotency-Key`, generated once per command and sent again on each
    retry, so a retry never applies a command twice. Connection errors (also a kept-alive
    connection the server closed meanwhile), timeouts and 5xx answers are retried with
    exponential backoff until `retry_deadline_s` has passed; GETs are retried the same way.
    """

    def __init__(
        self,
        services: ServiceSettings,
        users: Users,
        observer: Observer | None = None,
        *,
        retry_deadline_s: float = 30.0,
        retry_initial_s: float = 0.1,
        retry_max_s: float = 2.0,
    ) -> None:
        self.services = services
        self.users = users
        self.observer = observer
        self.retry_deadline_s = retry_deadline_s
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.http = httpx.AsyncClient(
            timeout=60, limits=httpx.Limits(max_connections=50, keepalive_expiry=KEEPALIVE_EXPIRY_S)
        )
        self.calls = 0
        self.retries = 0

    async def close(self) -> None:
        await self.http.aclose()

    async def request(
        self,
        method: str,
        service: str,
        path: str,
        *,
        role: str,
        jurisdiction: str,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        url = self.services.url(service) + path
        headers = {"Authorization": f"Bearer {self.users.token(role, jurisdiction)}"}
        if method.upper() == "POST":
            headers["Idempotency-Key"] = f'"{idempotency_key or new_idempotency_key()}"'
        deadline = time.monotonic() + self.retry_deadline_s
        delay = self.retry_initial_s
        while True:
            try:
                response = await self.http.request(method, url, json=body, params=params, headers=headers)
            except httpx.TransportError:
                if time.monotonic() + delay > deadline:
                    raise
            else:
                if not _worth_retrying(response) or time.monotonic() + delay > deadline:
                    break
            self.retries += 1
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, self.retry_max_s)
        self.calls += 1
        if self.observer is not None:
            self.observer(service, role, method, response.status_code, path, response.text)
        return response

    async def ok(
        self,
        method: str,
        service: str,
        path: str,
        *,
        role: str,
        jurisdiction: str,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        response = await self.request(
            method,
            service,
            path,
            role=role,
            jurisdiction=jurisdiction,
            body=body,
            params=params,
            idempotency_key=idempotency_key,
        )
        if response.status_code >= 300:
            raise ApiError(method, path, response.status_code, response.text)
        return response.json() if response.content else None

    async def eventually(self, what: str, check: Callable[[], Awaitable[Any]], timeout_s: float = 60) -> Any:
        """Poll until `check` returns something truthy: events cross Kafka asynchronously."""
        deadline = time.monotonic() + timeout_s
        last: Any = None
        while time.monotonic() < deadline:
            last = await check()
            if last:
                return last
            await asyncio.sleep(0.1)
        raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}; last: {last!r}")

    async def get_if(self, service: str, path: str, *, role: str, jurisdiction: str) -> Any:
        """GET that answers None on 404 (not there yet)."""
        response = await self.request("GET", service, path, role=role, jurisdiction=jurisdiction)
        if response.status_code == 404:
            return None
        if response.status_code >= 300:
            raise ApiError("GET", path, response.status_code, response.text)
        return response.json()


def _worth_retrying(response: httpx.Response) -> bool:
    if response.status_code in RETRY_STATUSES:
        return True
    if response.status_code == 409:
        try:
            return isinstance(body := response.json(), dict) and body.get("code") in RETRY_CODES
        except ValueError:
            return False
    return False


def iso(day: date) -> str:
    return day.isoformat()


@dataclass
class Reporter:
    name: str
    contact: str
    id_number: str | None = None


@dataclass
class CasePlan:
    """One report and how far and which way it goes through the chain."""

    jurisdiction: str
    subject: dict[str, Any]
    allegations: list[str]
    findings: list[str]  # one per allegation
    received_on: date
    channel: str = "letter"
    reporter: Reporter | None = None
    handled_on: date | None = None
    concluded_on: date | None = None
    # clarification path
    clarify: bool = False
    consent: bool = True
    bad_effects: list[str] = field(default_factory=lambda: ["repeated_reports"])
    effect_only_from_interviews: bool = False
    fail_re_review_once: bool = False
    approve_on: date | None = None
    forms: list[str] = field(default_factory=lambda: ["written_notice", "face_to_face"])
    false_accusation_point: int | None = None
    green_channel_before_conclusion: bool = False
    via_inbound: bool = False


@dataclass
class CaseResult:
    case_id: str
    state: str
    steps: list[str] = field(default_factory=list)


class Driver:
    """Carries case plans through intake, review and clarification over HTTP."""

    def __init__(self, client: Client) -> None:
        self.c = client

    async def register(self, plan: CasePlan) -> str:
        j = plan.jurisdiction
        body = {
            "jurisdiction": j,
            "channel": plan.channel,
            "received_on": iso(plan.received_on),
            "real_name": plan.reporter is not None,
            "reporter": None
            if plan.reporter is None
            else {
                "name": plan.reporter.name,
                "contact": plan.reporter.contact,
                **({"id_number": plan.reporter.id_number} if plan.reporter.id_number else {}),
            },
            "subjects": [plan.subject],
            "allegations": [{"summary": s} for s in plan.allegations],
            "summary": "；".join(plan.allegations)[:500],
        }
        report = await self.c.ok(
            "POST", "intake", "/reports", role="letters_office", jurisdiction=j, body=body
        )
        return str(report["report_id"])

    async def intake(self, plan: CasePlan, case_id: str) -> None:
        j, day = plan.jurisdiction, plan.received_on
        await self.c.ok(
            "POST",
            "intake",
            f"/reports/{case_id}/log",
            role="letters_office",
            jurisdiction=j,
            body={"logged_on": iso(day)},
        )
        await self.c.ok(
            "POST",
            "intake",
            f"/reports/{case_id}/accept",
            role="letters_office",
            jurisdiction=j,
            body={"accepted_on": iso(day + timedelta(days=1))},
        )
        await self.c.ok(
            "POST",
            "intake",
            f"/reports/{case_id}/hand-over",
            role="letters_office",
            jurisdiction=j,
            body={"department": "第一监督检查室", "handed_on": iso(day + timedelta(days=2))},
        )

    async def wait_verification(self, plan: CasePlan, case_id: str) -> dict[str, Any]:
        path = f"/verifications/{case_id}"
        result: dict[str, Any] = await self.c.eventually(
            f"verification {case_id} opened",
            lambda: self.c.get_if("review", path, role="handling_department", jurisdiction=plan.jurisdiction),
        )
        return result

    async def verify(self, plan: CasePlan, case_id: str) -> None:
        j = plan.jurisdiction
        verification = await self.wait_verification(plan, case_id)
        decided = plan.handled_on or plan.received_on + timedelta(days=5)
        await self.c.ok(
            "POST",
            "review",
            f"/verifications/{case_id}/decision",
            role="handling_department",
            jurisdiction=j,
            body={
                "method": "preliminary_verification",
                "decided_on": iso(decided),
                "approved_by": f"head-{j}",
                "collective": True,
            },
        )
        concluded = plan.concluded_on or decided + timedelta(days=20)
        for index, (allegation, finding) in enumerate(
            zip(verification["allegations"], plan.findings, strict=True)
        ):
            body: dict[str, Any] = {
                "allegation_id": allegation["allegation_id"],
                "finding": finding,
                "basis": "经初步核实，"
                + {
                    "untrue": "反映问题失实",
                    "true": "反映问题属实",
                    "partly_true": "反映问题部分属实",
                    "not_proven": "查无实据",
                    "honest_mistake": "系错告",
                    "false_accusation": "涉嫌诬告陷害",
                }[finding],
            }
            body["found_on"] = iso(max(decided, concluded - timedelta(days=1)))
            if finding == "false_accusation" or index == plan.false_accusation_point:
                body.update(
                    approved_by=f"head-{CITY}",
                    approval_jurisdiction=CITY,
                    referred_on=iso(concluded - timedelta(days=1)),
                )
            await self.c.ok(
                "POST",
                "review",
                f"/verifications/{case_id}/findings",
                role="handling_department",
                jurisdiction=j,
                body=body,
            )
        await self.c.ok(
            "POST",
            "review",
            f"/verifications/{case_id}/conclude",
            role="handling_department",
            jurisdiction=j,
            body={"concluded_on": iso(concluded)},
        )

    async def clarification(self, plan: CasePlan, case_id: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = await self.c.get_if(
            "clarification",
            f"/clarifications/{case_id}",
            role="handling_department",
            jurisdiction=plan.jurisdiction,
        )
        return found

    async def wait_state(self, plan: CasePlan, case_id: str, states: set[str], timeout_s: float = 60) -> str:
        async def check() -> str | None:
            current = await self.clarification(plan, case_id)
            return current["state"] if current and current["state"] in states else None

        state: str = await self.c.eventually(f"{case_id} in {sorted(states)}", check, timeout_s)
        return state

    async def clarify_until_approved(self, plan: CasePlan, case_id: str, start: date) -> str:
        """Start, assess, re-review, approve. Returns the state reached ("approved" or "refused")."""
        j = plan.jurisdiction
        base = f"/clarifications/{case_id}"
        await self.wait_state(plan, case_id, {"candidate"})
        subject_id = plan.subject.get("subject_id") or (await self.clarification(plan, case_id) or {}).get(
            "outcome", {}
        ).get("subjects", [{}])[0].get("subject_id")
        await self.c.ok(
            "POST",
            "clarification",
            f"{base}/start",
            role="handling_department",
            jurisdiction=j,
            body={
                "initiated_by": "department",
                "person_subject_id": subject_id,
                "consent": plan.consent,
                "consent_note": "本人同意澄清",
                "started_on": iso(start),
            },
        )
        assessed = await self.c.ok(
            "POST",
            "clarification",
            f"{base}/assess",
            role="handling_department",
            jurisdiction=j,
            body={
                "assessed_on": iso(start + timedelta(days=1)),
                "bad_effects": plan.bad_effects,
                "effect_only_from_interviews": plan.effect_only_from_interviews,
            },
        )
        if not assessed["eligible"]:
            return "refused"
        members = {"letters_office": f"letters-{j}", "case_trial": f"trial-{j}", "case_management": f"cm-{j}"}
        review_day = start + timedelta(days=2)
        if plan.fail_re_review_once:
            await self.c.ok(
                "POST",
                "clarification",
                f"{base}/re-review",
                role="case_trial",
                jurisdiction=j,
                body={
                    "reviewed_on": iso(review_day),
                    "verification_complete": False,
                    "conclusion_clear": True,
                    "disposal_adequate": True,
                    "expected_effect": "澄清后可消除不良影响",
                    "members": members,
                },
            )
            review_day += timedelta(days=1)
        await self.c.ok(
            "POST",
            "clarification",
            f"{base}/re-review",
            role="case_trial",
            jurisdiction=j,
            body={
                "reviewed_on": iso(review_day),
                "verification_complete": True,
                "conclusion_clear": True,
                "disposal_adequate": True,
                "expected_effect": "澄清后可消除不良影响，激励干部担当作为",
                "members": members,
            },
        )
        approver_j = CITY if plan.subject.get("cadre_level") == "city" else j
        await self.c.ok(
            "POST",
            "clarification",
            f"{base}/approve",
            role="head",
            jurisdiction=approver_j,
            body={"approved_on": iso(plan.approve_on or review_day + timedelta(days=1))},
        )
        return "approved"

    async def finish(self, plan: CasePlan, case_id: str, performed_on: date) -> None:
        """Feedback, acknowledgement and filing after the clarification was performed."""
        j = plan.jurisdiction
        base = f"/clarifications/{case_id}"
        await self.c.ok(
            "POST",
            "clarification",
            f"{base}/feedback",
            role="handling_department",
            jurisdiction=j,
            body={
                "given_on": iso(performed_on + timedelta(days=1)),
                "party_committee": f"{plan.subject.get('unit') or plan.subject['name']}党委",
                "unit_head": "单位主要负责人",
            },
        )
        await self.c.ok(
            "POST",
            "clarification",
            f"{base}/acknowledge",
            role="handling_department",
            jurisdiction=j,
            body={"acknowledged_on": iso(performed_on + timedelta(days=1)), "note": "本人已知悉澄清结果"},
        )
        await self.c.ok(
            "POST",
            "clarification",
            f"{base}/file",
            role="case_management",
            jurisdiction=j,
            body={"filed_on": iso(performed_on + timedelta(days=2))},
        )
