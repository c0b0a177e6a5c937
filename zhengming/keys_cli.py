"""`zhengming keys`: the key files a Docker deployment mounts, which process needs which (the one
table the compose files are checked against), and `bootstrap`, which writes them.

Locally every process finds and creates its keys under `.local/secrets`; in a container that would
be the writable layer, lost with the container and shared by nobody. A deployment writes them once
into a secrets directory (`deploy/secrets`, or `deploy/county/secrets` for a county) and mounts each
into the processes that need it, read-only: files as compose secrets, the keyring (a directory of
public keys, re-read when a key is rotated in) as a read-only bind volume.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Literal

import typer

Deployment = Literal["city", "county"]
"""`city`: docker-compose.yml, a stack that issues its own tokens; `county`:
docker-compose.county.yml, against the city's Kafka cluster and with the city's tokens."""

SECRETS_DIRS: dict[Deployment, str] = {"city": "deploy/secrets", "county": "deploy/county/secrets"}
"""Where each compose file takes its secrets from (relative to the repository root)."""

CONTAINER_UID = 10001
"""The image's user (Dockerfile `useradd --uid 10001`): a compose secret is a bind mount that keeps the
host file's owner and mode, so on a Linux engine the 0600 private keys must belong to this user."""

RUN_SECRETS = "/run/secrets"


@dataclass(frozen=True)
class KeyFile:
    """One key file (or directory of public keys) of a deployment's secrets directory."""

    name: str
    """The secret's name in the compose files."""
    path: str
    """Where it lies under the secrets directory (the layout of `.local/secrets`)."""
    private: bool
    setting: str
    """The ZM_ setting that points the process at it."""
    target: str
    """Where the container sees it."""
    value: str = ""
    """What the setting is set to, when not `target` (a key directory holding `<service>.pem`)."""
    directory: bool = False
    """Mounted as a read-only bind volume: a compose secret is one file."""
    from_city: bool = False
    """A county gets it from the city's operator; bootstrap does not write it."""

    @property
    def env(self) -> tuple[str, str]:
        return self.setting, self.value or self.target


def _secret(name: str, path: str, private: bool, setting: str) -> KeyFile:
    return KeyFile(name, path, private, setting, f"{RUN_SECRETS}/{name}")


MASTER_KEY = _secret("master_key", "master.key", True, "ZM_CRYPTO_MASTER_KEY_FILE")
TOKEN_PRIVATE_KEY = _secret("token_private_key", "token-signing.pem", True, "ZM_AUTH_PRIVATE_KEY_FILE")
TOKEN_PUBLIC_KEY = _secret("token_public_key", "token-signing.pub.pem", False, "ZM_AUTH_PUBLIC_KEY_FILE")
INBOUND_KEY = _secret("inbound_key", "inbound-x25519.pem", True, "ZM_INBOUND_KEY_FILE")
CITY_KAFKA_CA = replace(
    _secret("city_kafka_ca", "city-kafka-ca.pem", False, "ZM_KAFKA_SSL_CAFILE"), from_city=True
)
KEYRING = KeyFile(
    "keyring", "keyring", False, "ZM_SIGNING_KEYRING_DIR", f"{RUN_SECRETS}/keyring", directory=True
)


def signing_key(service: str) -> KeyFile:
    """The service's Ed25519 key: signs the events it appends and its checkpoints (shared/signing.py;
    the `checkpoint-<service>.pem` of earlier versions became this key)."""
    return KeyFile(
        f"{service}_signing_key",
        f"signing/{service}.pem",
        True,
        "ZM_SIGNING_KEY_DIR",
        f"{RUN_SECRETS}/signing/{service}.pem",
        value=f"{RUN_SECRETS}/signing",
    )


# What every service holds: the master key (FieldCipher of shared/runtime.py, idempotency
# fingerprints, the id-number HMAC of shared/identity.py), the token public key (shared/http.py
# verifies every bearer token) and the keyring (shared/consumer.py checks who signed each event read,
# /audit/verify the store's). Intake alone adds the token private key (POST /auth/login mints, the
# others run with ZM_AUTH_ISSUE_TOKENS=false) and its X25519 inbound key (other agencies' reports).
# The console holds none (a client of the services' HTTP APIs with the user's token), nor does the
# one-shot migration (SQL only).
_CITY = (MASTER_KEY, TOKEN_PUBLIC_KEY, KEYRING)
_COUNTY = (MASTER_KEY, replace(TOKEN_PUBLIC_KEY, from_city=True), KEYRING, CITY_KAFKA_CA)

NEEDS: dict[Deployment, dict[str, tuple[KeyFile, ...]]] = {
    "city": {
        "intake": (*_CITY, signing_key("intake"), TOKEN_PRIVATE_KEY, INBOUND_KEY),
        "review": (*_CITY, signing_key("review")),
        "clarification": (*_CITY, signing_key("clarification")),
        "archive": (*_CITY, signing_key("archive")),
        "console": (),
        "migrate": (),
    },
    # The county's tokens come from the city (no private key, no login of its own); its own master,
    # signing and inbound keys; its keyring holds its own services' public keys (its consumers read
    # only its own topics), and the city's keyring gets them too.
    "county": {
        "intake": (*_COUNTY, signing_key("intake"), INBOUND_KEY),
        "review": (*_COUNTY, signing_key("review")),
        "clarification": (*_COUNTY, signing_key("clarification")),
        "archive": (*_COUNTY, signing_key("archive")),
        "migrate": (),
    },
}
"""Deployment -> process -> the key files it mounts: exactly these, no other."""


def key_files(deployment: Deployment) -> list[KeyFile]:
    """Every key file of the deployment, each once."""
    found: dict[str, KeyFile] = {}
    for needed in NEEDS[deployment].values():
        for key in needed:
            found.setdefault(key.name, key)
    return list(found.values())


def holders(deployment: Deployment, key: KeyFile) -> list[str]:
    return [process for process, needed in NEEDS[deployment].items() if key in needed]


# -- bootstrap -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Written:
    key: KeyFile
    path: Path
    status: Literal["created", "kept", "replaced", "updated", "absent"]


def _present(path: Path) -> bool:
    return any(path.glob("*.pub")) if path.is_dir() else path.exists()


def _create(key: KeyFile, out: Path) -> None:
    """Create a missing key file with the project's own key functions (the ones local runs use)."""
    path = out / key.path
    if key.name.endswith("_signing_key"):
        from shared.settings import SigningSettings
        from shared.signing import rotate

        # A rotation: its public key enters the keyring, an old one stays (what it signed verifies).
        rotate(
            key.name.removesuffix("_signing_key"),
            SigningSettings(key_dir=path.parent, keyring_dir=out / KEYRING.path),
        )
    elif key.name == MASTER_KEY.name:
        from shared.crypto import load_master_key
        from shared.settings import CryptoSettings

        load_master_key(CryptoSettings(master_key=None, master_key_file=path))
    elif key.name in (TOKEN_PRIVATE_KEY.name, TOKEN_PUBLIC_KEY.name):
        from shared.auth import AuthSettings, ensure_keys

        # The public key is derived from the private one (and rewritten with a new private one).
        private, public = out / TOKEN_PRIVATE_KEY.path, out / TOKEN_PUBLIC_KEY.path
        ensure_keys(AuthSettings(private_key_file=private, public_key_file=public))
    elif key.name == INBOUND_KEY.name:
        from services.intake.inbound import load_private_key

        load_private_key(path)
    else:
        raise ValueError(f"no function creates {key.name}")


def _publish_signing_keys(out: Path, deployment: Deployment) -> None:
    """Every signing key's public key in the keyring, kept keys too: a service would otherwise try
    to add it to its read-only keyring and fail to start."""
    from shared.settings import SigningSettings
    from shared.signing import service_key

    signing = SigningSettings(key_dir=out / "signing", keyring_dir=out / KEYRING.path)
    for key in key_files(deployment):
        if key.name.endswith("_signing_key"):
            service_key(key.name.removesuffix("_signing_key"), signing)


# Private before public: the token public key comes from the private one.
_ORDER = ("master_key", "token_private_key", "token_public_key")


def bootstrap(
    out: Path, deployment: Deployment = "city", *, force: bool = False, owner: tuple[int, int] | None = None
) -> list[Written]:
    """Write every key the deployment needs under `out` (private files 0600, by the functions that
    create them); existing keys are kept unless `force`, which replaces them (a new master key
    leaves what the old one sealed unreadable). `owner` (uid, gid; -1 keeps it) is given every
    private file."""
    keys = sorted(key_files(deployment), key=lambda k: _ORDER.index(k.name) if k.name in _ORDER else 9)
    before = {key.name: _present(out / key.path) for key in keys}
    ring = out / KEYRING.path
    published = set(ring.glob("*.pub"))
    created: set[str] = set()
    for key in keys:
        if not (key.from_city or key.directory) and (force or not before[key.name]):
            if force:
                (out / key.path).unlink(missing_ok=True)
            _create(key, out)
            created.add(key.name)
    _publish_signing_keys(out, deployment)
    written: list[Written] = []
    for key in keys:
        path, existed = out / key.path, before[key.name]
        status: Literal["created", "kept", "replaced", "updated", "absent"] = "kept"
        if key.from_city:
            status = "kept" if existed else "absent"
        elif key.directory:
            status = "kept" if set(ring.glob("*.pub")) == published else "updated" if existed else "created"
        elif key.name in created or (key.name == TOKEN_PUBLIC_KEY.name and TOKEN_PRIVATE_KEY.name in created):
            status = "replaced" if existed else "created"
        written.append(Written(key, path, status))
        if key.private and owner is not None:
            os.chown(path, *owner)
    return written


def _owner(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    uid, _, gid = value.partition(":")
    try:
        return int(uid), int(gid) if gid else -1
    except ValueError:
        raise typer.BadParameter(f"UID[:GID], numeric (the image's user is {CONTAINER_UID})") from None


keys_app = typer.Typer(help="The key files of a Docker deployment.", no_args_is_help=True)


@keys_app.command("bootstrap")
def bootstrap_command(
    out: Annotated[
        Path | None,
        typer.Option(help="the secrets directory (default: the deployment's, from the repository root)"),
    ] = None,
    deployment: Annotated[
        str, typer.Option(help="city (docker-compose.yml) or county (docker-compose.county.yml)")
    ] = "city",
    force: Annotated[
        bool,
        typer.Option(
            help="replace existing keys (a new master key leaves what the old one sealed unreadable;"
            " old signing public keys stay in the keyring)"
        ),
    ] = False,
    owner: Annotated[
        str | None,
        typer.Option(
            help=f"UID[:GID]: chown the private files (as root), e.g. {CONTAINER_UID}, the image's user"
        ),
    ] = None,
) -> None:
    """Write every key the deployment mounts (private files 0600; existing keys are kept) and say
    which process gets which; never prints a key."""
    if deployment not in NEEDS:
        raise typer.BadParameter(f"one of {', '.join(NEEDS)}", param_hint="--deployment")
    chosen: Deployment = "county" if deployment == "county" else "city"
    directory = out or Path(SECRETS_DIRS[chosen])
    try:
        written = bootstrap(directory, chosen, force=force, owner=_owner(owner))
    except PermissionError as exc:
        typer.echo(f"cannot write {exc.filename}: {exc.strerror}", err=True)
        raise typer.Exit(1) from None
    for entry in written:
        kind = "private" if entry.key.private else "public"
        to = ", ".join(holders(chosen, entry.key))
        if entry.status == "absent":
            typer.echo(f"absent   {entry.path}  ({kind}; from the city's operator; for {to})")
            continue
        typer.echo(f"{entry.status:<8} {entry.path}  ({kind}; for {to})")
        if entry.key.name == KEYRING.name:
            for pub in sorted(entry.path.glob("*.pub")):
                typer.echo(f"           {pub.name}")
    if chosen == "county":
        typer.echo("give the city's operator the keyring's .pub files: the city reads the county's topics")
    missing = [entry.path for entry in written if entry.status == "absent"]
    if missing:
        typer.echo("copy the city's files there before `docker compose up`: " + ", ".join(map(str, missing)))
    if owner is None and os.getuid() != CONTAINER_UID:
        typer.echo(
            f"on a Linux engine the containers (uid {CONTAINER_UID}) read the 0600 files only as their"
            f" owner: `sudo chown {CONTAINER_UID}` them, or run again as root with --owner {CONTAINER_UID}"
        )
