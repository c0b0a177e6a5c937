"""The person key of a file (一人一档): officer id first, then the keyed ID number, then name+unit."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import date

import pytest
from pydantic import ValidationError

from services.archive.commands import MergeFiles
from services.archive.domain import FileMerge, check_same_kind, check_two_files
from services.intake.commands import AllegationDraft, RegisterReport, ReportedSubject
from services.intake.domain import Report
from shared.errors import Conflict, RuleViolation
from shared.events.archive import FilesMerged
from shared.events.common import Subject
from shared.identity import (
    deployment_id_number_key,
    id_number_hmac_key,
    id_number_key,
    person_key,
    valid_id_number,
)

NUMBER = "11010519491231002X"  # the check character of GB 11643's own example
KEY = id_number_hmac_key(b"\x07" * 32)
OTHER_KEY = id_number_hmac_key(b"\x08" * 32)


def person(**extra: object) -> Subject:
    return Subject.model_validate(
        {"kind": "person", "name": "张某", "post": "镇长", "unit": "某镇人民政府", **extra}
    )


def test_the_officer_id_wins_over_the_id_number_and_the_name() -> None:
    subject = person(officer_id="ZZB-0417", id_number_key=id_number_key(NUMBER, KEY))
    assert subject.person_key == "o-ZZB-0417"


def test_the_keyed_id_number_comes_next() -> None:
    digest = id_number_key(NUMBER, KEY)
    assert person(id_number_key=digest).person_key == f"i-{digest}"


def test_name_and_unit_are_the_fallback_and_today_s_subject_id() -> None:
    subject = person()
    assert subject.person_key == subject.subject_id
    expected = hashlib.sha256("person|张某|某镇人民政府".encode()).hexdigest()[:16]
    assert subject.subject_id == f"p-{expected}"
    assert person_key("p-1", None, None) == "p-1"


def test_the_id_number_is_hashed_with_the_key_never_plainly() -> None:
    digest = id_number_key(NUMBER, KEY)
    assert digest == hmac.new(KEY, NUMBER.encode(), hashlib.sha256).hexdigest()
    assert digest != hashlib.sha256(NUMBER.encode()).hexdigest()
    assert digest != id_number_key(NUMBER, OTHER_KEY)  # another deployment, another key
    assert id_number_key("110105 19491231002x", KEY) == digest  # spaces and a small x
    assert NUMBER not in digest


def test_the_key_is_derived_from_the_master_key_for_this_purpose(monkeypatch: pytest.MonkeyPatch) -> None:
    master = b"\x07" * 32
    monkeypatch.setenv("ZM_CRYPTO_MASTER_KEY", base64.b64encode(master).decode())
    assert deployment_id_number_key() == KEY
    assert master != KEY and hashlib.sha256(b"zm idempotency " + master).digest() != KEY


def test_id_numbers_are_checked_by_their_check_character() -> None:
    assert valid_id_number(NUMBER)
    assert not valid_id_number("110105194912310021")
    assert not valid_id_number("11010519491231002")


def test_a_wrong_id_number_is_refused_without_repeating_it() -> None:
    with pytest.raises(ValidationError) as refused:
        ReportedSubject(kind="person", name="张某", unit="某镇人民政府", id_number="110105194912310021")
    assert "110105194912310021" not in json.dumps([e["msg"] for e in refused.value.errors()])


def test_a_unit_has_no_officer_id_or_id_number() -> None:
    with pytest.raises(ValidationError):
        Subject(kind="unit", name="某镇人民政府", officer_id="ZZB-1")
    with pytest.raises(ValidationError):
        ReportedSubject(kind="unit", name="某镇人民政府", id_number=NUMBER)


def test_the_number_leaves_the_subject_as_its_keyed_hash_only() -> None:
    reported = ReportedSubject(kind="person", name="张某", post="镇长", unit="某镇人民政府", id_number=NUMBER)
    assert NUMBER not in repr(reported) and NUMBER not in reported.model_dump_json()
    command = RegisterReport(
        jurisdiction="331122",
        channel="letter",
        received_on=date(2024, 3, 1),
        real_name=False,
        subjects=[reported, person()],
        allegations=[AllegationDraft(summary="收受礼金")],
    )
    [received] = Report("331122-2024-000001", "331122").register(command, None, id_number_key=KEY)
    text = received.model_dump_json()
    assert NUMBER not in text and NUMBER not in repr(received)
    keyed, plain = received.subjects
    assert type(keyed) is Subject and keyed.id_number_key == id_number_key(NUMBER, KEY)
    assert keyed.person_key == f"i-{id_number_key(NUMBER, KEY)}"
    assert plain.person_key == plain.subject_id


def test_a_subject_without_identity_serialises_as_before() -> None:
    assert set(person().model_dump()) == {
        "kind",
        "subject_id",
        "name",
        "post",
        "unit",
        "party_member",
        "cadre_level",
    }
    assert person(officer_id="ZZB-1").model_dump()["officer_id"] == "ZZB-1"


def test_officer_ids_are_opaque_but_plain() -> None:
    with pytest.raises(ValidationError):
        person(officer_id="a/b")


# --- 合档: the merge of two files -------------------------------------------------------------------

MERGE = MergeFiles(other="p-0123456789abcdef", merged_on=date(2023, 10, 9), reason="组织部核实为同一人")


def test_a_merge_records_both_keys_the_date_and_the_reason() -> None:
    merge = FileMerge("o-ZZB-7", MERGE.other)
    [merged] = merge.merge(MERGE, person_key="o-ZZB-7", already_one=False)
    assert merged == FilesMerged(
        person_key="o-ZZB-7", other_key=MERGE.other, merged_on=date(2023, 10, 9), reason="组织部核实为同一人"
    )


def test_the_pair_is_one_stream_whichever_is_named_first() -> None:
    assert FileMerge("a", "b").stream_id == FileMerge("b", "a").stream_id != FileMerge("a", "c").stream_id


def test_a_pair_merged_before_is_refused() -> None:
    merge = FileMerge("o-ZZB-7", MERGE.other)
    merge.evolve(merge.merge(MERGE, person_key="o-ZZB-7", already_one=False)[0])
    with pytest.raises(Conflict) as refused:
        merge.merge(MERGE, person_key="o-ZZB-7", already_one=False)
    assert refused.value.code == "files_already_merged" and "2023-10-09" in str(refused.value.detail_zh)


def test_keys_already_one_file_through_a_third_are_refused() -> None:
    with pytest.raises(Conflict):
        FileMerge("o-ZZB-7", MERGE.other).merge(MERGE, person_key="o-ZZB-7", already_one=True)


def test_a_file_is_not_merged_with_itself() -> None:
    with pytest.raises(RuleViolation) as refused:
        check_two_files("o-ZZB-7", "o-ZZB-7")
    assert refused.value.code == "merge_with_itself" and refused.value.field == "other"
    itself = MergeFiles(other="o-ZZB-7", merged_on=date(2023, 10, 9), reason="同一人")
    with pytest.raises(RuleViolation):
        FileMerge("o-ZZB-7", "o-ZZB-7").merge(itself, person_key="o-ZZB-7", already_one=True)


def test_a_person_s_file_and_a_unit_s_are_never_one() -> None:
    check_same_kind("a", "person", "b", "person")
    with pytest.raises(RuleViolation) as refused:
        check_same_kind("a", "person", "u-1", "unit")
    assert refused.value.code == "merge_person_with_unit" and "单位" in str(refused.value.detail_zh)
