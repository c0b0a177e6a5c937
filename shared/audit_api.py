"""Audit endpoints every service serves for its own store: a case's events (reporter identity
masked unless the caller holds the intake role of that jurisdiction) and its hash-chain check."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI

from shared import rejections
from shared.auth import Principal
from shared.bounded import Identifier
from shared.crypto import SealedField
from shared.db import Conn
from shared.envelope import matter_of
from shared.errors import KeyErased, NotFound
from shared.http import require
from shared.store import _COLUMNS, row_to_envelope

if TYPE_CHECKING:
    from shared.runtime import Runtime

AUDIT_READERS = ("auditor", "letters_office", "handling_department", "case_trial", "case_management", "head")
"""Who reads a case's timeline (the console's case page shows it to each officer of the chain); the
reporter's identity in it is opened for the letters office only, masked for everyone else."""
INTAKE_ROLE = "letters_office"
_SEALED_KEYS = {"alg", "subject_id", "nonce", "ciphertext"}
PSEUDONYMS = frozenset({"reporter_subject_id"})
"""Fields that link a reporter's reports (intake shows them to the letters office only)."""


async def unseal(value: Any, conn: Conn, runtime: Runtime, may_open: bool, path: str = "") -> Any:
    """Replace every sealed field: opened for the intake role, otherwise masked; erased when
    the subject's key was destroyed."""
    if isinstance(value, dict):
        if set(value) == _SEALED_KEYS:
            if not may_open:
                return {"masked": True}
            try:
                field = "reporter.identity" if path.endswith("reporter") else path
                return {"identity": await runtime.cipher.open(conn, SealedField.model_validate(value), field)}
            except KeyErased:
                return {"erased": True}
            except Exception:  # a field sealed under another binding: still never shown in clear
                return {"masked": True}
        return {
            k: {"masked": True}
            if k in PSEUDONYMS and not may_open and v is not None
            else await unseal(v, conn, runtime, may_open, f"{path}.{k}" if path else k)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [await unseal(v, conn, runtime, may_open, path) for v in value]
    return value


def add_audit_routes(app: FastAPI, runtime: Runtime) -> None:
    @app.get(
        "/audit/cases/{case_id}/events",
        tags=["audit"],
        summary="Every event of one case in this service (a matter's: of all its persons' clarifications)",
    )
    async def case_events(
        case_id: Identifier, principal: Annotated[Principal, Depends(require(*AUDIT_READERS))]
    ) -> list[dict[str, Any]]:
        async with runtime.pool.acquire() as conn:
            # A matter's timeline holds the clarifications of all its persons (<matter>-2 ...).
            rows = await conn.fetch(
                f"SELECT {_COLUMNS}, recorded_at, global_position FROM events"
                " WHERE case_id = $1 OR ($2 AND case_id LIKE $1 || '-%') ORDER BY global_position",
                case_id,
                matter_of(case_id) == case_id,
            )
            visible = [r for r in rows if principal.sees(r["jurisdiction"])]
            if not visible:
                raise NotFound(
                    f"no events of case {case_id} here",
                    detail_zh=f"这里没有案件 {case_id} 的事件",
                    field="case_id",
                )
            out = []
            for row in visible:
                envelope = row_to_envelope(row)
                may_open = principal.role == INTAKE_ROLE and principal.sees(envelope.jurisdiction)
                body = envelope.model_dump(mode="json")
                body["payload"] = await unseal(body["payload"], conn, runtime, may_open)
                body["service"] = runtime.service
                body["recorded_at"] = row["recorded_at"].isoformat()
                body["global_position"] = row["global_position"]
                body["hash_ok"] = envelope.hash_ok()
                out.append(body)
        return out

    @app.get(
        "/audit/verify",
        tags=["audit"],
        summary="Check the hash chain and signatures of every stream of this service, and the events"
        " its consumers rejected as forged or altered",
    )
    async def verify_store(
        principal: Annotated[Principal, Depends(require("auditor"))],
    ) -> dict[str, Any]:
        broken = await runtime.store.verify()
        async with runtime.pool.acquire() as conn:
            rejected = await rejections.listed(conn)
        if broken is None and not rejected:
            return {"service": runtime.service, "ok": True}
        body: dict[str, Any] = {"service": runtime.service, "ok": False}
        if broken is not None:
            body.update(
                stream_id=broken.stream_id,
                stream_version=broken.stream_version,
                event_id=broken.event_id,
                expected=broken.expected,
                found=broken.found,
                reason=broken.reason,
            )
        if rejected:
            body["rejected"] = [{**asdict(r), "line": r.line()} for r in rejected]
            body.setdefault("event_id", rejected[0].event_id)
            body.setdefault("reason", f"consumer rejected a forged or altered event: {rejected[0].line()}")
        return body
