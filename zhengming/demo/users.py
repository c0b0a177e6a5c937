"""Tokens of several jurisdictions at once, for the demo's city-level callers."""

from __future__ import annotations

from shared.auth import Principal, mint
from shared.envelope import JURISDICTIONS
from zhengming.client import Users


class DemoUsers(Users):
    """Users.token, and also for several jurisdictions joined with '+': the city's head approving
    a city-managed cadre of a county, the city's auditor reading the city and its counties."""

    def __init__(self) -> None:
        super().__init__()
        self._several: dict[tuple[str, str], str] = {}

    def token(self, role: str, jurisdiction: str) -> str:
        if "+" not in jurisdiction:
            return super().token(role, jurisdiction)
        key = (role, jurisdiction)
        if key not in self._several:
            codes = jurisdiction.split("+")
            principal = Principal(
                user_id=f"{role}-{codes[0]}",
                role=role,
                unit=f"{JURISDICTIONS[codes[0]]}纪委监委",
                jurisdictions=codes,
            )
            self._several[key] = mint(principal)
        return self._several[key]
