"""AsyncAPI 3.0 documents generated from the code (event contract, topics, consumers), and the
compatibility check that keeps a committed document from being broken silently."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

from pydantic import BaseModel

from services.definitions import DEFINITIONS, definition_of
from shared import public
from shared.checkpoint import Checkpoint
from shared.envelope import JURISDICTIONS, EventEnvelope
from shared.events import registry
from shared.outbox import MESSAGE_ID_HEADER
from shared.settings import PROJECT_ROOT
from shared.topics import CHECKPOINTS_TOPIC, PREFIX, dead_letter_topic
from zhengming import contract_examples

DOCS = PROJECT_ROOT / "docs" / "asyncapi"


def _context_of(model: type[BaseModel]) -> str:
    return model.__module__.rsplit(".", 1)[-1]


def event_types(context: str) -> dict[str, tuple[int, type[BaseModel]]]:
    """Every registered event type of one context with its current version and payload model."""
    out: dict[str, tuple[int, type[BaseModel]]] = {}
    for name in sorted(registry._models):
        version, model = registry._models[name]
        if _context_of(model) == context:
            out[name] = (version, model)
    return out


REF = "#/components/schemas/{model}"


def _schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON schema with its nested definitions moved to components.schemas (a `#/$defs`
    reference would not resolve from the document's root)."""
    schema = model.model_json_schema(ref_template=REF)
    for name, definition in schema.pop("$defs", {}).items():
        if components.setdefault(name, definition) != definition:
            raise ValueError(f"two different schemas named {name} ({model.__name__}'s and another's)")
    return schema


def _string(description: str, **more: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **more}


MESSAGE_ID = _string("the outbox row: the event id, or the public message's id (set by the relay)")


def _message(name: str, version: int, model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    envelope = _schema(EventEnvelope, components)
    envelope["properties"]["payload"] = _schema(model, components)
    envelope["properties"]["event_type"] = {"const": name}
    envelope["properties"]["schema_version"] = {"const": version}
    return {
        "name": name,
        "title": name,
        "summary": (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else name,
        "contentType": "application/json",
        "headers": {
            "type": "object",
            "properties": {
                "event_type": {"type": "string"},
                "schema_version": {"type": "string"},
                "correlation_id": {"type": "string"},
                MESSAGE_ID_HEADER: MESSAGE_ID,
            },
        },
        "payload": envelope,
    }


def public_headers() -> dict[str, Any]:
    """The headers of every record of a public topic (shared/public.py)."""
    return {
        "type": "object",
        "required": [
            "ce_id",
            "ce_source",
            "ce_type",
            "ce_specversion",
            "ce_time",
            "content-type",
            public.HASH_HEADER,
            public.SIGNATURE_HEADER,
            public.KEY_ID_HEADER,
        ],
        "properties": {
            "ce_specversion": {"const": "1.0", "description": "CloudEvents Kafka binding, binary mode"},
            "ce_id": _string("CloudEvents id: the record key (notice_id), the deduplication key"),
            "ce_type": _string("CloudEvents type", examples=[public.CE_TYPE_PREFIX + ".personnel-notice.v1"]),
            "ce_source": _string("CloudEvents source: /zhengming/<jurisdiction>/<service>"),
            "ce_time": _string(
                "CloudEvents time: when the message was recorded (RFC 3339)", format="date-time"
            ),
            "content-type": {"const": "application/json"},
            public.HASH_HEADER: _string(
                "hex SHA-256 of the record value, byte for byte", pattern="^[0-9a-f]{64}$"
            ),
            public.SIGNATURE_HEADER: _string(
                "base64 Ed25519 signature of the owning service over the 20 bytes"
                " 'zhengming public v1' + NUL followed by the 32 bytes of the SHA-256 of the value"
            ),
            public.KEY_ID_HEADER: _string(
                "<service>:<first 16 hex digits of SHA-256 over the raw Ed25519 public key>; the key"
                " is the keyring file <service>.<fingerprint>.pub"
            ),
            MESSAGE_ID_HEADER: MESSAGE_ID,
        },
    }


def dead_letter_message() -> dict[str, Any]:
    return {
        "name": "DeadLetter",
        "title": "Dead letter",
        "summary": "A record a consumer could not decode, did not know or refused (see `zhengming dlq`).",
        "contentType": "application/octet-stream",
        "headers": {
            "type": "object",
            "required": [
                "zm-dlq-code",
                "zm-dlq-reason",
                "zm-dlq-consumer",
                "zm-original-topic",
                "zm-original-partition",
                "zm-original-offset",
            ],
            "properties": {
                "zm-dlq-code": _string(
                    "why, as a code: undecodable, unknown_event, unsigned, bad_signature, ..."
                ),
                "zm-dlq-reason": _string("why, in words (at most 2000 characters)", maxLength=2000),
                "zm-dlq-consumer": _string("the consumer (subscription) that gave the record up"),
                "zm-dlq-event-id": _string("the event id when the envelope could be read, else empty"),
                "zm-original-topic": _string("where the record was read"),
                "zm-original-partition": _string("its partition (decimal)", pattern="^[0-9]+$"),
                "zm-original-offset": _string("its offset (decimal)", pattern="^[0-9]+$"),
            },
        },
        "payload": {
            "description": "the original record value, byte for byte (the original headers are kept too)"
        },
    }


def _jurisdiction_parameter() -> dict[str, Any]:
    return {"jurisdiction": {"enum": sorted(JURISDICTIONS), "description": "行政区划代码"}}


def document(service: str) -> dict[str, Any]:
    """The AsyncAPI document of one service: what it sends, what it receives, its dead letters."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    components: dict[str, Any] = {}
    own = event_types(service)
    channels[f"{service}.events"] = {
        "address": f"{PREFIX}.{{jurisdiction}}.{service}.events",
        "description": f"Domain events of {service}; key = case id, one topic per jurisdiction.",
        "parameters": _jurisdiction_parameter(),
        "messages": {name: _message(name, v, m, components) for name, (v, m) in own.items()},
    }
    operations[f"send.{service}.events"] = {
        "action": "send",
        "channel": {"$ref": f"#/channels/{service}.events"},
        "messages": [{"$ref": f"#/channels/{service}.events/messages/{n}"} for n in own],
    }
    definition = definition_of(service)
    for spec in definition.subscriptions:
        key = f"receive.{spec.name}"
        channels[spec.name] = {
            "address": spec.topics(sorted(JURISDICTIONS)),
            "description": f"Consumer group zm.{spec.name} (topic pattern); poison to "
            f"{dead_letter_topic(spec.name)}.",
        }
        operations[key] = {"action": "receive", "channel": {"$ref": f"#/channels/{spec.name}"}}
        channels[f"dlq.{spec.name}"] = {
            "address": dead_letter_topic(spec.name),
            "description": f"Dead letters of zm.{spec.name}: the original bytes and headers, and why.",
            "messages": {"DeadLetter": dead_letter_message()},
        }
        operations[f"send.dlq.{spec.name}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/dlq.{spec.name}"},
            "messages": [{"$ref": f"#/channels/dlq.{spec.name}/messages/DeadLetter"}],
        }
    for name, (address, model) in definition.public_contracts.items():
        outbound = public.is_public(address)
        message: dict[str, Any] = {
            "name": model.__name__,
            "title": model.__name__,
            "summary": (model.__doc__ or name).strip().splitlines()[0],
            "contentType": "application/json",
            "payload": _schema(model, components),
        }
        if outbound:
            message["bindings"] = {
                "kafka": {
                    "key": {
                        "type": "string",
                        "description": "the message's id (notice_id): deduplicate by it",
                    },
                    "bindingVersion": "0.5.0",
                }
            }
            message["headers"] = public_headers()
            message["examples"] = contract_examples.examples(model, address)
        channels[name] = {
            "address": address,
            "description": (model.__doc__ or name).strip(),
            "parameters": _jurisdiction_parameter(),
            "messages": {model.__name__: message},
        }
        operations[f"{'send' if outbound else 'receive'}.{name}"] = {
            "action": "send" if outbound else "receive",
            "channel": {"$ref": f"#/channels/{name}"},
            "messages": [{"$ref": f"#/channels/{name}/messages/{model.__name__}"}],
        }
    channels["audit.checkpoints"] = {
        "address": CHECKPOINTS_TOPIC,
        "description": "Signed checkpoints: every stream head of a service's event store and their "
        "Merkle root, signed (Ed25519, canonical JSON of every field but `signature`) by the service "
        "key; key = <deployment>/<service>. `zhengming audit` verifies them.",
        "messages": {
            "Checkpoint": {
                "name": "Checkpoint",
                "title": "Checkpoint",
                "summary": "What a service vouches for at one instant.",
                "contentType": "application/json",
                "payload": _schema(Checkpoint, components),
            }
        },
    }
    operations["send.audit.checkpoints"] = {
        "action": "send",
        "channel": {"$ref": "#/channels/audit.checkpoints"},
        "messages": [{"$ref": "#/channels/audit.checkpoints/messages/Checkpoint"}],
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": f"zhengming {service}",
            "version": "1.0.0",
            "description": f"Kafka interface of the {service} service of zhengming (正名).",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"schemas": dict(sorted(components.items()))},
    }


def render(service: str) -> str:
    return json.dumps(document(service), ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def write_all(directory: Path = DOCS) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for service in DEFINITIONS:
        path = directory / f"{service}.json"
        path.write_text(render(service), encoding="utf-8")
        written.append(path)
    return written


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Changes of `new` against the committed `old` document that would break consumers of an event
    type at an unchanged schema version: a message removed, a payload field removed, a field newly
    required, or a field's type changed. Adding optional fields is compatible."""
    problems: list[str] = []
    for channel_name, channel in old.get("channels", {}).items():
        new_channel = new.get("channels", {}).get(channel_name)
        for message_name, message in channel.get("messages", {}).items():
            where = f"{channel_name}/{message_name}"
            if new_channel is None or message_name not in new_channel.get("messages", {}):
                problems.append(f"{where}: message removed")
                continue
            new_message = new_channel["messages"][message_name]
            old_payload = _payload_schema(message)
            new_payload = _payload_schema(new_message)
            if _version(message) != _version(new_message):
                continue  # a new version: old ones are upcast when read
            problems += _compare(where, old_payload, new_payload)
    new_components = new.get("components", {}).get("schemas", {})
    for name, schema in old.get("components", {}).get("schemas", {}).items():
        if name not in new_components:
            problems.append(f"components/{name}: schema removed")
        else:
            problems += _compare(f"components/{name}", schema, new_components[name])
    return problems


def _payload_schema(message: dict[str, Any]) -> dict[str, Any]:
    payload = message["payload"]
    inner = payload.get("properties", {}).get("payload")
    return cast(dict[str, Any], inner if isinstance(inner, dict) and "properties" in inner else payload)


def _version(message: dict[str, Any]) -> Any:
    return message["payload"].get("properties", {}).get("schema_version", {}).get("const")


def _compare(where: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    problems = []
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    for field_name, schema in old_props.items():
        if field_name not in new_props:
            problems.append(f"{where}: field {field_name} removed")
        elif _type_of(schema) != _type_of(new_props[field_name]):
            problems.append(f"{where}: field {field_name} changed type")
    for field_name in set(new.get("required", [])) - set(old.get("required", [])):
        problems.append(f"{where}: field {field_name} newly required")
    return problems


def _type_of(schema: dict[str, Any]) -> Any:
    if "anyOf" in schema:
        return sorted(json.dumps(_type_of(s), sort_keys=True) for s in schema["anyOf"])
    return schema.get("type") or schema.get("$ref") or schema.get("const") or schema.get("enum")
