"""The one aggregate base: a stream's state, moved one event at a time by `evolve`.

An aggregate is built empty from what names it (a case id, a jurisdiction and a quarter) and
brought to its state by the unit of work, which loads its stream and evolves it event by event
(`UnitOfWork.get`). Its decide methods take a command and return the events it decides, without
applying them; the unit of work appends them, evolves the aggregate and projects them
(`UnitOfWork.save`). No I/O here: the rules stay pure."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict

from shared.errors import NotFound

if TYPE_CHECKING:
    from shared.auth import Principal


class Aggregate:
    """Base of every event-sourced aggregate of the four services."""

    noun: ClassVar[str] = "stream"
    """What the aggregate is called in a 404 ("no report R-1")."""

    noun_zh: ClassVar[str] = "记录"
    """Its Chinese name in a 404 ("没有检举控告件 R-1")."""

    version: int = 0
    """Events of the stream so far (the expected version of the next append)."""

    jurisdiction: str = ""
    """The jurisdiction the stream lies in, from its first event ("" for a stream not started)."""

    @property
    def stream_id(self) -> str:
        raise NotImplementedError

    @property
    def case_id(self) -> str:
        """The case the stream belongs to (its events' Kafka key and lock); its own id by default."""
        return self.stream_id

    @property
    def exists(self) -> bool:
        return self.version > 0

    def evolve(self, event: BaseModel) -> None:
        """Apply one of the stream's events (loaded, or just decided) to the state."""
        raise NotImplementedError

    def visible_to(self, principal: Principal) -> bool:
        """Whether a caller may act on the stream: when it lies in their jurisdictions (an aggregate
        whose rules let an organ of another level act on it says so here)."""
        return principal.sees(self.jurisdiction)

    def missing(self) -> NotFound:
        """The error of a command naming a stream that does not exist (or that the caller cannot
        see: another jurisdiction's case does not exist for them, 404 and never 403)."""
        return NotFound(f"no {self.noun} {self.case_id}", detail_zh=f"没有{self.noun_zh} {self.case_id}")


class Command(BaseModel):
    """A request to change a stream: the HTTP body (or a consumer's message) validated at the edge
    and handed to the domain as it is; path parameters name the stream."""

    model_config = ConfigDict(extra="forbid", frozen=True)
