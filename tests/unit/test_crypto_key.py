"""The master key: created once with owner-only permissions, or taken from the environment."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from shared.crypto import load_master_key
from shared.settings import CryptoSettings


@pytest.fixture(autouse=True)
def _no_zm_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("ZM_"):
            monkeypatch.delenv(name)


def test_first_use_creates_an_owner_only_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "secrets" / "master.key"
    key = load_master_key(CryptoSettings(master_key_file=key_file))
    assert len(key) == 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert base64.b64decode(key_file.read_text().strip(), validate=True) == key


def test_second_use_returns_the_same_key(tmp_path: Path) -> None:
    settings = CryptoSettings(master_key_file=tmp_path / "master.key")
    assert load_master_key(settings) == load_master_key(settings)


def test_keys_are_random(tmp_path: Path) -> None:
    one = load_master_key(CryptoSettings(master_key_file=tmp_path / "one.key"))
    two = load_master_key(CryptoSettings(master_key_file=tmp_path / "two.key"))
    assert one != two


def test_master_key_setting_wins_over_the_file(tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    load_master_key(CryptoSettings(master_key_file=key_file))
    wanted = bytes(range(32))
    settings = CryptoSettings(master_key=base64.b64encode(wanted).decode(), master_key_file=key_file)
    assert load_master_key(settings) == wanted


def test_master_key_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wanted = bytes(range(100, 132))
    monkeypatch.setenv("ZM_CRYPTO_MASTER_KEY", base64.b64encode(wanted).decode())
    key_file = tmp_path / "master.key"
    assert load_master_key(CryptoSettings(master_key_file=key_file)) == wanted
    assert not key_file.exists()


@pytest.mark.parametrize("length", [16, 31, 33, 64])
def test_wrong_length_setting_raises(tmp_path: Path, length: int) -> None:
    settings = CryptoSettings(
        master_key=base64.b64encode(b"k" * length).decode(), master_key_file=tmp_path / "master.key"
    )
    with pytest.raises(ValueError, match="32 bytes"):
        load_master_key(settings)


def test_empty_setting_falls_back_to_the_file(tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    assert len(load_master_key(CryptoSettings(master_key="", master_key_file=key_file))) == 32
    assert key_file.exists()


def test_wrong_length_file_raises(tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    key_file.write_text(base64.b64encode(b"short").decode())
    with pytest.raises(ValueError, match="32 bytes"):
        load_master_key(CryptoSettings(master_key_file=key_file))
