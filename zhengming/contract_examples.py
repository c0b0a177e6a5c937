"""Example records of the public topics for the AsyncAPI documents: a payload and the headers the
relay sends with it, signed by a fixed example key (not any deployment's), so a reader can try a
verifier on them (docs/contracts/public-topics.md)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel

from shared import public
from shared.events.archive import CorrectionEntry, NoticeEntry, PersonnelNoticeV1
from shared.signing import ServiceKey

J = "331102"
EXAMPLE_KEY = ServiceKey("archive", Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
"""The example signer: its seed is 00 01 .. 1f, so anyone can recompute the example signature."""

NOTICE = PersonnelNoticeV1(
    notice_id=f"PN-{J}-2026Q3",
    jurisdiction=J,
    period="2026Q3",
    issued_on=date(2026, 10, 9),
    entries=[
        NoticeEntry(
            subject_id="p-3f9c2a7d",
            name="张某某",
            kind="person",
            post="副局长",
            unit="丽水市莲都区某局",
            clarified_on=date(2026, 8, 21),
            points=2,
        )
    ],
    corrections=[
        CorrectionEntry(
            subject_id="p-3f9c2a7d",
            name="张某某",
            kind="person",
            post="副局长",
            unit="丽水市莲都区某局",
            treatment="诫勉",
            organ="莲都区纪委监委",
            correction="撤销诫勉",
            corrected_on=date(2026, 9, 30),
        )
    ],
)

SAMPLES: dict[type[BaseModel], list[tuple[str, str, BaseModel]]] = {
    PersonnelNoticeV1: [
        ("quarterly-notice", "A quarter's notice: one person clarified, one correction", NOTICE)
    ],
}


def examples(contract: type[BaseModel], address: str) -> list[dict[str, Any]]:
    """AsyncAPI message examples of one public contract, headers included."""
    topic = address.replace("{jurisdiction}", J)
    out = []
    for name, summary, sample in SAMPLES.get(contract, []):
        body = sample.model_dump_json().encode()
        key = str(getattr(sample, "notice_id", name))
        headers = public.public_headers(
            topic=topic,
            key=key,
            body=body,
            contract=contract,
            signer=EXAMPLE_KEY,
            time=datetime(2026, 10, 9, 8, 30, tzinfo=UTC),
        )
        out.append(
            {"name": name, "summary": summary, "headers": headers, "payload": sample.model_dump(mode="json")}
        )
    return out
