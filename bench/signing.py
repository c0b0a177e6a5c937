"""Microseconds per call of what every event pays for its integrity, each beside the way it was
done before: its Ed25519 signature made and checked (libsodium by PyNaCl, as shared/signing.py
does, against OpenSSL by `cryptography`) and the canonical JSON of its hash (shared/envelope.py,
orjson with the standard library's bytes, against the standard library alone).

    python -m bench.signing [--calls N]

Needs no stack: the envelope is the bench's own (bench/run.py's payload), sealed and signed.
"""

from __future__ import annotations

import argparse
import json
import timeit
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.run import ACTOR, JURISDICTION, payload
from shared.envelope import UNHASHED, canonical_json, seal
from shared.signing import Keyring, ServiceKey, event_message


def _stdlib(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def measure(calls: int) -> list[tuple[str, float, float]]:
    """(what, ours in us, before in us) per call."""
    private = Ed25519PrivateKey.generate()
    key = ServiceKey("bench", private)
    ring = Keyring.of(key)
    envelope = key.sign(
        seal(
            event_type="BenchEvent",
            schema_version=1,
            stream_id="bench-1",
            stream_version=1,
            case_id="bench-1",
            jurisdiction=JURISDICTION,
            occurred_at=datetime.now(UTC),
            actor=ACTOR,
            correlation_id=uuid.uuid4(),
            causation_id=None,
            payload=payload(1),
            prev_hash="0" * 64,
        )
    )
    message = event_message(envelope.hash)
    signature = private.sign(message)
    public = private.public_key()
    body = envelope.model_dump(mode="json", exclude=set(UNHASHED))
    assert canonical_json(body) == _stdlib(body)

    def per_call(action: Callable[[], object]) -> float:
        return 1e6 * min(timeit.repeat(action, number=calls, repeat=3)) / calls

    return [
        (
            "Ed25519 signature",
            per_call(lambda: key.signature(envelope.hash)),
            per_call(lambda: private.sign(message)),
        ),
        (
            "Ed25519 check",
            per_call(lambda: ring.check(envelope, "bench")),
            per_call(lambda: public.verify(signature, message)),
        ),
        (
            "canonical JSON of the hashed body",
            per_call(lambda: canonical_json(body)),
            per_call(lambda: _stdlib(body)),
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.signing", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--calls", type=int, default=5000, help="calls per measurement (default %(default)s)")
    args = parser.parse_args(argv)
    print(f"{'per event':36} {'ours (us)':>10} {'before (us)':>12}")
    for what, ours, before in measure(args.calls):
        print(f"{what:36} {ours:10.1f} {before:12.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
