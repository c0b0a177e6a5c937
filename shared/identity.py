"""The stable identity of a reported person (一人一档): the person key a file is kept under.

A file follows the person, not the name and unit they had when reported: the organisation
department's officer id (组织部干部编号) when the report gives one; otherwise the 居民身份证号码,
which is never kept or sent in clear but matched by a keyed hash (HMAC-SHA-256 under a key derived
from the deployment's master key, so every service computes the same key for the same number and
no table or message lets anyone confirm a guessed number); name and unit only as the fallback.
"""

from __future__ import annotations

import hashlib
import hmac
import re

OFFICER_PREFIX = "o-"
ID_NUMBER_PREFIX = "i-"

ID_NUMBER_PATTERN = re.compile(r"^\d{17}[\dX]$")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def normalise_id_number(text: str) -> str:
    """The number as GB 11643-1999 writes it: 18 characters, capital X; spaces dropped."""
    return re.sub(r"\s+", "", text).upper()


def valid_id_number(number: str) -> bool:
    """18 characters, the last the ISO 7064 MOD 11-2 check character of the other 17."""
    if not ID_NUMBER_PATTERN.match(number):
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _WEIGHTS, strict=True))
    return _CHECK[total % 11] == number[17]


def id_number_hmac_key(master_key: bytes) -> bytes:
    """The HMAC key of ID numbers, derived from the master key for this purpose only (as the
    idempotency fingerprints derive theirs), so the two can never be compared."""
    return hashlib.sha256(b"zm person id-number " + master_key).digest()


def id_number_key(number: str, key: bytes) -> str:
    """The keyed hash of a (normalised) ID number: what is kept and sent instead of the number."""
    return hmac.new(key, normalise_id_number(number).encode(), hashlib.sha256).hexdigest()


def deployment_id_number_key() -> bytes:
    """The deployment's HMAC key of ID numbers (the master key of ZM_CRYPTO_MASTER_KEY or its file)."""
    # Imported here: the events import this module for `person_key`, and need no key file.
    from shared.crypto import load_master_key
    from shared.settings import CryptoSettings

    return id_number_hmac_key(load_master_key(CryptoSettings()))


def person_key(subject_id: str, officer_id: str | None, id_number_key: str | None) -> str:
    """The key of the file: the officer id wins, then the keyed ID-number hash, then subject_id
    (a hash of name and unit, as every file was keyed before)."""
    if officer_id:
        return OFFICER_PREFIX + officer_id
    if id_number_key:
        return ID_NUMBER_PREFIX + id_number_key
    return subject_id
