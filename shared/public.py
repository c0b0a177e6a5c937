"""Headers of the messages on public topics (公开主题), for readers outside zhengming: CloudEvents
(Kafka protocol binding, binary content mode) so their tooling knows what a record is, and a hash and
an Ed25519 signature so they can check it came unaltered from the service that owns the topic.

What another agency needs to verify a record is only that service's public key (the keyring file
`<service>.<fingerprint>.pub`) and these rules (docs/contracts/public-topics.md):

    zm-hash       hex SHA-256 of the record value, byte for byte as it is on the topic
    zm-signature  base64 Ed25519 signature over PUBLIC_SIGNING_CONTEXT + the 32 bytes of that hash
    zm-key-id     `<service>:<fingerprint>`: the first 16 hex digits of SHA-256 over the raw key

The headers are made when the message enters the outbox (in the transaction that records it), so
a record sent again after a relay failure carries the same ones.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

from cloudevents.core.bindings.kafka import to_binary
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from pydantic import BaseModel

from shared.signing import ServiceKey
from shared.topics import PREFIX

PUBLIC_SIGNING_CONTEXT = b"zhengming public v1\x00"
"""Separates signatures of public records from those of events and checkpoints (same key)."""

HASH_HEADER = "zm-hash"
SIGNATURE_HEADER = "zm-signature"
KEY_ID_HEADER = "zm-key-id"

CE_TYPE_PREFIX = "cn.gov.lishui.zhengming"


def cloud_event_type(contract: type[BaseModel]) -> str:
    """`cn.gov.lishui.zhengming.personnel-notice.v1` for PersonnelNoticeV1."""
    name, _, version = contract.__name__.rpartition("V")
    kebab = "".join(f"-{c.lower()}" if c.isupper() else c for c in name).lstrip("-")
    return f"{CE_TYPE_PREFIX}.{kebab}.v{version}"


def cloud_event_source(jurisdiction: str, service: str) -> str:
    return f"/zhengming/{jurisdiction}/{service}"


def is_public(topic: str) -> bool:
    """`zm.<jurisdiction>.public.<name>.v<n>`: the topics read outside zhengming."""
    parts = topic.split(".")
    return len(parts) >= 4 and parts[0] == PREFIX and parts[2] == "public"


def signed_message(body: bytes) -> bytes:
    return PUBLIC_SIGNING_CONTEXT + hashlib.sha256(body).digest()


def public_headers(
    *,
    topic: str,
    key: str,
    body: bytes,
    contract: type[BaseModel],
    signer: ServiceKey,
    time: datetime | None = None,
) -> dict[str, str]:
    """CloudEvents binary-mode headers (ce_id = the record key, which identifies the message) and
    the hash and signature headers of one record of a public topic."""
    jurisdiction = topic.split(".")[1]
    event = CloudEvent(
        {
            "id": key,
            "source": cloud_event_source(jurisdiction, signer.service),
            "type": cloud_event_type(contract),
            "specversion": "1.0",
            "time": (time or datetime.now(UTC)).replace(microsecond=0),
            "datacontenttype": "application/json",
        },
        body,
    )
    headers = {name: value.decode() for name, value in to_binary(event, JSONFormat()).headers.items()}
    signature = signer.private.sign(signed_message(body))
    headers[HASH_HEADER] = hashlib.sha256(body).hexdigest()
    headers[SIGNATURE_HEADER] = base64.b64encode(signature).decode("ascii")
    headers[KEY_ID_HEADER] = signer.key_id
    return headers
