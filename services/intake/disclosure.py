"""Whether a text reveals a reporter (检举控告人): the name, contact and ID number as the reporter
gave them, matched against text that other offices mean to send out (e.g. the 澄清内容), written as
people write them (full-width digits, spaces inside a name, a phone number in groups). Pure: the
identities are opened by the caller, and neither they nor the text are logged or answered."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from services.intake.commands import ReporterIdentity
from shared.identity import normalise_id_number

NAME_MIN_CHARS = 2
"""A name is looked for from two characters on (a one-character "name" would match any text)."""

CONTACT_MIN_CHARS = 3
PHONE_MIN_DIGITS = 7
"""A contact of at least seven digits (and nothing else but separators) is a telephone number."""

_INVISIBLE = re.compile(r"[\s\u200b-\u200d\u2060\ufeff]+")
# Between two digits: what people put inside a number (hyphens and dashes, dots, brackets, spaces).
_BETWEEN_DIGITS = re.compile(r"(?<=\d)[-‐‑‒–—―.·・()\[\]/\s]+(?=\d)")
_PHONE = re.compile(r"^\+?[\d\-‐‑‒–—―.·・()\[\]/\s]+$")
_COUNTRY = re.compile(r"^(?:\+86|0086)")


def normalise(text: str) -> str:
    """NFKC (full-width digits, letters and spaces become their plain forms), case folded, with
    every whitespace and invisible character dropped: "张 三", "张三" and "张\u3000三" read alike."""
    return _INVISIBLE.sub("", unicodedata.normalize("NFKC", text).casefold())


def joined_digits(text: str) -> str:
    """The text with the separators inside numbers dropped: "138-0000 1111" -> "13800001111"."""
    return _INVISIBLE.sub("", _BETWEEN_DIGITS.sub("", unicodedata.normalize("NFKC", text).casefold()))


def phone_digits(contact: str) -> str | None:
    """The digits of a contact that is a telephone number (country code dropped), else None."""
    plain = unicodedata.normalize("NFKC", contact).strip()
    if not _PHONE.match(plain):
        return None
    digits = re.sub(r"\D", "", _COUNTRY.sub("", plain))
    return digits if len(digits) >= PHONE_MIN_DIGITS else None


def names_in(text: str, name: str) -> bool:
    wanted = normalise(name)
    return len(wanted) >= NAME_MIN_CHARS and wanted in normalise(text)


def contact_in(text: str, contact: str) -> bool:
    digits = phone_digits(contact)
    if digits is not None:
        return digits in joined_digits(text)
    wanted = normalise(contact)
    return len(wanted) >= CONTACT_MIN_CHARS and wanted in normalise(text)


def id_number_in(text: str, id_number: str | None) -> bool:
    if not id_number:
        return False
    wanted = normalise(normalise_id_number(unicodedata.normalize("NFKC", id_number)))
    return len(wanted) >= PHONE_MIN_DIGITS and wanted in joined_digits(text)


def reveals(text: str, identity: ReporterIdentity) -> bool:
    """Whether `text` contains the reporter's name, contact or ID number."""
    return (
        names_in(text, identity.name)
        or contact_in(text, identity.contact)
        or id_number_in(text, identity.id_number)
    )


def reveals_any(text: str, identities: Iterable[ReporterIdentity]) -> bool:
    return any(reveals(text, identity) for identity in identities)
