"""Value objects and vocabularies shared by the events of every context (the glossary as types)."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, time
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from shared.bounded import NoControl
from shared.identity import person_key
from shared.roles import OFFICER_ROLES as OFFICER_ROLES
from shared.roles import ROLE_NAMES as ROLE_NAMES
from shared.roles import Role as Role
from shared.roles import role_name as role_name

OfficerId = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$", examples=["ZZB-2019-00417"])]
"""An officer id as the organisation department issues it: letters, digits, '.', '_', '-'."""

IdNumberKey = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
"""The hex HMAC-SHA-256 of an ID number (shared/identity.py)."""

Channel = Literal["letter", "visit", "online", "phone", "referred_down", "agency_transfer"]
"""来信 letter, 来访 visit, 网络 online (12388), 电话 phone, 上级转办 referred down,
其他机关移送 transferred by another agency."""

HandlingMethod = Literal[
    "talk_inquiry", "preliminary_verification", "shelve", "close", "formal_investigation"
]
"""谈话函询, 初步核实, 暂存待查, 予以了结, 移送审查调查."""

HANDLING_METHOD_NAMES: dict[HandlingMethod, str] = {
    "talk_inquiry": "谈话函询",
    "preliminary_verification": "初步核实",
    "shelve": "暂存待查",
    "close": "予以了结",
    "formal_investigation": "移送审查调查",
}
"""Each handling method as a message names it."""

Finding = Literal[
    "true", "partly_true", "untrue", "not_proven", "honest_mistake", "false_accusation", "no_violation"
]
"""属实, 部分属实, 失实, 查无实据, 错告, 诬告陷害 (suspected), 事实存在但不违规违纪 (the facts exist
but break no rule)."""

FINDING_NAMES: dict[Finding, str] = {
    "true": "属实",
    "partly_true": "部分属实",
    "untrue": "失实",
    "not_proven": "查无实据",
    "honest_mistake": "错告",
    "false_accusation": "诬告陷害",
    "no_violation": "事实存在但不违规违纪",
}
"""Each finding as a message names it."""

UNTRUE_FINDINGS: frozenset[str] = frozenset({"untrue", "honest_mistake", "false_accusation", "no_violation"})
"""Findings that the point was untrue: 失实, and its two kinds by the reporter's intent, 错告 (an
honest mistake) and 诬告陷害 (a false accusation); and 事实存在但不违规违纪, where what was reported
happened but broke no rule — the accusation of wrongdoing was untrue (Jiangxi's 2019 实施办法 counts
it as 不实). The person was wrongly accused of each such point, so each can be clarified."""

TRUE_FINDINGS: frozenset[str] = frozenset({"true", "partly_true"})
"""Findings that the point was true, wholly or in part (属实, 部分属实): a matter with one never
enters the clarification pool."""

ClarificationForm = Literal["written_notice", "face_to_face", "unit_meeting", "scoped_notice"]
"""澄清通知书 (always), 当面澄清, 会议澄清 (meeting of the unit), 一定范围内通报."""

PriorityFlag = Literal[
    "work_record", "reputation", "frontline_reform", "rural_revitalisation", "land_requisition_demolition"
]
"""优先澄清件 flags of the backlog sweep (大起底)."""

BadEffect = Literal[
    "repeated_reports", "selection_affected", "rights_harmed", "wide_spread", "other_necessary"
]
"""Bad effects on the person's work, life or standing that make clarification worthwhile; the last,
其他确有必要澄清的情形, is the positive list's catch-all and needs its reason stated."""

CadreLevel = Literal["city", "county"]
"""Cadre-management authority: whose head approves the clarification."""


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Subject(Frozen):
    """被反映人: a person (with post and unit) or a unit that a report is about."""

    kind: Literal["person", "unit"]
    subject_id: Annotated[str, Field(max_length=100), NoControl] = ""
    name: Annotated[str, Field(min_length=1, max_length=100), NoControl]
    post: Annotated[str, Field(max_length=200), NoControl] | None = None
    unit: Annotated[str, Field(max_length=200), NoControl] | None = None
    party_member: bool = True
    cadre_level: CadreLevel = "county"
    officer_id: OfficerId | None = Field(
        default=None,
        description="组织部干部编号: the organisation department's id of the cadre (opaque); the file "
        "(一人一档) is kept under it and follows the person across units",
    )
    id_number_key: IdNumberKey | None = Field(
        default=None,
        description="居民身份证号码 as a keyed hash (HMAC-SHA-256 under the deployment's key), set by "
        "intake from the number it was given; the number itself is never kept or sent",
    )

    @model_validator(mode="after")
    def _stable_id(self) -> Subject:
        # 一人一档 needs a stable id across reports; derived when the caller gives none.
        if not self.subject_id:
            digest = hashlib.sha256(f"{self.kind}|{self.name}|{self.unit or ''}".encode()).hexdigest()
            object.__setattr__(self, "subject_id", f"{self.kind[0]}-{digest[:16]}")
        if self.kind == "unit" and (self.officer_id or self.id_number_key):
            raise ValueError("a unit has no officer id or ID number")
        return self

    @model_serializer(mode="wrap")
    def _without_absent_identity(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> dict[str, Any]:
        # A subject without officer id or ID number serialises as before the fields existed, so the
        # hashes of the events recorded then still verify and their payloads read the same.
        data: dict[str, Any] = handler(self)
        for name in ("officer_id", "id_number_key"):
            if data.get(name) is None:
                data.pop(name, None)
        return data

    @property
    def person_key(self) -> str:
        """The key of the file: officer id, else the keyed ID number, else subject_id."""
        return person_key(self.subject_id, self.officer_id, self.id_number_key)


class Allegation(Frozen):
    """One point of a report; each gets its own finding."""

    allegation_id: Annotated[str, Field(min_length=1, max_length=50), NoControl]
    summary: Annotated[str, Field(min_length=1, max_length=2000), NoControl]


BUSINESS_TZ = ZoneInfo("Asia/Shanghai")

# Dates that say when something is due, not when the fact took place.
_NOT_WHEN = frozenset({"due_on"})


def business_time(payload: BaseModel) -> datetime | None:
    """When the fact of an event took place in the commission's world: its first `..._on` date
    (noon, China time), so the trail and time travel follow the procedure's own calendar rather
    than the moment a clerk typed it in (that is kept as the store's recorded_at)."""
    for name in type(payload).model_fields:
        if name.endswith("_on") and name not in _NOT_WHEN:
            value = getattr(payload, name)
            if isinstance(value, date) and not isinstance(value, datetime):
                return datetime.combine(value, time(12, 0), tzinfo=BUSINESS_TZ)
    return None
