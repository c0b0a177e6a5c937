"""The bench's replay growth generator (bench/replay_growth.py): a clone of a case's events is a case of
its own (fresh event ids, matter numbers and the ids made of them), sealed in a chain of its own
and signed by the context's key, so that replay and verification take it as a real one."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.replay_growth import _clone, _template
from shared.envelope import GENESIS_HASH, Actor, EventEnvelope, seal
from shared.signing import Keyring, ServiceKey

MATTER = "331122-2023-000007"


def stream() -> list[EventEnvelope]:
    out: list[EventEnvelope] = []
    prev = GENESIS_HASH
    correlation = uuid.uuid4()
    for version in (1, 2):
        envelope = seal(
            event_type="ReturnVisitScheduled",
            schema_version=1,
            stream_id=f"archive-{MATTER}",
            stream_version=version,
            case_id=MATTER,
            jurisdiction="331122",
            occurred_at=datetime(2023, 5, version, tzinfo=UTC),
            actor=Actor(user_id="archive-331122", role="archive", unit="缙云县纪委监委"),
            correlation_id=correlation,
            causation_id=out[-1].event_id if out else None,
            payload={"visit_id": f"{MATTER}-visit-{version}", "due_on": "2023-06-01", "visit_with": "本人"},
            prev_hash=prev,
        )
        out.append(envelope)
        prev = envelope.hash
    return out


def test_a_clone_is_a_case_of_its_own_sealed_and_signed() -> None:
    key = ServiceKey("archive", Ed25519PrivateKey.generate())
    originals = stream()
    hashes: dict[str, str] = {}
    clones = [_clone(_template(e, "archive"), 3, 1000, hashes, {"archive": key}) for e in originals]
    first, second = clones
    assert first.case_id == "331122-2023-003007" and second.stream_id == "archive-331122-2023-003007"
    assert second.payload["visit_id"] == "331122-2023-003007-visit-2"
    assert {c.event_id for c in clones}.isdisjoint({o.event_id for o in originals})
    assert second.causation_id == first.event_id and first.correlation_id == second.correlation_id
    assert first.correlation_id != originals[0].correlation_id
    # Its own chain, every hash recomputable, every signature the context's.
    assert first.prev_hash == GENESIS_HASH and second.prev_hash == first.hash
    assert all(c.hash_ok() for c in clones)
    ring = Keyring.of(key)
    for c in clones:
        ring.check(c, "archive")
    # The same clone number gives the same clone (ids derived, not drawn).
    again = _clone(_template(originals[0], "archive"), 3, 1000, {}, {"archive": key})
    assert again.event_id == first.event_id
    assert json.loads(first.to_bytes())["payload"]["due_on"] == "2023-06-01"
