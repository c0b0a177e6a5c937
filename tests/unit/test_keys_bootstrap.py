"""`zhengming keys bootstrap` writes every key of a deployment (NEEDS of zhengming/keys_cli.py), 0600
where private, keeps what exists unless --force, never prints a key, and what it writes loads with
the loaders the services use."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.intake.inbound import SealedForIntake, load_private_key, open_sealed, seal_for_intake
from shared.auth import AuthSettings, Principal, mint, verify
from shared.crypto import load_master_key
from shared.settings import SERVICES, CryptoSettings, SigningSettings
from shared.signing import Keyring, service_key
from zhengming.cli import app
from zhengming.keys_cli import KEYRING, NEEDS, TOKEN_PRIVATE_KEY, TOKEN_PUBLIC_KEY, bootstrap, key_files

IDENTITY = {"name": "张三", "contact": "13800000000"}


@pytest.fixture(autouse=True)
def _no_zm_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("ZM_"):
            monkeypatch.delenv(name)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def contents(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_bootstrap_writes_every_key_private_ones_0600(tmp_path: Path) -> None:
    written = bootstrap(tmp_path, "city")
    assert {w.key.name for w in written} == {k.name for k in key_files("city")}
    assert {w.status for w in written} == {"created"}
    for key in key_files("city"):
        path = tmp_path / key.path
        if key.directory:
            assert sorted(p.name.split(".")[0] for p in path.glob("*.pub")) == sorted(SERVICES)
            continue
        assert path.is_file(), key.path
        if key.private:
            assert mode(path) == 0o600, key.path


def test_what_bootstrap_writes_loads_with_the_services_loaders(tmp_path: Path) -> None:
    bootstrap(tmp_path, "city")
    written = contents(tmp_path)
    assert len(load_master_key(CryptoSettings(master_key_file=tmp_path / "master.key"))) == 32
    auth = AuthSettings(
        private_key_file=tmp_path / TOKEN_PRIVATE_KEY.path, public_key_file=tmp_path / TOKEN_PUBLIC_KEY.path
    )
    principal = Principal(user_id="head-331122", role="head", unit="缙云县纪委监委", jurisdictions=["331122"])
    assert verify(mint(principal, auth), auth) == principal
    inbound = load_private_key(tmp_path / "inbound-x25519.pem")
    sealed = SealedForIntake.model_validate(seal_for_intake(IDENTITY, inbound.public_key()))
    assert open_sealed(sealed, inbound).model_dump(exclude_none=True) == IDENTITY
    signing = SigningSettings(key_dir=tmp_path / "signing", keyring_dir=tmp_path / KEYRING.path)
    ring = Keyring.load(tmp_path / KEYRING.path)
    for service in SERVICES:
        key = service_key(service, signing)
        trusted = ring.get(key.key_id)
        assert trusted is not None and trusted.service == service
    assert contents(tmp_path) == written, "the loaders found every key: none created, none changed"


def test_a_second_run_keeps_every_key_and_force_replaces_them(tmp_path: Path) -> None:
    bootstrap(tmp_path, "city")
    before = contents(tmp_path)
    again = bootstrap(tmp_path, "city")
    assert {w.status for w in again} == {"kept"}
    assert contents(tmp_path) == before
    (tmp_path / "inbound-x25519.pem").unlink()
    partly = {w.key.name: w.status for w in bootstrap(tmp_path, "city")}
    assert partly.pop("inbound_key") == "created" and set(partly.values()) == {"kept"}
    assert contents(tmp_path)["master.key"] == before["master.key"]
    forced = {w.key.name: w.status for w in bootstrap(tmp_path, "city", force=True)}
    assert forced.pop("keyring") == "updated" and set(forced.values()) == {"replaced"}
    after = contents(tmp_path)
    for name in ("master.key", "token-signing.pem", "token-signing.pub.pem", "signing/review.pem"):
        assert after[name] != before[name], name
    # Rotated, not lost: events signed by the old keys still verify.
    assert set(before) < set(after)
    assert len(list((tmp_path / KEYRING.path).glob("*.pub"))) == 2 * len(SERVICES)
    assert mode(tmp_path / "master.key") == 0o600


def test_a_county_writes_its_own_keys_and_waits_for_the_citys(tmp_path: Path) -> None:
    written = {w.key.name: w.status for w in bootstrap(tmp_path, "county")}
    assert written.pop("token_public_key") == "absent" and written.pop("city_kafka_ca") == "absent"
    assert set(written.values()) == {"created"}
    assert not (tmp_path / TOKEN_PRIVATE_KEY.path).exists(), "the county mints no token"
    assert not (tmp_path / TOKEN_PUBLIC_KEY.path).exists(), "the token public key is the city's"
    (tmp_path / TOKEN_PUBLIC_KEY.path).write_bytes(b"the city's")
    assert {w.key.name: w.status for w in bootstrap(tmp_path, "county")}["token_public_key"] == "kept"
    assert (tmp_path / TOKEN_PUBLIC_KEY.path).read_bytes() == b"the city's"
    assert {k.name for k in key_files("county")} == {k.name for ks in NEEDS["county"].values() for k in ks}


def test_the_command_prints_paths_never_keys(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "secrets"
    uid, gid = os.getuid(), os.getgid()
    done = runner.invoke(app, ["keys", "bootstrap", "--out", str(out), "--owner", f"{uid}:{gid}"])
    assert done.exit_code == 0, done.output
    assert f"created  {out / 'master.key'}" in done.output
    assert "for intake)" in done.output  # the token private key goes to intake only
    secrets = contents(out)
    assert "PRIVATE KEY" not in done.output
    assert secrets["master.key"].decode() not in done.output
    assert base64.b64encode(secrets["signing/intake.pem"]).decode()[:20] not in done.output
    again = runner.invoke(app, ["keys", "bootstrap", "--out", str(out)])
    assert again.exit_code == 0 and "created" not in again.output and contents(out) == secrets
    bad = runner.invoke(app, ["keys", "bootstrap", "--out", str(out), "--deployment", "province"])
    assert bad.exit_code != 0


def test_a_kept_signing_key_gets_its_public_key_back_into_the_keyring(tmp_path: Path) -> None:
    """A service would otherwise try to publish it into its read-only keyring and fail to start."""
    bootstrap(tmp_path, "city")
    before = contents(tmp_path)
    [review_pub] = (tmp_path / KEYRING.path).glob("review.*.pub")
    review_pub.unlink()
    statuses = {w.key.name: w.status for w in bootstrap(tmp_path, "city")}
    assert statuses.pop("keyring") == "updated" and set(statuses.values()) == {"kept"}
    assert contents(tmp_path) == before
