"""Registry of event types: payload model per (type, schema version) and the upcasters between versions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from shared.envelope import EventEnvelope
from shared.errors import InvalidEvent, UnknownEventType, without_values

Payload = dict[str, Any]
Upcaster = Callable[[Payload], Payload]
M = TypeVar("M", bound=type[BaseModel])


@dataclass
class EventRegistry:
    """Knows every event type, its current schema version and how to upcast older versions."""

    _models: dict[str, tuple[int, type[BaseModel]]] = field(default_factory=dict)
    _upcasters: dict[tuple[str, int], Upcaster] = field(default_factory=dict)

    def event(self, event_type: str, version: int = 1) -> Callable[[M], M]:
        """Class decorator: `@registry.event("ReportLogged", 2)` registers the current payload model."""

        def register(model: M) -> M:
            known = self._models.get(event_type)
            if known is not None and known[1] is not model:
                raise ValueError(f"event type {event_type} registered twice")
            self._models[event_type] = (version, model)
            return model

        return register

    def upcaster(self, event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Decorator for a function turning a payload of `from_version` into `from_version + 1`."""

        def register(fn: Upcaster) -> Upcaster:
            self._upcasters[(event_type, from_version)] = fn
            return fn

        return register

    def knows_model(self, model: type[BaseModel]) -> bool:
        return any(known is model for _, known in self._models.values())

    def type_of(self, model: type[BaseModel]) -> str:
        """The event type a payload model is registered as."""
        for event_type, (_, known) in self._models.items():
            if known is model:
                return event_type
        raise UnknownEventType(model.__name__)

    def knows(self, event_type: str) -> bool:
        return event_type in self._models

    def current_version(self, event_type: str) -> int:
        return self._entry(event_type)[0]

    def model(self, event_type: str) -> type[BaseModel]:
        return self._entry(event_type)[1]

    def _entry(self, event_type: str) -> tuple[int, type[BaseModel]]:
        try:
            return self._models[event_type]
        except KeyError:
            raise UnknownEventType(event_type) from None

    def upcast(self, event_type: str, version: int, payload: Payload) -> Payload:
        """Bring a stored payload up to the current schema version, one step at a time."""
        current = self.current_version(event_type)
        if version > current:
            raise InvalidEvent(f"{event_type} v{version} is newer than this service (v{current})")
        while version < current:
            step = self._upcasters.get((event_type, version))
            if step is None:
                raise InvalidEvent(f"no upcaster for {event_type} v{version}")
            try:
                payload = step(dict(payload))
            except Exception as exc:  # an old payload the upcaster cannot read is invalid, not a crash
                raise InvalidEvent(f"{event_type} v{version} cannot be upcast: {exc!r}") from exc
            version += 1
        return payload

    def decode(self, envelope: EventEnvelope) -> BaseModel:
        """The typed, upcast payload of an envelope; unknown or invalid raises a typed error."""
        model = self.model(envelope.event_type)
        payload = self.upcast(envelope.event_type, envelope.schema_version, envelope.payload)
        try:
            return model.model_validate(payload)
        except ValidationError as exc:
            raise InvalidEvent(f"{envelope.event_type}: {without_values(exc)}") from exc

    def encode(self, payload: BaseModel) -> tuple[str, int, Payload]:
        """(event_type, version, json payload) for a payload model instance."""
        for event_type, (version, model) in self._models.items():
            if type(payload) is model:
                return event_type, version, payload.model_dump(mode="json")
        raise UnknownEventType(type(payload).__name__)
