"""The Lishui (丽水) Q1 2023 scenario as data: a seeded, pure generator of case plans (no I/O).

What Lishui published for the first quarter of 2023 is the target the plans are built towards: 70
party members and 6 units cleared (澄清正名), the city level and all 9 counties covered, and Jinyun
(缙云县) with 18 untrue matters screened into its candidate pool by the backlog sweep (大起底) and 13 of
them cleared. The plans only say what each actor does and when; the figures come out of the
services when `zhengming demo` carries the plans through them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any, Literal

from faker import Faker

from shared.envelope import CITY, JURISDICTIONS
from shared.events.common import BadEffect, Channel, ClarificationForm, Finding, HandlingMethod, PriorityFlag
from shared.workdays import add_working_days, next_working_day, working_days, working_days_before

JINYUN = "331122"
QUARTER = "2023Q1"
QUARTER_FIRST = date(2023, 1, 1)
QUARTER_LAST = date(2023, 3, 31)

# What Lishui published for 2023Q1, per unit of --scale.
PERSONS_CLEARED = 70
UNITS_CLEARED = 6
JINYUN_SWEPT = 18
JINYUN_CLEARED = 13
# Jinyun's 18 screened matters: 12 persons and 1 unit cleared, the other 5 not this quarter.
JINYUN_CLEARED_UNITS = 1
JINYUN_REFUSED = 2  # refused at assessment on the negative list
JINYUN_NO_CONSENT = 1  # the person does not agree: stays in the pool
JINYUN_NOT_READY = 2  # one sent back by the re-review, one not yet re-reviewed at the round
# Old matters of Jinyun the sweep looks at but does not screen (found partly true, not proven).
JINYUN_HISTORIC_INELIGIBLE = 2
# Every jurisdiction clears at least this many persons per unit of scale.
MIN_PERSONS_PER_JURISDICTION = 3

SWEEP_AS_OF = date(2023, 1, 16)
ROUND_DAYS = (date(2023, 3, 27), date(2023, 3, 28))
NOTICE_FROM = date(2023, 4, 3)
RESULTS_REPORTED_ON = date(2023, 3, 31)
# Matters to be cleared this quarter conclude by then, so the chain fits before the rounds.
CLEARED_CONCLUDED_BY = date(2023, 3, 10)
OTHERS_CONCLUDED_BY = date(2023, 3, 24)

DIRECT_CHANNELS: tuple[Channel, ...] = ("letter", "visit", "online", "phone")
INBOUND_SHARE = 0.10

Outcome = Literal[
    "cleared",  # through the whole chain and the quarterly round
    "refused",  # refused at assessment (负面清单)
    "no_consent",  # candidate whose person does not consent: stays in the pool
    "sent_back",  # the re-review sent it back; not ready at the round
    "assessed",  # assessed, not yet re-reviewed at the round
    "in_pool",  # candidate, not started this quarter
    "not_eligible",  # concluded true, partly true, not proven, honest mistake: never in the pool
    "open",  # verification still running at the end of the quarter
    "repeat",  # 重复件 merged into the matter it repeats
]
Via = Literal["http", "inbound", "send_down"]
GreenChannel = Literal["none", "before", "after"]
Party = Literal["person", "unit"]
Refusal = Literal["no_bad_effect", "effect_only_from_interviews"]


# --- plans ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedSubject:
    """被反映人 as the report names them."""

    kind: Literal["person", "unit"]
    name: str
    post: str | None = None
    unit: str | None = None
    cadre_level: Literal["city", "county"] = "county"

    def body(self) -> dict[str, Any]:
        """The subject as the intake API takes it."""
        out: dict[str, Any] = {"kind": self.kind, "name": self.name, "cadre_level": self.cadre_level}
        if self.kind == "person":
            out.update(post=self.post, unit=self.unit, party_member=True)
        return out

    @property
    def organisation(self) -> str:
        """The unit whose party committee gets the feedback (the unit itself for a unit)."""
        return self.unit or self.name


@dataclass(frozen=True)
class ReporterPlan:
    """检举控告人 of a real-name report (never printed, never leaves intake in clear)."""

    name: str
    contact: str
    id_number: str

    def body(self) -> dict[str, str]:
        return {"name": self.name, "contact": self.contact, "id_number": self.id_number}


@dataclass(frozen=True)
class Review:
    """复核 by the quality-evaluation group on a day, passing or sending the matter back."""

    on: date
    passed: bool


@dataclass(frozen=True)
class ChainPlan:
    """申请—评估—复核—审批 of one candidate."""

    initiated_by: Literal["department", "person"]
    consent: bool
    start_on: date
    assess_on: date | None = None
    bad_effects: tuple[BadEffect, ...] = ()
    effect_only_from_interviews: bool = False
    reviews: tuple[Review, ...] = ()
    approve_on: date | None = None


@dataclass(frozen=True)
class Visit:
    """回访 recorded on a day."""

    party: Party
    on: date


@dataclass(frozen=True)
class AfterRound:
    """反馈, acknowledgement, 备案 and return visits after the round clarified the matter."""

    feedback_on: date
    acknowledged_on: date
    filed_on: date
    unit_head: str
    visits: tuple[Visit, ...] = ()


@dataclass(frozen=True)
class DemoCase:
    """One report and everything its actors do with it, dated."""

    key: str
    jurisdiction: str
    outcome: Outcome
    subject: PlannedSubject
    allegations: tuple[str, ...]
    findings: tuple[Finding, ...]  # one per allegation; empty for a repeat (merged, never verified)
    channel: Channel
    via: Via
    reporter: ReporterPlan | None
    received_on: date
    accepted_on: date | None = None
    handed_on: date | None = None
    method: HandlingMethod | None = None
    decided_on: date | None = None
    concluded_on: date | None = None
    referred_on: date | None = None  # a false accusation's referral
    green_channel: GreenChannel = "none"
    green_filed_on: date | None = None
    swept: bool = False  # an old matter the backlog sweep screens
    priority_flags: tuple[PriorityFlag, ...] = ()
    repeat_of: str | None = None  # key of the matter a repeat is merged into
    merged_on: date | None = None
    source_agency: str | None = None  # inbound: the agency that transferred it
    city_received_on: date | None = None  # send_down: when the city received it
    acceptance_notice_on: date | None = None
    result_notice_on: date | None = None
    chain: ChainPlan | None = None
    after_round: AfterRound | None = None
    showcase: bool = False  # the case whose audit timeline the demo prints

    @property
    def label(self) -> str:
        """The key without its jurisdiction, e.g. C07 (cleared), S03 (swept), D1 (repeat)."""
        return self.key.split("-", 1)[1]

    @property
    def real_name(self) -> bool:
        return self.reporter is not None

    @property
    def in_quarter(self) -> bool:
        """Received in 2023Q1 (the old matters of the sweep were not)."""
        return QUARTER_FIRST <= self.received_on <= QUARTER_LAST

    @property
    def false_accusation(self) -> bool:
        return "false_accusation" in self.findings


@dataclass(frozen=True)
class RoundPlan:
    """集中澄清 of one jurisdiction."""

    jurisdiction: str
    held_on: date
    forms: tuple[ClarificationForm, ...]
    scope: str = ""


@dataclass(frozen=True)
class Targets:
    """What the quarter must come to, per jurisdiction, from Lishui's published figures."""

    persons: dict[str, int]
    units: dict[str, int]
    jinyun_swept: int
    jinyun_cleared: int

    @property
    def total_persons(self) -> int:
        return sum(self.persons.values())

    @property
    def total_units(self) -> int:
        return sum(self.units.values())


@dataclass(frozen=True)
class Scenario:
    seed: int
    scale: int
    cases: tuple[DemoCase, ...]
    rounds: tuple[RoundPlan, ...]
    sweep_jurisdiction: str
    sweep_as_of: date
    notices: tuple[tuple[str, date], ...]
    results_reported_on: date
    targets: Targets

    def of(self, jurisdiction: str) -> list[DemoCase]:
        return [c for c in self.cases if c.jurisdiction == jurisdiction]

    def with_outcome(self, outcome: Outcome, jurisdiction: str | None = None) -> list[DemoCase]:
        return [
            c
            for c in self.cases
            if c.outcome == outcome and (jurisdiction is None or c.jurisdiction == jurisdiction)
        ]

    def cleared(self, jurisdiction: str | None = None, kind: str | None = None) -> list[DemoCase]:
        return [
            c for c in self.with_outcome("cleared", jurisdiction) if kind is None or c.subject.kind == kind
        ]

    def by_key(self) -> dict[str, DemoCase]:
        return {c.key: c for c in self.cases}

    @property
    def showcase(self) -> DemoCase:
        return next(c for c in self.cases if c.showcase)


# --- names and words (Faker, seeded) ------------------------------------------------------------------

BUREAUS = (
    "自然资源和规划局",
    "交通运输局",
    "农业农村局",
    "住房和城乡建设局",
    "教育局",
    "卫生健康局",
    "市场监督管理局",
    "水利局",
    "生态环境局",
    "民政局",
    "财政局",
    "文化和广电旅游体育局",
    "经济和信息化局",
    "人力资源和社会保障局",
    "综合行政执法局",
    "林业局",
)
BUREAU_POSTS = ("局长", "党组书记", "副局长", "党组成员", "办公室主任", "科长", "副科长", "所长", "站长")
TOWN_POSTS = ("党委书记", "镇长", "党委副书记", "副镇长", "人大主席", "组织委员", "宣传委员", "武装部长")
VILLAGE_POSTS = ("村党支部书记", "村委会主任", "村监委会主任")
VILLAGE_ENDINGS = ("坑", "岙", "垟", "坪", "源", "岭", "湾")
CITY_MANAGED_POSTS = (("副县长", "人民政府"), ("县委常委", "县委"), ("县政协副主席", "政协"))
AGENCIES = ("公安局", "人民检察院", "审计局", "市场监督管理局")
PERSON_ALLEGATIONS = (
    "违规收受{company}所送购物卡",
    "在{town}道路提升工程中违规插手招投标",
    "利用职务便利为亲属经营的{company}谋取利益",
    "节假日公车私用，驾驶公务用车回老家",
    "在{town}征地拆迁中优亲厚友、虚报补偿面积",
    "在低保评定中优亲厚友",
    "在{company}违规兼职取酬",
    "大操大办子女婚宴，收受管理服务对象礼金",
    "对群众诉求推诿扯皮、作风粗暴",
    "在{town}农村危房改造中吃拿卡要",
    "违规持有{company}股份",
    "在项目验收中为{company}开绿灯",
)
UNIT_ALLEGATIONS = (
    "违规发放津补贴",
    "在项目验收中弄虚作假",
    "违规使用专项资金",
    "违规公款吃喝",
    "在政府采购中指定{company}供货",
)
BASES: tuple[BadEffect, ...] = ("repeated_reports", "selection_affected", "rights_harmed", "wide_spread")
FLAGS: tuple[PriorityFlag, ...] = (
    "work_record",
    "reputation",
    "frontline_reform",
    "rural_revitalisation",
    "land_requisition_demolition",
)
OPTIONAL_FORMS: tuple[ClarificationForm, ...] = ("face_to_face", "unit_meeting", "scoped_notice")


class Words:
    """The seeded sources of names: Faker (zh_CN) for people, places and firms, random for shape."""

    def __init__(self, seed: int) -> None:
        self.fake = Faker("zh_CN")
        self.fake.seed_instance(seed)
        self.rng = random.Random(seed)
        self.used_units: set[str] = set()

    def choice(self, items: Sequence[Any]) -> Any:
        return items[self.rng.randrange(len(items))]

    def person_name(self) -> str:
        # unique across the scenario: 一人一档 keys a person by name and unit, and two officials
        # sharing both would be counted once
        return str(self.fake.unique.name())

    def town(self, jurisdiction: str) -> str:
        return f"{JURISDICTIONS[jurisdiction]}{self.fake.city_name()}镇"

    def company(self) -> str:
        return str(self.fake.company())

    def allegations(self, n: int, *, unit: bool, town: str) -> tuple[str, ...]:
        templates = list(UNIT_ALLEGATIONS if unit else PERSON_ALLEGATIONS)
        self.rng.shuffle(templates)
        return tuple(t.format(company=self.company(), town=town) for t in templates[:n])

    def person(self, jurisdiction: str, *, city_managed: bool = False) -> PlannedSubject:
        name = self.person_name()
        place = JURISDICTIONS[jurisdiction]
        if jurisdiction == CITY:
            return PlannedSubject(
                "person", name, self.choice(BUREAU_POSTS), f"{place}{self.choice(BUREAUS)}", "city"
            )
        if city_managed:
            post, organ = self.choice(CITY_MANAGED_POSTS)
            return PlannedSubject("person", name, post, f"{place}{organ}", "city")
        where = self.rng.random()
        if where < 0.4:
            return PlannedSubject("person", name, self.choice(BUREAU_POSTS), f"{place}{self.choice(BUREAUS)}")
        town = self.town(jurisdiction)
        if where < 0.75:
            return PlannedSubject("person", name, self.choice(TOWN_POSTS), f"{town}人民政府")
        village = f"{self.fake.last_name()}家{self.choice(VILLAGE_ENDINGS)}村"
        return PlannedSubject("person", name, self.choice(VILLAGE_POSTS), f"{town}{village}")

    def unit(self, jurisdiction: str) -> PlannedSubject:
        place = JURISDICTIONS[jurisdiction]
        while True:
            name = (
                f"{place}{self.choice(BUREAUS)}"
                if self.rng.random() < 0.6
                else f"{self.town(jurisdiction)}人民政府"
            )
            if name not in self.used_units:
                self.used_units.add(name)
                return PlannedSubject("unit", name, cadre_level="city" if jurisdiction == CITY else "county")

    def reporter(self) -> ReporterPlan:
        return ReporterPlan(self.person_name(), str(self.fake.phone_number()), str(self.fake.ssn()))


# --- the generator ------------------------------------------------------------------------------------


def split_targets(rng: random.Random, scale: int) -> Targets:
    """Persons and units to clear per jurisdiction: Jinyun's are fixed, the rest are spread over
    the city level and the other 8 counties, each clearing at least a few persons."""
    others = [j for j in JURISDICTIONS if j != JINYUN]
    persons = {j: MIN_PERSONS_PER_JURISDICTION * scale for j in others}
    spare = (PERSONS_CLEARED - (JINYUN_CLEARED - JINYUN_CLEARED_UNITS)) * scale - sum(persons.values())
    weights = [2.0 if j == CITY else 1.0 for j in others]
    for j in rng.choices(others, weights=weights, k=spare):
        persons[j] += 1
    units = dict.fromkeys(others, 0)
    for j in rng.choices(others, k=(UNITS_CLEARED - JINYUN_CLEARED_UNITS) * scale):
        units[j] += 1
    persons[JINYUN] = (JINYUN_CLEARED - JINYUN_CLEARED_UNITS) * scale
    units[JINYUN] = JINYUN_CLEARED_UNITS * scale
    order = list(JURISDICTIONS)
    return Targets(
        persons={j: persons[j] for j in order},
        units={j: units[j] for j in order},
        jinyun_swept=JINYUN_SWEPT * scale,
        jinyun_cleared=JINYUN_CLEARED * scale,
    )


@dataclass
class _Draft:
    """A case while the generator shapes it (frozen into a DemoCase at the end)."""

    jurisdiction: str
    outcome: Outcome
    subject: PlannedSubject
    findings: tuple[Finding, ...]
    label: str
    swept: bool = False
    green_channel: GreenChannel = "none"
    sent_back_once: bool = False
    refusal: Refusal | None = None
    repeat_of: _Draft | None = None
    repeated: bool = False
    showcase: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


UNTRUE: tuple[Finding] = ("untrue",)


def _cleared_findings(words: Words, index: int, unit: bool) -> tuple[Finding, ...]:
    if unit:
        return UNTRUE * words.rng.randint(1, 2)
    if index == 2:
        return ("untrue", "false_accusation")  # 诬告陷害 on one point, the other verified untrue
    if index == 3:
        return ("untrue", "honest_mistake")  # 错告: mistaken, never labelled false accusation
    if index == 4:
        return ("untrue", "not_proven")  # only the untrue point is clarified
    points = UNTRUE * words.rng.randint(1, 3)
    if index == 5:  # 事实存在但不违规违纪: what was reported happened but broke no rule
        return (*points[:-1], "no_violation")
    return points


def _drafts(words: Words, targets: Targets, scale: int) -> list[_Draft]:
    rng = words.rng
    drafts: list[_Draft] = []
    for j_index, j in enumerate(JURISDICTIONS):
        # -- matters to clear this quarter (Jinyun's come from the sweep, below)
        if j != JINYUN:
            persons = targets.persons[j]
            city_managed_at = persons - 1 if j != CITY and persons >= 4 else -1
            cleared: list[_Draft] = []
            for i in range(persons):
                cleared.append(
                    _Draft(
                        j,
                        "cleared",
                        words.person(j, city_managed=i == city_managed_at),
                        _cleared_findings(words, i % 8, unit=False),
                        f"C{i + 1:02d}",
                        green_channel="before" if i % 8 == 0 else "after" if i % 8 == 5 else "none",
                        sent_back_once=i % 8 == 1 or (j == "331102" and i == 0),
                        showcase=j == "331102" and i == 0,
                    )
                )
            for u in range(targets.units[j]):
                cleared.append(
                    _Draft(
                        j, "cleared", words.unit(j), _cleared_findings(words, 0, unit=True), f"U{u + 1:02d}"
                    )
                )
            drafts += cleared
            # a repeat report about the first person, in every other jurisdiction (and the showcase's)
            if j_index % 2 == 1 or j == "331102":
                for n in range(scale):
                    matter = cleared[n * 8 % len(cleared)]
                    matter.repeated = True
                    drafts.append(_Draft(j, "repeat", matter.subject, (), f"D{n + 1}", repeat_of=matter))
        # -- the rest of the quarter's reports, in every jurisdiction
        for n in range(scale):
            s = f"{n + 1}"
            drafts += [
                _Draft(j, "not_eligible", words.person(j), ("true",), f"T{s}"),
                _Draft(j, "not_eligible", words.person(j), ("untrue", "partly_true"), f"P{s}"),
                _Draft(j, "not_eligible", words.person(j), ("not_proven",), f"N{s}"),
                _Draft(j, "not_eligible", words.person(j), ("honest_mistake",), f"H{s}"),
            ]
            if j == JINYUN:
                # a false accusation, with the person's application before the conclusion; it waits
                # in the pool for the next quarter's round
                drafts.append(
                    _Draft(
                        j,
                        "in_pool",
                        words.person(j),
                        ("untrue", "false_accusation"),
                        f"F{s}",
                        green_channel="before",
                    )
                )
            else:
                rule: Refusal = "no_bad_effect" if j_index % 2 == 0 else "effect_only_from_interviews"
                drafts.append(_Draft(j, "refused", words.person(j), ("untrue",), f"X{s}", refusal=rule))
            if j_index % 2 == 0:
                drafts.append(_Draft(j, "open", words.person(j), ("untrue",), f"O{s}"))
            if j_index % 3 == 0:
                drafts.append(_Draft(j, "in_pool", words.person(j), ("untrue",), f"Q{s}"))
        # -- Jinyun's backlog: old matters concluded in 2021-2022, screened by the sweep
        if j == JINYUN:
            swept: list[_Draft] = []
            persons = targets.persons[j]
            for i in range(persons):
                swept.append(
                    _Draft(
                        j,
                        "cleared",
                        words.person(j, city_managed=i == persons - 1),
                        UNTRUE * rng.randint(1, 3),
                        f"S{i + 1:02d}",
                        swept=True,
                        sent_back_once=i % 12 == 0,
                        green_channel="after" if i % 12 == 1 else "none",
                    )
                )
            for u in range(targets.units[j]):
                swept.append(_Draft(j, "cleared", words.unit(j), ("untrue",), f"SU{u + 1}", swept=True))
            for n in range(scale):
                s = f"{n + 1}"
                swept += [
                    _Draft(
                        j,
                        "refused",
                        words.person(j),
                        ("untrue",),
                        f"SX{s}a",
                        swept=True,
                        refusal="no_bad_effect",
                    ),
                    _Draft(
                        j,
                        "refused",
                        words.person(j),
                        ("untrue",),
                        f"SX{s}b",
                        swept=True,
                        refusal="effect_only_from_interviews",
                    ),
                    _Draft(j, "no_consent", words.person(j), ("untrue",), f"SN{s}", swept=True),
                    _Draft(j, "sent_back", words.person(j), ("untrue",), f"SB{s}", swept=True),
                    _Draft(j, "assessed", words.person(j), ("untrue",), f"SA{s}", swept=True),
                ]
                # old matters the sweep looks at and leaves out
                swept += [
                    _Draft(
                        j, "not_eligible", words.person(j), ("untrue", "partly_true"), f"SP{s}", swept=True
                    ),
                    _Draft(j, "not_eligible", words.person(j), ("not_proven",), f"SQ{s}", swept=True),
                ]
            drafts += swept
    return drafts


def _dated(words: Words, d: _Draft, round_on: date, keys: dict[int, str]) -> DemoCase:
    """Dates for one draft, going forwards along the chain on working days."""
    rng = words.rng
    j = d.jurisdiction
    unit = d.subject.kind == "unit"
    allegations = words.allegations(max(1, len(d.findings)), unit=unit, town=words.town(j))
    real_name = rng.random() < 0.55 or d.green_channel == "before" or d.showcase
    reporter = words.reporter() if real_name else None
    key = f"{j}-{d.label}"
    if d.outcome == "repeat":
        assert d.repeat_of is not None
        matter_received = d.repeat_of.extra["received_on"]
        received = add_working_days(matter_received, rng.randint(2, 6))
        return DemoCase(
            key=key,
            jurisdiction=j,
            outcome="repeat",
            subject=d.subject,
            allegations=allegations[:1],
            findings=(),
            channel=words.choice(DIRECT_CHANNELS),
            via="http",
            reporter=reporter,
            received_on=received,
            repeat_of=keys[id(d.repeat_of)],
            merged_on=add_working_days(received, 1),
            result_notice_on=(
                add_working_days(max(d.repeat_of.extra["concluded_on"], received), 3)
                if reporter and d.repeat_of.extra.get("concluded_on")
                else None
            ),
        )
    if d.swept:
        received = words.choice(working_days(date(2021, 2, 1), date(2022, 9, 30)))
    elif d.outcome == "cleared":
        received = words.choice(working_days(date(2023, 1, 3), date(2023, 2, 10)))
    else:
        received = words.choice(working_days(date(2023, 1, 3), date(2023, 2, 24)))
    accepted = add_working_days(received, 1)
    handed = add_working_days(accepted, 1)
    decided = add_working_days(handed, rng.randint(2, 4))
    concluded: date | None
    if d.outcome == "open":
        concluded = None
    elif d.swept:
        concluded = add_working_days(decided, rng.randint(15, 40))
    elif d.outcome == "in_pool" and d.label.startswith("Q"):
        concluded = words.choice(working_days(date(2023, 3, 20), OTHERS_CONCLUDED_BY))
    else:
        concluded = add_working_days(decided, rng.randint(8, 15))
        limit = CLEARED_CONCLUDED_BY if d.outcome == "cleared" else OTHERS_CONCLUDED_BY
        concluded = min(concluded, limit)
    assert concluded is None or concluded > decided
    if j == JINYUN and not d.swept:
        # the sweep's window must not reach the quarter's own matters
        assert concluded is None or concluded > SWEEP_AS_OF
    d.extra.update(received_on=received, concluded_on=concluded)
    method: HandlingMethod = (
        "formal_investigation"
        if "true" in d.findings
        else "talk_inquiry"
        if d.outcome == "open" or rng.random() < 0.3
        else "preliminary_verification"
    )
    green_filed: date | None = None
    if d.green_channel == "before":
        green_filed = add_working_days(decided, 1)
    elif d.green_channel == "after":
        assert concluded is not None
        green_filed = add_working_days(max(concluded, date(2023, 2, 1)) if d.swept else concluded, 2)
    chain = _chain(words, d, concluded, green_filed, round_on)
    after = None
    if d.outcome == "cleared":
        feedback = add_working_days(round_on, 1)
        visits: list[Visit] = []
        roll = rng.random()
        if roll < 0.3:
            visits.append(Visit("person", QUARTER_LAST))
        elif roll < 0.7:
            q2 = words.choice(working_days(date(2023, 4, 10), date(2023, 6, 20)))
            visits += [Visit("person", q2), Visit("unit", add_working_days(q2, 1))]
        after = AfterRound(
            feedback_on=feedback,
            acknowledged_on=feedback,
            filed_on=add_working_days(feedback, 1),
            unit_head=words.person_name(),
            visits=tuple(visits),
        )
    flags: tuple[PriorityFlag, ...] = ()
    if d.swept and d.outcome != "not_eligible" and rng.random() < 0.45:
        flags = tuple(rng.sample(FLAGS, rng.randint(1, 2)))
    return DemoCase(
        key=key,
        jurisdiction=j,
        outcome=d.outcome,
        subject=d.subject,
        allegations=allegations,
        findings=d.findings,
        channel=words.choice(DIRECT_CHANNELS),
        via="http",
        reporter=reporter,
        received_on=received,
        accepted_on=accepted,
        handed_on=handed,
        method=method,
        decided_on=decided,
        concluded_on=concluded,
        referred_on=(
            working_days_before(concluded, 1) if concluded and "false_accusation" in d.findings else None
        ),
        green_channel=d.green_channel,
        green_filed_on=green_filed,
        swept=d.swept,
        priority_flags=flags,
        acceptance_notice_on=add_working_days(accepted, 2) if reporter else None,
        result_notice_on=add_working_days(concluded, 3) if reporter and concluded else None,
        chain=chain,
        after_round=after,
        showcase=d.showcase,
    )


def _chain(
    words: Words, d: _Draft, concluded: date | None, green_filed: date | None, round_on: date
) -> ChainPlan | None:
    """Backwards from the approval (within 5 working days before the round, so on time)."""
    rng = words.rng
    if d.outcome not in ("cleared", "refused", "no_consent", "sent_back", "assessed"):
        return None
    assert concluded is not None
    initiated_by: Literal["department", "person"] = "person" if d.green_channel != "none" else "department"
    effects = list(rng.sample(BASES, rng.randint(1, 2)))
    if d.repeated and "repeated_reports" not in effects:
        effects.insert(0, "repeated_reports")
    bad_effects = tuple(e for e in BASES if e in effects)
    earliest = max(concluded, green_filed or concluded, date(2023, 2, 1))
    if d.outcome == "cleared":
        approve = working_days_before(round_on, rng.randint(0, 3))
        reviews = (
            (Review(working_days_before(approve, 2), False), Review(working_days_before(approve, 1), True))
            if d.sent_back_once
            else (Review(working_days_before(approve, 1), True),)
        )
        assess = working_days_before(reviews[0].on, 1)
        start = working_days_before(assess, 1)
        assert start >= earliest, (d.label, start, earliest)
        return ChainPlan(initiated_by, True, start, assess, bad_effects, False, reviews, approve)
    start = next_working_day(max(earliest + timedelta(days=1), date(2023, 3, 13)))
    assess = add_working_days(start, 1)
    if d.outcome == "no_consent":
        return ChainPlan(initiated_by, False, start)
    if d.outcome == "refused":
        if d.refusal == "no_bad_effect":
            return ChainPlan(initiated_by, True, start, assess, ())
        return ChainPlan(initiated_by, True, start, assess, ("rights_harmed",), True)
    if d.outcome == "sent_back":
        review = Review(add_working_days(assess, 1), False)
        return ChainPlan(initiated_by, True, start, assess, bad_effects, False, (review,))
    return ChainPlan(initiated_by, True, start, assess, bad_effects)


def _rounds(words: Words) -> tuple[RoundPlan, ...]:
    rounds = []
    for i, j in enumerate(JURISDICTIONS):
        held = ROUND_DAYS[i % len(ROUND_DAYS)]
        if j == CITY:
            forms: tuple[ClarificationForm, ...] = ("face_to_face", "unit_meeting")
        elif j == JINYUN:
            forms = ("face_to_face", "scoped_notice")
        else:
            forms = tuple(f for f in OPTIONAL_FORMS if words.rng.random() < 0.5) or ("face_to_face",)
        scope = f"{JURISDICTIONS[j]}各乡镇（街道）和直属单位" if "scoped_notice" in forms else ""
        rounds.append(RoundPlan(j, held, forms, scope))
    return tuple(rounds)


def _routes(words: Words, cases: list[DemoCase], scale: int) -> list[DemoCase]:
    """Channels: the four direct ones in turn per jurisdiction, one report per county sent down by the
    city (上级转办) for each unit of scale, and about a tenth from other agencies (其他机关移送)."""
    rng = words.rng
    out = list(cases)
    by_j: dict[str, list[int]] = {}
    for i, c in enumerate(out):
        by_j.setdefault(c.jurisdiction, []).append(i)
    for indexes in by_j.values():
        cycle = list(DIRECT_CHANNELS)
        rng.shuffle(cycle)
        for n, i in enumerate(indexes):
            out[i] = replace(out[i], channel=cycle[n % len(cycle)])
    # only the quarter's own matters travel the other ways (not repeats, not the backlog)
    movable = [i for i, c in enumerate(out) if c.in_quarter and c.outcome != "repeat" and not c.repeat_of]
    repeated = {c.repeat_of for c in out if c.repeat_of}
    movable = [i for i in movable if out[i].key not in repeated and not out[i].showcase]
    taken: set[int] = set()
    for j in JURISDICTIONS:
        if j == CITY:
            continue
        pool = [i for i in movable if out[i].jurisdiction == j]
        for i in rng.sample(pool, min(scale, len(pool))):
            c = out[i]
            out[i] = replace(
                c,
                via="send_down",
                channel="referred_down",
                city_received_on=working_days_before(c.received_on, 1),
            )
            taken.add(i)
    reports = len([c for c in out if c.in_quarter])
    rest = [i for i in movable if i not in taken]
    for i in rng.sample(rest, round(reports * INBOUND_SHARE)):
        c = out[i]
        agency = f"{JURISDICTIONS[c.jurisdiction]}{words.choice(AGENCIES)}"
        out[i] = replace(c, via="inbound", channel="agency_transfer", source_agency=agency)
    return out


def generate(seed: int = 20230331, scale: int = 1) -> Scenario:
    """seed -> the scenario's case plans; the same seed gives the same plans."""
    if scale < 1:
        raise ValueError("scale must be at least 1")
    words = Words(seed)
    targets = split_targets(words.rng, scale)
    rounds = _rounds(words)
    round_on = {r.jurisdiction: r.held_on for r in rounds}
    drafts = _drafts(words, targets, scale)
    keys = {id(d): f"{d.jurisdiction}-{d.label}" for d in drafts}
    # repeats need their matter's dates: date the matters first
    ordered = [d for d in drafts if d.outcome != "repeat"] + [d for d in drafts if d.outcome == "repeat"]
    dated = {id(d): _dated(words, d, round_on[d.jurisdiction], keys) for d in ordered}
    cases = _routes(words, [dated[id(d)] for d in drafts], scale)
    notices = tuple(
        (j, add_working_days(NOTICE_FROM, i % 3) if i % 3 else NOTICE_FROM)
        for i, j in enumerate(JURISDICTIONS)
    )
    return Scenario(
        seed=seed,
        scale=scale,
        cases=tuple(cases),
        rounds=rounds,
        sweep_jurisdiction=JINYUN,
        sweep_as_of=SWEEP_AS_OF,
        notices=notices,
        results_reported_on=RESULTS_REPORTED_ON,
        targets=targets,
    )
