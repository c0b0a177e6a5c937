"""Composition root of the archive service (备案, 回访, 档案): `zhengming serve archive`."""

from __future__ import annotations

from pydantic import BaseModel

from services.archive.api import build_api
from services.archive.consumers import clarification_facts, consumers, intake_facts, review_facts
from services.archive.projections import project
from shared.events.archive import PersonnelNoticeV1
from shared.runtime import Projector, ServiceDefinition
from shared.topics import personnel_notices_topic

definition = ServiceDefinition(name="archive", build_api=build_api, consumers=consumers, projector=project)

# Outbound integration contracts (documented in the AsyncAPI document): name -> (address, message).
PUBLIC_CONTRACTS: dict[str, tuple[str, type[BaseModel]]] = {
    "public.personnel-notices.v1": (personnel_notices_topic("{jurisdiction}"), PersonnelNoticeV1),
}

# Replay (zhengming audit replay): the statistics read models fed by other contexts' events are
# rebuilt through these pure functions; the filing reaction is never replayed (its own events are).
REPLAY_FOREIGN: dict[str, Projector] = {
    "intake": intake_facts,
    "review": review_facts,
    "clarification": clarification_facts,
}
