"""The committed AsyncAPI documents pass the official parser (@asyncapi/parser, from npm:
tests/asyncapi-parser), and their public examples are genuine records a verifier accepts."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from shared import public
from shared.events.archive import PersonnelNoticeV1
from shared.settings import SERVICES
from zhengming import asyncapi, contract_examples

PARSER = Path(__file__).resolve().parents[1] / "asyncapi-parser"


def test_every_document_passes_the_official_parser() -> None:
    node = shutil.which("node")
    assert node, "node (20 or later) must be installed to validate the AsyncAPI documents"
    assert (PARSER / "node_modules" / "@asyncapi" / "parser").is_dir(), "run `make asyncapi-parser`"
    documents = [str(asyncapi.DOCS / f"{service}.json") for service in SERVICES]
    done = subprocess.run(
        [node, str(PARSER / "validate.js"), *documents], capture_output=True, text=True, timeout=120
    )
    assert done.returncode in (0, 1), done.stderr
    results = json.loads(done.stdout)
    assert {Path(r["file"]).stem for r in results} == set(SERVICES)
    assert {r["file"]: r["errors"] for r in results if r["errors"]} == {}
    assert done.returncode == 0


def _public_message() -> dict[str, Any]:
    channel = asyncapi.document("archive")["channels"]["public.personnel-notices.v1"]
    message: dict[str, Any] = channel["messages"]["PersonnelNoticeV1"]
    return message


def test_the_checkpoint_and_dead_letter_channels_are_documented() -> None:
    for service in SERVICES:
        doc = asyncapi.document(service)
        assert doc["channels"]["audit.checkpoints"]["address"] == "zm.audit.checkpoints"
        dead = [c for name, c in doc["channels"].items() if name.startswith("dlq.")]
        assert dead, service
        for channel in dead:
            headers = channel["messages"]["DeadLetter"]["headers"]["properties"]
            assert {"zm-dlq-code", "zm-dlq-reason", "zm-dlq-consumer", "zm-dlq-event-id"} <= set(headers)
            assert {"zm-original-topic", "zm-original-partition", "zm-original-offset"} <= set(headers)


def test_public_examples_are_valid_notices_with_verifiable_headers() -> None:
    message = _public_message()
    assert set(message["headers"]["required"]) >= {
        "ce_id",
        "ce_type",
        "ce_source",
        "ce_specversion",
        "ce_time",
    }
    [example] = message["examples"]
    notice = PersonnelNoticeV1.model_validate(example["payload"])
    headers = example["headers"]
    assert set(message["headers"]["required"]) <= set(headers)
    body = notice.model_dump_json().encode()
    assert headers[public.HASH_HEADER] == hashlib.sha256(body).hexdigest()
    assert headers["ce_id"] == notice.notice_id
    assert headers["ce_type"] == "cn.gov.lishui.zhengming.personnel-notice.v1"
    assert headers["ce_source"] == f"/zhengming/{notice.jurisdiction}/archive"
    assert headers[public.KEY_ID_HEADER] == contract_examples.EXAMPLE_KEY.key_id
    contract_examples.EXAMPLE_KEY.public.verify(
        base64.b64decode(headers[public.SIGNATURE_HEADER]), public.signed_message(body)
    )


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("zm.331102.public.personnel-notices.v1", True),
        ("zm.331102.archive.events", False),
        ("zm.331102.inbound.reports", False),
        ("zm.dlq.archive.intake", False),
    ],
)
def test_only_public_topics_are_public(topic: str, expected: bool) -> None:
    assert public.is_public(topic) is expected
