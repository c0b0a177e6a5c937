"""The event contract of zhengming: every event type of every context, in one registry.

Services decide and apply these events; consumers of other services decode them with the same
registry, so an unknown type on a topic is a dead letter everywhere.
"""

from shared.registry import EventRegistry

registry = EventRegistry()

# Importing the modules registers their events.
from shared.events import archive, clarification, intake, review  # noqa: E402

__all__ = ["archive", "clarification", "intake", "registry", "review"]
