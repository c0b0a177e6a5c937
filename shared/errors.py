"""Typed errors of the shared core; entrypoints map them to HTTP problems or dead letters."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from pydantic import ValidationError


class Term(NamedTuple):
    """A name in English and in Chinese (a step, an action), for messages built from parts."""

    en: str
    zh: str


class ZhengmingError(Exception):
    """Base of the errors the shared core raises on purpose."""

    code = "error"


class ConcurrencyError(ZhengmingError):
    """An append expected a stream version that another writer has already taken."""

    code = "concurrency_conflict"

    def __init__(self, stream_id: str, expected: int, actual: int) -> None:
        super().__init__(f"stream {stream_id}: expected version {expected}, found {actual}")
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


class UnknownEventType(ZhengmingError):
    code = "unknown_event_type"


class InvalidEvent(ZhengmingError):
    code = "invalid_event"


class UndecodableMessage(ZhengmingError):
    code = "undecodable"


class KeyErased(ZhengmingError):
    """The data subject's key was destroyed: the field is erased for good."""

    code = "key_erased"


class ChainBroken(ZhengmingError):
    code = "chain_broken"


class OutOfRange(ZhengmingError):
    """A value the domain cannot compute with (a date past the calendar's end, a year 0)."""

    code = "out_of_range"

    def __init__(self, message: str, *, detail_zh: str, field: str | None = None) -> None:
        super().__init__(message)
        self.detail_zh = detail_zh
        self.field = field


class DomainError(ZhengmingError):
    """A command the workflow's rules refuse. The domain raises it; the HTTP edge answers it as
    problem+json (status by kind), the Kafka edge dead-letters the message that caused it.

    `code` names the rule for programs, `field` the input it concerns, `detail` explains it in
    English and `detail_zh` in Chinese: every raise site gives both, with the same values
    (tests/unit/test_problem_language.py fails a raise site without its own Chinese)."""

    code = "rule_violated"

    def __init__(
        self,
        detail: str,
        *,
        field: str | None = None,
        code: str | None = None,
        detail_zh: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.detail_zh = detail_zh
        if code is not None:
            self.code = code


class RuleViolation(DomainError):
    """A workflow rule forbids the command; `code` names the rule."""


class NotFound(DomainError):
    """The thing the command names does not exist (or lies where the caller cannot see)."""

    code = "not_found"


class Forbidden(DomainError):
    """The caller may not do this (role, jurisdiction, or the approver the rules require)."""

    code = "forbidden"


class Conflict(DomainError):
    """The command does not fit the state the case is in (already done, wrong step)."""

    code = "conflict"


def require_reason(reason: str, decision: Term) -> str:
    """A refusal, a return, an exit or a re-examination is recorded with its reason, in words: the
    reason stripped, or 422 `reason_required` naming the field `reason`."""
    if not reason.strip():
        raise RuleViolation(
            f"{decision.en} needs its reason",
            detail_zh=f"{decision.zh}须写明理由",
            field="reason",
            code="reason_required",
        )
    return reason.strip()


def without_values(exc: ValidationError) -> str:
    """Where and why input is invalid, never the values themselves: a reason that goes into a
    dead-letter header, a log line or an operator's view must not echo a name or a contact."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(message)'}: {e['msg']}"
        for e in exc.errors(include_input=False, include_url=False)
    )[:1900]
