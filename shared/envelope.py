"""The event envelope every zhengming event travels in, its canonical bytes and its hash."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
)

GENESIS_HASH = "0" * 64
# Envelope fields outside the hashed body.
UNHASHED = frozenset({"prev_hash", "hash", "key_id", "signature"})

JURISDICTIONS: dict[str, str] = {
    "331100": "丽水市",
    "331102": "莲都区",
    "331121": "青田县",
    "331122": "缙云县",
    "331123": "遂昌县",
    "331124": "松阳县",
    "331125": "云和县",
    "331126": "庆元县",
    "331127": "景宁畲族自治县",
    "331181": "龙泉市",
}
CITY = "331100"


class Actor(BaseModel):
    """Who caused an event: the authenticated user (id and, for a named user, 姓名), their role
    and unit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: str = Field(min_length=1, max_length=200)
    role: str = Field(min_length=1, max_length=100)
    unit: str = Field(min_length=1, max_length=200)
    name: str | None = Field(default=None, min_length=1, max_length=200, description="姓名 of a named user")

    @model_serializer(mode="wrap")
    def _without_absent_name(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> dict[str, Any]:
        # An actor without a name serialises as before the field existed, so the hashes of the
        # events recorded then (the actor is hashed) still verify.
        data: dict[str, Any] = handler(self)
        if data.get("name") is None:
            data.pop("name", None)
        return data


class EventEnvelope(BaseModel):
    """One domain event with everything needed to route, order, attribute and verify it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: uuid.UUID
    event_type: str = Field(min_length=1, max_length=200)
    schema_version: int = Field(ge=1)
    stream_id: str = Field(min_length=1, max_length=300)
    stream_version: int = Field(ge=1)
    case_id: str = Field(min_length=1, max_length=200)
    jurisdiction: str = Field(pattern=r"^\d{6}$")
    occurred_at: AwareDatetime
    actor: Actor
    correlation_id: uuid.UUID
    causation_id: uuid.UUID | None = None
    payload: dict[str, Any]
    prev_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    # Who vouches for the event (shared/signing.py): Ed25519 over `hash` by the producing service's
    # key. Outside the hashed body, since a signature cannot sign itself; the hash already covers
    # everything else, and it never changes when a subject's key is shredded.
    key_id: str | None = Field(default=None, max_length=200, description="<service>:<fingerprint>")
    signature: str | None = Field(default=None, max_length=200, description="base64 Ed25519 over the hash")

    @field_validator("occurred_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        # One canonical form for hashing: the database hands instants back in UTC.
        return value.astimezone(UTC)

    def to_bytes(self) -> bytes:
        """The wire form on Kafka: canonical JSON of the whole envelope."""
        return canonical_json(self.model_dump(mode="json"))

    @classmethod
    def from_bytes(cls, raw: bytes) -> EventEnvelope:
        return cls.model_validate_json(raw)

    def computed_hash(self) -> str:
        return chain_hash(self.prev_hash, self.model_dump(mode="json", exclude=set(UNHASHED)))

    def hash_and_wire(self) -> tuple[str, bytes]:
        """`computed_hash()` and `to_bytes()` out of one dump of the envelope (the audit needs both)."""
        recomputed, whole, plain = _hashed_dump(self)
        return recomputed, _canonical_json(whole, plain=plain)

    def hash_ok(self) -> bool:
        return self.computed_hash() == self.hash


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON: sorted keys, no spaces, UTF-8 (Chinese text kept as is).

    The bytes are those of `json.dumps(value, sort_keys=True, separators=(",", ":"),
    ensure_ascii=False)`, which every hash in every trail was made of. orjson makes them about ten
    times faster for what events hold (strings, integers, booleans, null, lists, objects); a
    float (whose exponent orjson writes differently), an integer beyond 64 bits or anything else
    orjson refuses goes to the standard library, so the bytes never change
    (tests/unit/test_envelope.py compares both on generated values)."""
    return _canonical_json(value, plain=not _has_float(value))


def _canonical_json(value: Any, *, plain: bool) -> bytes:
    """`canonical_json` of a value known to be `plain` (no float, nothing but JSON's own types) or
    not."""
    if plain:
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # orjson.JSONEncodeError: a big integer, a non-string key, a surrogate
            pass
    return _stdlib_canonical_json(value)


def _stdlib_canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


_LEAVES = frozenset({str, int, bool, type(None)})


def _has_float(value: Any) -> bool:
    """True unless `value` is made only of dicts, lists, tuples, strings, integers, booleans and
    None (exact types): a float, or anything else, is left to the standard library."""
    kind = type(value)
    if kind is dict:
        items = value.values()
    elif kind is list or kind is tuple:
        items = value
    else:
        return kind not in _LEAVES
    for item in items:  # noqa: SIM110 (a loop, not any() over a generator: half the time)
        if type(item) not in _LEAVES and _has_float(item):
            return True
    return False


def chain_hash(prev_hash: str, body: dict[str, Any]) -> str:
    """SHA-256 over the previous hash and the canonical bytes of the rest of the envelope."""
    return _chain_digest(prev_hash, canonical_json(body))


def _chain_digest(prev_hash: str, canonical_body: bytes) -> str:
    digest = hashlib.sha256()
    digest.update(prev_hash.encode("ascii"))
    digest.update(canonical_body)
    return digest.hexdigest()


def seal(
    *,
    event_type: str,
    schema_version: int,
    stream_id: str,
    stream_version: int,
    case_id: str,
    jurisdiction: str,
    occurred_at: datetime,
    actor: Actor,
    correlation_id: uuid.UUID,
    causation_id: uuid.UUID | None,
    payload: dict[str, Any],
    prev_hash: str,
    event_id: uuid.UUID | None = None,
) -> EventEnvelope:
    """Build an envelope and compute its hash in the chain after `prev_hash`."""
    return sealed(
        draft(
            event_id=event_id or uuid.uuid4(),
            event_type=event_type,
            schema_version=schema_version,
            stream_id=stream_id,
            stream_version=stream_version,
            case_id=case_id,
            jurisdiction=jurisdiction,
            occurred_at=occurred_at,
            actor=actor,
            correlation_id=correlation_id,
            causation_id=causation_id,
            payload=payload,
            prev_hash=prev_hash,
        )
    )[0]


def draft(**fields: Any) -> EventEnvelope:
    """An envelope validated but not yet hashed (its hash the genesis one), for `sealed`."""
    return EventEnvelope(**fields, hash=GENESIS_HASH)


HashSigner = Callable[[str], tuple[str, str]]
"""Signs an event hash: its (key id, base64 signature) (shared/signing.py, `ServiceKey.vouch`)."""


def sealed(unhashed: EventEnvelope, sign: HashSigner | None = None) -> tuple[EventEnvelope, bytes]:
    """The envelope with its hash in the chain after its `prev_hash` and, with `sign`, its
    signature; with its wire form (`to_bytes()`). Out of one dump of the envelope: the store
    seals every event it appends this way (a dump and a copy fewer an event than hashing, signing
    and dumping it in turn)."""
    recomputed, whole, plain = _hashed_dump(unhashed)
    update: dict[str, Any] = {"hash": recomputed}
    if sign is not None:
        update["key_id"], update["signature"] = sign(update["hash"])
    whole.update(update)
    return unhashed.model_copy(update=update), _canonical_json(whole, plain=plain)


def _hashed_dump(envelope: EventEnvelope) -> tuple[str, dict[str, Any], bool]:
    """The envelope's hash recomputed, its JSON dump, and whether that dump is plain (no float, see
    `canonical_json`): the hashed body is walked once, as what the whole adds are strings or None."""
    whole = envelope.model_dump(mode="json")
    body = {k: v for k, v in whole.items() if k not in UNHASHED}
    plain = not _has_float(body)
    return _chain_digest(envelope.prev_hash, _canonical_json(body, plain=plain)), whole, plain


def person_matter_id(matter_id: str, index: int) -> str:
    """The clarification of the `index`-th person (or unit) a matter names, 0-based: the first keeps
    the matter's own id (every clarification before several persons is one), the others are
    `<matter>-2`, `<matter>-3` ... (331122-2023-000001-2)."""
    return matter_id if index == 0 else f"{matter_id}-{index + 1}"


def matter_of(case_id: str) -> str:
    """The matter a person's clarification belongs to (a matter id is itself)."""
    parts = case_id.split("-")
    return "-".join(parts[:3]) if len(parts) == 4 and parts[3].isdigit() else case_id
