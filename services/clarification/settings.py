"""Settings of the clarification service (env prefixes ZM_CLARIFICATION_, ZM_DOCUMENTS_ and ZM_INTAKE_)."""

from __future__ import annotations

from datetime import date
from functools import lru_cache

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared import settings
from shared.envelope import CITY, JURISDICTIONS


class ClarificationSettings(BaseSettings):
    """When the candidate pool (备选库) was opened in this deployment.

    Lishui made clarification routine in 2023: a matter concluded untrue before that date did not
    enter the pool by itself; the backlog sweep (大起底) of the last three years screened it in.
    Empty (the default) means every eligible conclusion enters the pool at once.
    """

    model_config = SettingsConfigDict(env_prefix="ZM_CLARIFICATION_")

    pool_since: date | None = None


class IntakeSettings(BaseSettings):
    """Where clarification asks intake whether a 澄清内容 reveals the reporter (env ZM_INTAKE_URL,
    ZM_INTAKE_TIMEOUT_S). Without a URL: the intake service of the same stack (ZM_SERVICE_HOST and
    ZM_SERVICE_INTAKE_PORT), as `zhengming up`, the demo, the bench and the tests start it; a
    deployment whose services run on other hosts (docker compose) names it."""

    model_config = SettingsConfigDict(env_prefix="ZM_INTAKE_")

    url: str | None = Field(default=None, description="e.g. http://intake:8101")
    timeout_s: float = Field(default=3.0, gt=0, le=30)

    def base_url(self) -> str:
        return (self.url or settings.services().url("intake")).rstrip("/")


class Organ(BaseModel):
    """发文机关: who issues a jurisdiction's documents, under which 机关代字, and whom they go to."""

    names: list[str] = Field(min_length=1, description="the full names (联合行文: each organ)")
    abbreviation: str = Field(min_length=1, description="机关代字, e.g. 缙纪")
    organisation_department: str = Field(min_length=1, description="the party committee's 组织部")
    printer: str = Field(min_length=1, description="印发机关, e.g. the commission's general office")


ABBREVIATIONS: dict[str, str] = {
    "331100": "丽",
    "331102": "莲",
    "331121": "青",
    "331122": "缙",
    "331123": "遂",
    "331124": "松",
    "331125": "云",
    "331126": "庆",
    "331127": "景",
    "331181": "龙",
}
"""The one-character 机关代字 of each jurisdiction's commission (丽纪, 缙纪 ...)."""


def default_organ(jurisdiction: str) -> Organ:
    """中共缙云县纪律检查委员会 and 缙云县监察委员会 (纪委监委合署办公); a district bears its city's name."""
    place = JURISDICTIONS[jurisdiction]
    if jurisdiction != CITY and place.endswith("区"):
        place = JURISDICTIONS[CITY] + place
    return Organ(
        names=[f"中共{place}纪律检查委员会", f"{place}监察委员会"],
        abbreviation=ABBREVIATIONS.get(jurisdiction, place[0]) + "纪",
        organisation_department=f"中共{place}委组织部",
        printer=f"中共{place}纪律检查委员会办公室",
    )


class DocumentSettings(BaseSettings):
    """The documents' issuing organs and numbering (env prefix ZM_DOCUMENTS_).

    `ZM_DOCUMENTS_ORGANS` (JSON, jurisdiction -> Organ) replaces the default organ of a jurisdiction;
    `ZM_DOCUMENTS_SERIES` (JSON, kind -> 代字) and `ZM_DOCUMENTS_NUMBER_FORMAT` set the 发文字号,
    e.g. 缙纪澄〔2023〕1号: one sequence per organ, series and year, allocated once per document.
    """

    model_config = SettingsConfigDict(env_prefix="ZM_DOCUMENTS_")

    organs: dict[str, Organ] = Field(default_factory=dict)
    series: dict[str, str] = Field(
        default_factory=lambda: {
            "consent_request": "澄告",
            "approval_form": "澄审",
            "notice": "澄",
            "unit_letter": "澄函",
        }
    )
    number_format: str = "{abbreviation}{series}〔{year}〕{seq}号"

    def organ(self, jurisdiction: str) -> Organ:
        return self.organs.get(jurisdiction) or default_organ(jurisdiction)

    def number(self, jurisdiction: str, kind: str, year: int, seq: int) -> str:
        return self.number_format.format(
            abbreviation=self.organ(jurisdiction).abbreviation, series=self.series[kind], year=year, seq=seq
        )


@lru_cache
def pool_settings() -> ClarificationSettings:
    """The pool's settings, read once per process (a reaction runs per event)."""
    return ClarificationSettings()


@lru_cache
def document_settings() -> DocumentSettings:
    """The documents' settings, read once per process (a command issues documents)."""
    return DocumentSettings()
