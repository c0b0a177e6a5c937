"""Field encryption for personal data: one AES-256-GCM key per data subject, wrapped by a master key.

A sealed field goes into an event payload before the event is hashed; destroying the subject's key
(crypto-shredding) makes the field unreadable for good while every hash in the chain still holds.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ConfigDict

from shared.db import Conn
from shared.errors import KeyErased
from shared.settings import CryptoSettings

ALGORITHM = "AES-256-GCM"


class SealedField(BaseModel):
    """An encrypted value inside an event payload; `subject_id` names the key that opens it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alg: str = ALGORITHM
    subject_id: str
    nonce: str
    ciphertext: str


def load_master_key(settings: CryptoSettings) -> bytes:
    """The key-encryption key: from ZM_CRYPTO_MASTER_KEY, or a local file created on first use."""
    if settings.master_key:
        key = base64.b64decode(settings.master_key)
    else:
        path: Path = settings.key_file()
        if not path.exists():
            # Written whole under a name of this process's, then linked in: of services starting
            # together, one key wins and none reads a half-written or empty file.
            path.parent.mkdir(parents=True, exist_ok=True)
            draft = path.with_name(f".{path.name}.{os.getpid()}")
            fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(base64.b64encode(secrets.token_bytes(32)).decode())
            with contextlib.suppress(FileExistsError):
                os.link(draft, path)
            draft.unlink()
        key = base64.b64decode(path.read_text().strip())
    if len(key) != 32:
        raise ValueError("the master key must be 32 bytes (base64)")
    return key


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class FieldCipher:
    """Seals and opens personal fields with per-subject keys kept in the `subject_keys` table."""

    def __init__(self, master_key: bytes) -> None:
        self._kek = AESGCM(master_key)

    async def _subject_key(self, conn: Conn, subject_id: str, create: bool) -> bytes:
        row = await conn.fetchrow("SELECT wrapped_key FROM subject_keys WHERE subject_id = $1", subject_id)
        if row is not None:
            wrapped: bytes = row["wrapped_key"]
            return self._kek.decrypt(wrapped[:12], wrapped[12:], subject_id.encode())
        if not create:
            raise KeyErased(f"key of {subject_id} is erased")
        erased = await conn.fetchval("SELECT 1 FROM erased_subjects WHERE subject_id = $1", subject_id)
        if erased:
            raise KeyErased(f"{subject_id} was erased; it cannot be given new data")
        key = AESGCM.generate_key(bit_length=256)
        nonce = secrets.token_bytes(12)
        wrapped = nonce + self._kek.encrypt(nonce, key, subject_id.encode())
        await conn.execute(
            "INSERT INTO subject_keys (subject_id, wrapped_key) VALUES ($1, $2)"
            " ON CONFLICT (subject_id) DO NOTHING",
            subject_id,
            wrapped,
        )
        # Two writers may race to create the key: whichever row won is the key.
        return await self._subject_key(conn, subject_id, create=False)

    async def seal(self, conn: Conn, subject_id: str, plaintext: str, field: str) -> SealedField:
        """Encrypt `plaintext` for `subject_id`; `field` is bound as associated data."""
        key = await self._subject_key(conn, subject_id, create=True)
        nonce = secrets.token_bytes(12)
        ct = AESGCM(key).encrypt(nonce, plaintext.encode(), f"{subject_id}|{field}".encode())
        return SealedField(subject_id=subject_id, nonce=_b64(nonce), ciphertext=_b64(ct))

    async def open(self, conn: Conn, sealed: SealedField, field: str) -> str:
        """Decrypt a sealed field; raises KeyErased once the subject's key is destroyed."""
        key = await self._subject_key(conn, sealed.subject_id, create=False)
        plaintext = AESGCM(key).decrypt(
            base64.b64decode(sealed.nonce),
            base64.b64decode(sealed.ciphertext),
            f"{sealed.subject_id}|{field}".encode(),
        )
        return plaintext.decode()

    @staticmethod
    async def erase(conn: Conn, subject_id: str, erased_by: str) -> bool:
        """Destroy the subject's key (crypto-shredding); True when a key was destroyed."""
        deleted = await conn.fetchval(
            "DELETE FROM subject_keys WHERE subject_id = $1 RETURNING 1", subject_id
        )
        await conn.execute(
            "INSERT INTO erased_subjects (subject_id, erased_by) VALUES ($1, $2)"
            " ON CONFLICT (subject_id) DO NOTHING",
            subject_id,
            erased_by,
        )
        return bool(deleted)
