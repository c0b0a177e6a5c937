"""`zhengming tokens`: one token per role for users granted one jurisdiction, several, or the whole
city (--city), each verifying with the deployment's key."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from shared.auth import AuthSettings, verify
from shared.envelope import JURISDICTIONS
from shared.roles import OFFICER_ROLES
from zhengming.cli import app


@pytest.fixture
def keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AuthSettings:
    monkeypatch.setenv("ZM_AUTH_PRIVATE_KEY_FILE", str(tmp_path / "token.pem"))
    monkeypatch.setenv("ZM_AUTH_PUBLIC_KEY_FILE", str(tmp_path / "token.pub.pem"))
    return AuthSettings()


def tokens(*args: str) -> dict[str, str]:
    done = CliRunner().invoke(app, ["tokens", *args])
    assert done.exit_code == 0, done.output
    lines = [line.removeprefix("export ") for line in done.output.splitlines()]
    return dict(line.split("=", 1) for line in lines)


def test_one_token_per_role_for_several_jurisdictions(keys: AuthSettings) -> None:
    minted = tokens("--jurisdiction", "331122", "--jurisdiction", "331121")
    assert sorted(minted) == sorted(f"ZM_TOKEN_{r.upper()}" for r in OFFICER_ROLES)
    auditor = verify(minted["ZM_TOKEN_AUDITOR"], keys)
    assert auditor.role == "auditor" and auditor.user_id == "auditor-331122"
    assert auditor.jurisdictions == ["331122", "331121"]


def test_the_city_grants_the_ten_jurisdictions(keys: AuthSettings) -> None:
    head = verify(tokens("--city")["ZM_TOKEN_HEAD"], keys)
    assert head.user_id == "head-331100" and sorted(head.jurisdictions) == sorted(JURISDICTIONS)


def test_an_unknown_jurisdiction_is_refused(keys: AuthSettings) -> None:
    done = CliRunner().invoke(app, ["tokens", "--jurisdiction", "999999"])
    assert done.exit_code == 2 and "999999" in done.output


def test_the_citys_code_alone_is_the_city_and_both_flags_are_refused(keys: AuthSettings) -> None:
    auditor = verify(tokens("--jurisdiction", "331100")["ZM_TOKEN_AUDITOR"], keys)
    assert sorted(auditor.jurisdictions) == sorted(JURISDICTIONS)
    done = CliRunner().invoke(app, ["tokens", "--city", "--jurisdiction", "331122"])
    assert done.exit_code == 2 and "--city" in done.output
