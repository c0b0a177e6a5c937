"""The roles of the commission's officers and of the services: one light module, so what needs
only the roles (minting a token, a command's help) does not load the event contract."""

from __future__ import annotations

from typing import Literal, get_args

Role = Literal[
    "letters_office",
    "handling_department",
    "case_trial",
    "case_management",
    "head",
    "organisation_department",
    "auditor",
    "operator",
    "system",
]
"""信访室, 承办部门, 审理室, 案管室, 主要负责人, 组织部, auditor, operator (运维: the deployment's
consumers and dead letters, no case); system = a service reacting to events."""

OFFICER_ROLES: tuple[str, ...] = tuple(r for r in get_args(Role) if r != "system")
"""The roles a person can hold (system is the services' own)."""

ROLE_NAMES: dict[Role, str] = {
    "letters_office": "信访室",
    "handling_department": "承办部门",
    "case_trial": "审理室",
    "case_management": "案管室",
    "head": "主要负责人",
    "organisation_department": "组织部",
    "auditor": "审计人员",
    "operator": "运维人员",
    "system": "系统",
}
"""The Chinese name of each role, for messages."""


def role_name(role: str) -> str:
    """The Chinese name of a role (a string that is no role stays as it is)."""
    return next((name for known, name in ROLE_NAMES.items() if known == role), role)
