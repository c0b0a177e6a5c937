"""Whether a text reveals a reporter, rule by rule: the name, the contact (a telephone number however
it is grouped, or any other contact) and the ID number, as the reporter gave them, in plain or
full-width characters, with spaces or without."""

from __future__ import annotations

import pytest

from services.intake.commands import ReporterIdentity
from services.intake.disclosure import (
    contact_in,
    id_number_in,
    joined_digits,
    names_in,
    normalise,
    phone_digits,
    reveals,
    reveals_any,
)

REPORTER = ReporterIdentity(name="张建国", contact="138-0571-2233", id_number="33112219800101001X")
OTHER = ReporterIdentity(name="王海燕", contact="wang.hy@example.cn")


def test_normalising_drops_spaces_and_full_width_forms() -> None:
    assert normalise("张 建\u3000国") == "张建国"
    assert normalise("１３８ ＡＢ") == "138ab"
    assert joined_digits("电话 138-0571 2233。") == "电话13805712233。"


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("经核查，检举人张建国反映的问题失实", True),
        ("经核查，张 建 国反映的问题失实", True),
        ("经核查，张\u3000建国反映的问题失实", True),
        ("经核查，反映李明同志的问题失实", False),
        ("经核查，张建反映的问题失实", False),
    ],
)
def test_the_name_as_given(text: str, found: bool) -> None:
    assert names_in(text, REPORTER.name) is found


def test_a_one_character_name_is_not_looked_for() -> None:
    assert not names_in("经核查，张某反映的问题失实", "张")


@pytest.mark.parametrize(
    "text",
    [
        "联系电话13805712233",
        "联系电话 138 0571 2233",
        "联系电话138-0571-2233",
        "联系电话１３８０５７１２２３３",
        "联系电话（138）0571—2233",
        "联系电话+86 138 0571 2233",
    ],
)
def test_a_telephone_number_however_grouped(text: str) -> None:
    assert contact_in(text, REPORTER.contact)
    assert contact_in(text, "+86 138 0571 2233")


def test_a_telephone_number_is_its_digits() -> None:
    assert phone_digits("+86 (138) 0571-2233") == "13805712233"
    assert phone_digits("0578-3012345") == "05783012345"
    assert phone_digits("12345") is None  # too short to be a number anyone dials
    assert phone_digits("wang@example.cn") is None
    assert not contact_in("经核查，问题涉及金额138万元、0571项目", REPORTER.contact)


def test_another_contact_as_written() -> None:
    assert contact_in("请联系 WANG.HY@example.cn", OTHER.contact)
    assert contact_in("请联系ｗａｎｇ．ｈｙ＠ｅｘａｍｐｌｅ．ｃｎ", OTHER.contact)
    assert not contact_in("请联系 wang@example.cn", OTHER.contact)
    assert not contact_in("丽水", "丽")  # too short to mean anyone


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("身份证号33112219800101001X", True),
        ("身份证号33112219800101001x", True),
        ("身份证号 331122 19800101 001X", True),
        ("身份证号３３１１２２１９８００１０１００１Ｘ", True),
        ("身份证号331122198001010010", False),
    ],
)
def test_the_id_number(text: str, found: bool) -> None:
    assert id_number_in(text, REPORTER.id_number) is found


def test_no_id_number_given_matches_nothing() -> None:
    assert not id_number_in("33112219800101001X", None)


def test_any_identity_of_any_reporter_of_the_matter() -> None:
    assert reveals("据王海燕反映", OTHER) and not reveals("据王海燕反映", REPORTER)
    assert reveals_any("据王海燕反映", [REPORTER, OTHER])
    assert not reveals_any("经核查，反映李明同志收受礼金的问题失实", [REPORTER, OTHER])
    assert not reveals_any("张建国", [])
