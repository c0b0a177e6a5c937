"""The directory's rules without a database: argon2id hashing, password bounds, the officer
record's validation and the demo users."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from pydantic import ValidationError

from shared.directory import (
    MAX_PASSWORD,
    MIN_PASSWORD,
    Officer,
    hash_password,
    needs_rehash,
    password_matches,
)
from shared.envelope import CITY, JURISDICTIONS
from shared.errors import RuleViolation
from shared.roles import OFFICER_ROLES
from zhengming.users_cli import demo_officers

GOOD = "correct horse battery"


def test_a_hash_is_argon2id_salted_and_verifies_only_its_password() -> None:
    first, second = hash_password(GOOD), hash_password(GOOD)
    assert first.startswith("$argon2id$") and first != second  # a salt of its own each time
    assert GOOD not in first
    assert password_matches(first, GOOD) and password_matches(second, GOOD)
    assert not password_matches(first, GOOD + "!")
    assert not password_matches("not a hash", GOOD)


def test_a_hash_of_weaker_parameters_needs_rehashing() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(GOOD)
    assert password_matches(weak, GOOD)
    assert needs_rehash(weak)
    assert not needs_rehash(hash_password(GOOD))


@pytest.mark.parametrize("password", ["x" * (MIN_PASSWORD - 1), "x" * (MAX_PASSWORD + 1)])
def test_a_password_out_of_bounds_is_refused(password: str) -> None:
    with pytest.raises(RuleViolation) as refused:
        hash_password(password)
    assert refused.value.code == "password_length" and refused.value.field == "password"


def officer(**changes: object) -> Officer:
    fields: dict[str, object] = {
        "user_id": "wang.fang",
        "name": "王芳",
        "roles": ["head"],
        "unit": "缙云县纪委监委",
        "office": "主要负责人",
        "cadre_authority": "county",
        "jurisdictions": ["331122"],
    }
    return Officer.model_validate(fields | changes)


def test_an_officer_holds_roles_of_people_only() -> None:
    assert officer(roles=["head", "case_trial", "head"]).roles == ["head", "case_trial"]
    with pytest.raises(ValidationError, match="system role"):
        officer(roles=["system"])
    with pytest.raises(ValidationError):
        officer(roles=["janitor"])
    with pytest.raises(ValidationError):
        officer(roles=[])


def test_an_officer_needs_known_jurisdictions_a_login_name_and_an_authority() -> None:
    with pytest.raises(ValidationError, match="unknown jurisdiction"):
        officer(jurisdictions=["999999"])
    with pytest.raises(ValidationError):
        officer(user_id="王 芳")
    with pytest.raises(ValidationError):
        officer(cadre_authority="province")
    with pytest.raises(ValidationError):
        officer(name="王\x00芳")


def test_the_demo_users_are_one_per_role_and_jurisdiction_with_the_demo_ids() -> None:
    users = demo_officers()
    assert len(users) == len(JURISDICTIONS) * len(OFFICER_ROLES)
    ids = {u.user_id for u in users}
    assert len(ids) == len(users)
    assert {f"{role}-{code}" for role in OFFICER_ROLES for code in JURISDICTIONS} == ids
    city_head = next(u for u in users if u.user_id == f"head-{CITY}")
    # The city head approves for the city only (a county cadre's clarification is the county head's);
    # the city's other officers read every county.
    assert city_head.cadre_authority == "city" and city_head.jurisdictions == [CITY]
    city_office = next(u for u in users if u.user_id == f"case_management-{CITY}")
    assert sorted(city_office.jurisdictions) == sorted(JURISDICTIONS)
    county_head = next(u for u in users if u.user_id == "head-331122")
    assert county_head.cadre_authority == "county" and county_head.jurisdictions == ["331122"]
    assert county_head.unit == "缙云县纪委监委" and county_head.name
    assert demo_officers() == users  # seeded names are the same on every run
