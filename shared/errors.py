"""Typed errors of the shared core; entrypoints map them to HTTP problems or dead letters."""

from __future__ import annotations


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

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
