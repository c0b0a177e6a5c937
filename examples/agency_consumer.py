"""Example consumer for another agency (其他单位): reads zhengming's personnel-notice topic and
accepts a notice only when its hash and the archive service's signature check out.

Standalone: needs aiokafka, cryptography and cloudevents, and the archive service's public key
file (`archive.<fingerprint>.pub`, PEM), nothing of zhengming. See examples/README.md.

    python examples/agency_consumer.py --bootstrap kafka:9092 \\
        --topic zm.331102.public.personnel-notices.v1 --public-key archive.3c1e6b0a9f2d4e51.pub

One JSON line per record on stdout: {"status": "accepted" | "duplicate" | "rejected", ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import ssl
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from cloudevents.core.formats.json import JSONFormat
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

# The contract (docs/contracts/public-topics.md): what zhengming signs and how it names its keys.
SIGNING_CONTEXT = b"zhengming public v1\x00"
NOTICE_TYPE = "cn.gov.lishui.zhengming.personnel-notice.v1"
SIGNER = "archive"


class Rejected(Exception):
    """A record that is not a genuine notice of the archive service."""


def key_id(service: str, public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return f"{service}:{hashlib.sha256(raw).hexdigest()[:16]}"


def load_keys(paths: Iterable[Path]) -> dict[str, Ed25519PublicKey]:
    """The archive's public keys by key id (after a key rotation, give the old and the new file)."""
    keys: dict[str, Ed25519PublicKey] = {}
    for path in paths:
        public = serialization.load_pem_public_key(path.read_bytes())
        if not isinstance(public, Ed25519PublicKey):
            raise SystemExit(f"{path}: not an Ed25519 public key")
        keys[key_id(SIGNER, public)] = public
    return keys


def verify(record: ConsumerRecord[bytes, bytes], keys: dict[str, Ed25519PublicKey]) -> dict[str, Any]:
    """The notice of one record, or Rejected saying why it is not genuine."""
    headers = {name: value or b"" for name, value in record.headers or ()}
    body: bytes = record.value or b""
    try:
        event = from_binary(KafkaMessage(headers=headers, key=record.key, value=body), JSONFormat())
    except Exception as exc:  # the SDK's validation errors: not a CloudEvent at all
        raise Rejected(f"not a CloudEvent: {exc}") from exc
    if event.get_type() != NOTICE_TYPE:
        raise Rejected(f"type {event.get_type()!r} is not {NOTICE_TYPE}")
    digest = hashlib.sha256(body).digest()
    if not hmac.compare_digest(headers.get("zm-hash", b"").decode(errors="replace"), digest.hex()):
        raise Rejected("zm-hash is not the SHA-256 of the value: altered in transit")
    signer = headers.get("zm-key-id", b"").decode(errors="replace")
    public = keys.get(signer)
    if public is None:
        raise Rejected(f"signed by key {signer!r}, not one of the archive's keys we hold")
    try:
        public.verify(
            base64.b64decode(headers.get("zm-signature", b""), validate=True), SIGNING_CONTEXT + digest
        )
    except (InvalidSignature, ValueError) as exc:
        raise Rejected(f"the signature of {signer} does not match the value") from exc
    notice: dict[str, Any] = json.loads(body)
    # Signed content that does not belong here (a notice of another county replayed on this topic).
    jurisdiction = record.topic.split(".")[1]
    if (
        notice.get("jurisdiction") != jurisdiction
        or event.get_source() != f"/zhengming/{jurisdiction}/archive"
    ):
        raise Rejected(f"a notice of {notice.get('jurisdiction')!r} on the topic of {jurisdiction}")
    if notice.get("notice_id") != event.get_id():
        raise Rejected("ce_id is not the notice's notice_id")
    return notice


@dataclass
class Reader:
    """Accepts each genuine notice once (by notice_id); production: keep `seen` in the database
    transaction that stores the notice, so a restart does not accept one again."""

    keys: dict[str, Ed25519PublicKey]
    emit: Callable[[dict[str, Any]], None]
    seen: set[str] = field(default_factory=set)

    def handle(self, record: ConsumerRecord[bytes, bytes]) -> None:
        where = {"partition": record.partition, "offset": record.offset}
        try:
            notice = verify(record, self.keys)
        except Rejected as exc:
            self.emit({"status": "rejected", "reason": str(exc), **where})
            return
        if notice["notice_id"] in self.seen:
            self.emit({"status": "duplicate", "notice_id": notice["notice_id"], **where})
            return
        self.seen.add(notice["notice_id"])
        self.emit({"status": "accepted", "notice": notice, **where})


def _security(args: argparse.Namespace) -> dict[str, Any]:
    if args.security_protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security_protocol": args.security_protocol}
    if "SSL" in args.security_protocol:
        options["ssl_context"] = ssl.create_default_context(cafile=args.ca_file)
    if "SASL" in args.security_protocol:
        options.update(
            sasl_mechanism=args.sasl_mechanism,
            sasl_plain_username=args.sasl_username,
            sasl_plain_password=os.environ.get("AGENCY_KAFKA_PASSWORD", ""),
        )
    return options


async def consume(args: argparse.Namespace, reader: Reader) -> None:
    consumer = AIOKafkaConsumer(
        args.topic,
        bootstrap_servers=args.bootstrap,
        group_id=args.group,  # None: every partition, from the start, no committed offsets
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",  # zhengming publishes in Kafka transactions
        **_security(args),
    )
    await consumer.start()
    try:
        ends: dict[TopicPartition, int] | None = None
        while True:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    reader.handle(record)
            if args.group is not None and batch:
                await consumer.commit()
            if args.until_end and consumer.assignment():
                if ends is None:
                    ends = await consumer.end_offsets(list(consumer.assignment()))
                if all([await consumer.position(tp) >= end for tp, end in ends.items()]):
                    return
    finally:
        await consumer.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True, help="host:port of the Kafka brokers")
    parser.add_argument("--topic", required=True, help="zm.<jurisdiction>.public.personnel-notices.v1")
    parser.add_argument("--public-key", type=Path, action="append", required=True, help="archive.<fp>.pub")
    parser.add_argument("--group", default=None, help="consumer group (commits offsets); default: none")
    parser.add_argument("--until-end", action="store_true", help="stop once the topic's end at start is read")
    parser.add_argument("--security-protocol", default="PLAINTEXT")
    parser.add_argument("--ca-file", default=None)
    parser.add_argument("--sasl-mechanism", default="SCRAM-SHA-512")
    parser.add_argument("--sasl-username", default=None, help="password from AGENCY_KAFKA_PASSWORD")
    args = parser.parse_args(argv)

    def emit(line: dict[str, Any]) -> None:
        print(json.dumps(line, ensure_ascii=False), flush=True)

    reader = Reader(load_keys(args.public_key), emit)
    try:
        asyncio.run(consume(args, reader))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
