"""The committed AsyncAPI documents match the code, and breaking changes are caught."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from shared.settings import SERVICES
from zhengming import asyncapi


@pytest.mark.parametrize("service", SERVICES)
def test_committed_document_is_what_the_code_generates(service: str) -> None:
    committed = (asyncapi.DOCS / f"{service}.json").read_text(encoding="utf-8")
    assert committed == asyncapi.render(service), (
        f"docs/asyncapi/{service}.json is stale: run `zhengming asyncapi` and review the diff"
    )


@pytest.mark.parametrize("service", SERVICES)
def test_current_code_does_not_break_the_committed_contract(service: str) -> None:
    committed = json.loads((asyncapi.DOCS / f"{service}.json").read_text(encoding="utf-8"))
    assert asyncapi.breaking_changes(committed, asyncapi.document(service)) == []


def _doc() -> dict[str, Any]:
    return asyncapi.document("review")


def _payload(doc: dict[str, Any], message: str) -> dict[str, Any]:
    schema = doc["channels"]["review.events"]["messages"][message]["payload"]["properties"]["payload"]
    assert isinstance(schema, dict)
    return schema


def test_removing_a_field_is_breaking() -> None:
    old = _doc()
    new = copy.deepcopy(old)
    del _payload(new, "FindingRecorded")["properties"]["basis"]
    assert any("basis removed" in p for p in asyncapi.breaking_changes(old, new))


def test_making_a_field_required_is_breaking() -> None:
    old = _doc()
    new = copy.deepcopy(old)
    _payload(new, "FindingRecorded")["required"].append("approved_by")
    assert any("approved_by newly required" in p for p in asyncapi.breaking_changes(old, new))


def test_changing_a_type_is_breaking() -> None:
    old = _doc()
    new = copy.deepcopy(old)
    _payload(new, "FindingRecorded")["properties"]["basis"] = {"type": "integer"}
    assert any("basis changed type" in p for p in asyncapi.breaking_changes(old, new))


def test_removing_a_message_is_breaking() -> None:
    old = _doc()
    new = copy.deepcopy(old)
    del new["channels"]["review.events"]["messages"]["CandidateScreened"]
    assert any("CandidateScreened: message removed" in p for p in asyncapi.breaking_changes(old, new))


def test_changing_a_nested_schema_is_breaking() -> None:
    old = _doc()
    new = copy.deepcopy(old)
    del new["components"]["schemas"]["Subject"]["properties"]["post"]
    assert any("Subject" in p and "post removed" in p for p in asyncapi.breaking_changes(old, new))


def test_adding_an_optional_field_is_compatible() -> None:
    old = _doc()
    new = copy.deepcopy(old)
    _payload(new, "FindingRecorded")["properties"]["remark"] = {"type": "string", "default": ""}
    assert asyncapi.breaking_changes(old, new) == []


def test_a_new_schema_version_may_change_the_payload() -> None:
    old = _doc()
    new = copy.deepcopy(old)
    message = new["channels"]["review.events"]["messages"]["FindingRecorded"]
    message["payload"]["properties"]["schema_version"] = {"const": 2}
    del _payload(new, "FindingRecorded")["properties"]["basis"]
    assert [p for p in asyncapi.breaking_changes(old, new) if "FindingRecorded" in p] == []
