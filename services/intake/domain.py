"""Intake domain (检举控告): the report aggregate, its disposition rules and its deadlines; no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import ClassVar, Literal

from pydantic import BaseModel

from services.intake import disclosure
from services.intake.commands import (
    AcceptReport,
    AllegationDraft,
    EraseReporter,
    FeedBackObjection,
    FileApplication,
    HandOver,
    LodgeObjection,
    LogReport,
    MergeAsRepeat,
    NoticeKind,
    NotifyReporter,
    RegisterReport,
    ReporterIdentity,
    SendDown,
    SendUp,
)
from shared.aggregate import Aggregate
from shared.crypto import SealedField
from shared.dates import not_before
from shared.envelope import CITY, JURISDICTIONS
from shared.errors import Conflict, NotFound, RuleViolation, Term
from shared.events.common import Allegation, Channel, Subject
from shared.events.intake import (
    ClarificationApplicationFiled,
    ObjectionAnswered,
    ObjectionFedBack,
    ObjectionLodged,
    ReportAccepted,
    ReporterErased,
    ReporterNotified,
    ReportHandedOver,
    ReportLogged,
    ReportMergedAsRepeat,
    ReportReceived,
    ReportResultDue,
    ReportSentDown,
    ReportSentUp,
)
from shared.events.review import ObjectionExamined
from shared.workdays import add_working_days

ObjectionStage = Literal["lodged", "examined", "fed_back"]
"""Where an objection (异议) stands: 已提出 lodged, 已复查 examined, 已反馈 fed back."""

ReportState = Literal["received", "logged", "accepted", "sent_up", "sent_down", "repeat", "handed_over"]
"""接收, 登记, 受理, 报送上级, 转送下级, 重复件, 移送承办."""

REPORT_STATE_NAMES: dict[ReportState, str] = {
    "received": "已接收",
    "logged": "已登记",
    "accepted": "已受理",
    "sent_up": "已报送上级",
    "sent_down": "已转送下级",
    "repeat": "重复件",
    "handed_over": "已移送承办",
}
"""Each state as a message names it."""

NOTICE_NAMES: dict[NoticeKind, str] = {"acceptance": "受理情况", "result": "处理结果"}
"""What each notice to a real-name reporter tells, as a message names it."""

# The steps a later date must not precede (shared.dates.not_before).
RECEIPT = Term("the receipt", "收件")
LOGGING = Term("the logging", "登记")
ACCEPTANCE = Term("the acceptance", "受理")
CONCLUSION = Term("the conclusion", "办结")
HANDOVER = Term("the handover", "移送承办")
EXAMINATION = Term("the re-examination", "复查")

OverdueKind = Literal["disposition", "acceptance_notice", "result_notice", "sent_down_response"]

# Deadlines in working days of the official calendar (adjusted working days count).
DISPOSITION_DAYS = 5
ACCEPTANCE_NOTICE_DAYS = 15
RESULT_NOTICE_DAYS = 15
SENT_DOWN_RESPONSE_DAYS = 5

# A report in one of these states has left this office's hands (报送上级, 转送下级, 重复件): its
# acceptance notice is owed by whoever holds the matter now, not by this report.
LEFT_STATES: frozenset[str] = frozenset({"sent_up", "sent_down", "repeat"})
REPORTER_FIELD = "reporter.identity"


def report_id(jurisdiction: str, year: int, sequence: int) -> str:
    """The matter id, e.g. 331122-2023-000001."""
    return f"{jurisdiction}-{year}-{sequence:06d}"


def stream_id(report: str) -> str:
    return f"report-{report}"


def application_stream_id(application_id: str) -> str:
    return f"application-{application_id}"


def application_id(matter_id: str, n: int) -> str:
    return f"{matter_id}-GC{n}"


def objection_id(report: str, n: int) -> str:
    """The `n`th objection (异议) of a report, e.g. 331122-2023-000001-OB1."""
    return f"{report}-OB{n}"


def disposition_due(logged_on: date) -> date:
    return add_working_days(logged_on, DISPOSITION_DAYS)


def acceptance_notice_due(received_on: date) -> date:
    return add_working_days(received_on, ACCEPTANCE_NOTICE_DAYS)


def result_notice_due(concluded_on: date) -> date:
    return add_working_days(concluded_on, RESULT_NOTICE_DAYS)


def sent_down_response_due(sent_on: date) -> date:
    return add_working_days(sent_on, SENT_DOWN_RESPONSE_DAYS)


def number_allegations(drafts: Sequence[AllegationDraft]) -> list[Allegation]:
    """Give every allegation an id ("A1", "A2", ...) where the caller gave none; ids are unique."""
    given = [d.allegation_id for d in drafts if d.allegation_id is not None]
    duplicates = sorted({a for a in given if given.count(a) > 1})
    if duplicates:
        raise RuleViolation(
            f"allegation ids must be unique; repeated: {', '.join(duplicates)}",
            detail_zh=f"反映问题编号不得重复，重复的编号：{'、'.join(duplicates)}",
            field="allegations",
            code="duplicate_allegation",
        )
    taken = set(given)
    out: list[Allegation] = []
    n = 0
    for draft in drafts:
        allegation_id = draft.allegation_id
        if allegation_id is None:
            n += 1
            while f"A{n}" in taken:
                n += 1
            allegation_id = f"A{n}"
            taken.add(allegation_id)
        out.append(Allegation(allegation_id=allegation_id, summary=draft.summary))
    return out


def check_reporter(real_name: bool, reporter: ReporterIdentity | None) -> None:
    """实名 reports name their reporter; anonymous ones carry no identity at all."""
    if real_name and reporter is None:
        raise RuleViolation(
            "a real-name report needs the reporter's identity",
            detail_zh="实名检举控告须填写检举控告人身份信息",
            field="reporter",
            code="reporter_required",
        )
    if not real_name and reporter is not None:
        raise RuleViolation(
            "an anonymous report carries no reporter identity; set real_name or leave reporter out",
            detail_zh="匿名检举控告不得携带检举控告人身份信息；请设置 real_name 或不填 reporter",
            field="reporter",
            code="anonymous_with_identity",
        )


def check_subjects(subjects: Sequence[Subject]) -> None:
    """被反映人: a person is named with post and unit; a unit by its name."""
    for i, subject in enumerate(subjects):
        if subject.kind == "person":
            for name in ("post", "unit"):
                if not getattr(subject, name):
                    raise RuleViolation(
                        f"a reported person needs a {name}",
                        detail_zh=f"被反映人须填写{'职务' if name == 'post' else '单位'}（{name}）",
                        field=f"subjects.{i}.{name}",
                        code="subject_incomplete",
                    )


def check_send_up(from_jurisdiction: str, to_jurisdiction: str) -> None:
    """报送上级: a county sends up to the city; the city has no higher level here."""
    if from_jurisdiction == CITY:
        raise RuleViolation(
            "the city level has no higher level to send up to",
            detail_zh="市级没有可报送的上级机关",
            field="to_jurisdiction",
            code="no_higher_level",
        )
    if to_jurisdiction != CITY:
        raise RuleViolation(
            f"a county sends up to the city {CITY}",
            detail_zh=f"县（市、区）只能报送市级 {CITY}",
            field="to_jurisdiction",
            code="not_the_higher_level",
        )


def check_send_down(from_jurisdiction: str, to_jurisdiction: str) -> None:
    """转送下级: only the city sends down, and only to one of its counties."""
    if from_jurisdiction != CITY:
        raise RuleViolation(
            "only the city level sends reports down",
            detail_zh="只有市级可以将检举控告转送下级",
            field="to_jurisdiction",
            code="no_lower_level",
        )
    if to_jurisdiction == CITY or to_jurisdiction not in JURISDICTIONS:
        raise RuleViolation(
            f"{to_jurisdiction} is not a county of the city",
            detail_zh=f"{to_jurisdiction} 不是本市所辖县（市、区）",
            field="to_jurisdiction",
            code="not_a_county",
        )


# ---- 异议 (objections) -------------------------------------------------------------------------


def check_no_reporter_identity(reporters: Sequence[ReporterIdentity], **texts: str) -> None:
    """保护检举控告人: a text that leaves intake (in an event, to another role) never names a
    reporter of the matter; the message says which field, never what was found."""
    for name, text in texts.items():
        if disclosure.reveals_any(text, reporters):
            raise RuleViolation(
                f"{name} contains a reporter's identity (name, contact or ID number); "
                "no reporter may be named",
                detail_zh=f"{name} 含有检举控告人的身份信息（姓名、联系方式或身份证号码），"
                "不得写明检举控告人",
                field=name,
                code="reporter_identity_in_text",
            )


def check_text_given(text: str, name: str, what: Term) -> None:
    """A required text says something (not only spaces)."""
    if not text.strip():
        raise RuleViolation(
            f"{what.en} must be given ({name})",
            detail_zh=f"须写明{what.zh}（{name}）",
            field=name,
            code="text_required",
        )


def check_objection_allowed(report: Report) -> None:
    """异议 is the real-name reporter's, on a matter handed to the handling department; an erased
    reporter can no longer be told the result."""
    if not report.real_name:
        raise RuleViolation(
            f"report {report.report_id} is anonymous: only a real-name reporter (实名) may object",
            detail_zh=f"检举控告件 {report.report_id} 为匿名件，只有实名检举控告人可以提出异议",
            field="real_name",
            code="objection_needs_real_name",
        )
    if report.state != "handed_over":
        raise Conflict(
            f"report {report.report_id} is {report.state}; an objection needs it handed over to the "
            "handling department",
            detail_zh=f"检举控告件 {report.report_id} 当前为“{REPORT_STATE_NAMES[report.state]}”，"
            "移送承办后才能提出异议",
            field="state",
            code="wrong_state",
        )
    if report.reporter_erased:
        raise Conflict(
            f"the reporter of {report.report_id} was erased: nobody to feed the result back to",
            detail_zh=f"检举控告件 {report.report_id} 的检举控告人身份信息已销毁，无法反馈复查结果",
            field="reporter",
            code="reporter_erased",
        )


@dataclass
class Objection:
    """异议 of one report: lodged, answered by the handling department's re-examination, fed back."""

    lodged: ObjectionLodged
    answered: ObjectionAnswered | None = None
    fed_back: ObjectionFedBack | None = None

    @property
    def stage(self) -> ObjectionStage:
        if self.fed_back is not None:
            return "fed_back"
        return "examined" if self.answered is not None else "lodged"


@dataclass
class Report(Aggregate):
    """检举控告 report (one matter): built empty from its id, moved by its events; commands return
    new events."""

    noun: ClassVar[str] = "report"
    noun_zh: ClassVar[str] = "检举控告件"

    report_id: str
    jurisdiction: str = ""
    state: ReportState = "received"
    channel: Channel = "letter"
    received_on: date | None = None
    real_name: bool = False
    reporter: SealedField | None = None
    reporter_subject_id: str | None = None
    subjects: list[Subject] = field(default_factory=list)
    allegations: list[Allegation] = field(default_factory=list)
    summary: str = ""
    source_agency: str | None = None
    source_reference: str | None = None
    logged_on: date | None = None
    disposition_due: date | None = None
    acceptance_notice_due: date | None = None
    disposed_on: date | None = None
    accepted_on: date | None = None
    sent_to: str | None = None
    lower_report_id: str | None = None
    response_due: date | None = None
    repeats_matter_id: str | None = None
    handed_on: date | None = None
    department: str | None = None
    concluded_on: date | None = None
    result_notice_due: date | None = None
    notified: dict[str, date] = field(default_factory=dict)
    reporter_erased: bool = False
    objections: dict[str, Objection] = field(default_factory=dict)

    @property
    def stream_id(self) -> str:
        return stream_id(self.report_id)

    @property
    def case_id(self) -> str:
        return self.report_id

    # ---- evolving ---------------------------------------------------------------------------

    def evolve(self, payload: BaseModel) -> None:
        """The only place state changes."""
        match payload:
            case ReportReceived():
                self.channel = payload.channel
                self.received_on = payload.received_on
                self.real_name = payload.real_name
                self.reporter = payload.reporter
                self.reporter_subject_id = payload.reporter_subject_id
                self.subjects = list(payload.subjects)
                self.allegations = list(payload.allegations)
                self.summary = payload.summary
                self.source_agency = payload.source_agency
                self.source_reference = payload.source_reference
            case ReportLogged():
                self.state = "logged"
                self.logged_on = payload.logged_on
                self.disposition_due = payload.disposition_due
                self.acceptance_notice_due = payload.acceptance_notice_due
            case ReportAccepted():
                self.state = "accepted"
                self.accepted_on = self.disposed_on = payload.accepted_on
            case ReportSentUp():
                self.state = "sent_up"
                self.disposed_on = payload.sent_on
                self.sent_to = payload.to_jurisdiction
            case ReportSentDown():
                self.state = "sent_down"
                self.disposed_on = payload.sent_on
                self.sent_to = payload.to_jurisdiction
                self.lower_report_id = payload.lower_report_id
                self.response_due = payload.response_due
            case ReportMergedAsRepeat():
                self.state = "repeat"
                self.disposed_on = payload.merged_on
                self.repeats_matter_id = payload.repeats_matter_id
            case ReportHandedOver():
                self.state = "handed_over"
                self.handed_on = payload.handed_on
                self.department = payload.department
            case ReporterNotified():
                self.notified[payload.kind] = payload.notified_on
            case ReportResultDue():
                self.concluded_on = payload.concluded_on
                self.result_notice_due = payload.result_notice_due
            case ReporterErased():
                self.reporter_erased = True
            case ObjectionLodged() | ObjectionAnswered() | ObjectionFedBack():
                self._evolve_objection(payload)
            case _:
                raise TypeError(f"a report does not apply {type(payload).__name__}")

    # ---- commands ---------------------------------------------------------------------------

    def register(
        self, command: RegisterReport, reporter: SealedField | None, *, id_number_key: bytes | None = None
    ) -> list[ReportReceived]:
        """接收. The identity must already be sealed: it never enters an event in clear. A report
        another agency transferred (其他机关移送) names that agency, over HTTP as over Kafka. A reported
        person's ID number enters the event only as its hash keyed with `id_number_key`."""
        check_reporter(command.real_name, command.reporter)
        check_subjects(command.subjects)
        subjects = [subject.identified(id_number_key) for subject in command.subjects]
        if command.channel == "agency_transfer" and command.source_agency is None:
            raise RuleViolation(
                "a report transferred by another agency names that agency",
                detail_zh="其他机关移送的检举控告须写明移送机关",
                field="source_agency",
                code="source_agency_required",
            )
        return [
            ReportReceived(
                report_id=self.report_id,
                channel=command.channel,
                received_on=command.received_on,
                real_name=command.real_name,
                reporter=reporter,
                reporter_subject_id=reporter.subject_id if reporter is not None else None,
                subjects=subjects,
                allegations=number_allegations(command.allegations),
                summary=command.summary,
                source_agency=command.source_agency,
                source_reference=command.source_reference,
            )
        ]

    def _require(self, *states: ReportState, action: Term) -> None:
        if self.state not in states:
            needed = "或".join(f"“{REPORT_STATE_NAMES[s]}”" for s in states)
            raise Conflict(
                f"report {self.report_id} is {self.state}; {action.en} needs it {' or '.join(states)}",
                detail_zh=f"检举控告件 {self.report_id} 当前为“{REPORT_STATE_NAMES[self.state]}”，"
                f"{action.zh}须在{needed}状态下进行",
                code="wrong_state",
            )

    def log(self, command: LogReport) -> list[BaseModel]:
        """登记: the 5-day disposition clock starts; real-name reporters are owed a notice."""
        self._require("received", action=Term("logging", "登记"))
        logged_on = command.logged_on
        not_before(logged_on, self.received_on, field="logged_on", step=RECEIPT)
        assert self.received_on is not None
        return [
            ReportLogged(
                logged_on=logged_on,
                disposition_due=disposition_due(logged_on),
                acceptance_notice_due=acceptance_notice_due(self.received_on) if self.real_name else None,
            )
        ]

    def accept(self, command: AcceptReport) -> list[BaseModel]:
        """受理."""
        self._require("logged", action=Term("acceptance", "受理"))
        accepted_on = command.accepted_on
        not_before(accepted_on, self.logged_on, field="accepted_on", step=LOGGING)
        return [ReportAccepted(accepted_on=accepted_on)]

    def send_up(self, command: SendUp) -> list[BaseModel]:
        """报送上级."""
        self._require("logged", action=Term("sending up", "报送上级"))
        sent_on, to_jurisdiction = command.sent_on, command.to_jurisdiction
        check_send_up(self.jurisdiction, to_jurisdiction)
        not_before(sent_on, self.logged_on, field="sent_on", step=LOGGING)
        return [ReportSentUp(sent_on=sent_on, to_jurisdiction=to_jurisdiction)]

    def send_down(self, command: SendDown, lower_report_id: str) -> tuple[ReportSentDown, ReportReceived]:
        """转送下级: this report records where it went; the lower level gets a report of its own
        (same subjects, allegations and sealed reporter, copied as they are)."""
        self._require("logged", action=Term("sending down", "转送下级"))
        sent_on, to_jurisdiction = command.sent_on, command.to_jurisdiction
        check_send_down(self.jurisdiction, to_jurisdiction)
        not_before(sent_on, self.logged_on, field="sent_on", step=LOGGING)
        sent = ReportSentDown(
            sent_on=sent_on,
            to_jurisdiction=to_jurisdiction,
            lower_report_id=lower_report_id,
            response_due=sent_down_response_due(sent_on),
        )
        lower = ReportReceived(
            report_id=lower_report_id,
            channel="referred_down",
            received_on=sent_on,
            real_name=self.real_name,
            reporter=self.reporter,
            reporter_subject_id=self.reporter_subject_id,
            subjects=self.subjects,
            allegations=self.allegations,
            summary=self.summary,
            source_agency=self.jurisdiction,
            source_reference=self.report_id,
        )
        return sent, lower

    def merge_into(self, command: MergeAsRepeat, matter: Report | None) -> list[BaseModel]:
        """重复件: merged into the matter it repeats (a repeat of a repeat points at the original);
        the matter must be one of this jurisdiction."""
        self._require("logged", action=Term("merging as a repeat", "作为重复件合并"))
        if matter is None or matter.jurisdiction != self.jurisdiction:
            raise RuleViolation(
                f"no matter of that id in jurisdiction {self.jurisdiction}",
                detail_zh=f"辖区 {self.jurisdiction} 没有该编号的检举控告件",
                field="repeats_matter_id",
                code="unknown_matter",
            )
        original = matter.repeats_matter_id if matter.state == "repeat" else matter.report_id
        if original == self.report_id:
            raise RuleViolation(
                "a report cannot repeat itself",
                detail_zh="检举控告件不能作为自身的重复件",
                field="repeats_matter_id",
                code="repeat_of_itself",
            )
        not_before(command.merged_on, self.logged_on, field="merged_on", step=LOGGING)
        assert original is not None
        return [ReportMergedAsRepeat(merged_on=command.merged_on, repeats_matter_id=original)]

    def hand_over(self, command: HandOver, repeat_count: int) -> list[BaseModel]:
        """移送承办: what the handling department needs to verify, never the reporter."""
        self._require("accepted", action=Term("handing over", "移送承办"))
        not_before(command.handed_on, self.accepted_on, field="handed_on", step=ACCEPTANCE)
        assert self.received_on is not None
        return [
            ReportHandedOver(
                handed_on=command.handed_on,
                department=command.department,
                received_on=self.received_on,
                real_name=self.real_name,
                subjects=self.subjects,
                allegations=self.allegations,
                repeat_count=repeat_count,
            )
        ]

    def notify(self, command: NotifyReporter) -> list[BaseModel]:
        """Tell a real-name reporter of acceptance (after 受理) or of the result (after 办结)."""
        kind, notified_on = command.kind, command.notified_on
        if not self.real_name:
            raise RuleViolation(
                "an anonymous reporter cannot be notified",
                detail_zh="匿名检举控告无法告知检举控告人",
                field="kind",
                code="anonymous_report",
            )
        if kind in self.notified:
            raise Conflict(
                f"the {kind} notice was already given",
                detail_zh=f"已经告知过检举控告人{NOTICE_NAMES[kind]}",
                code="already_recorded",
            )
        if kind == "acceptance":
            if self.accepted_on is None:
                raise Conflict(
                    "the acceptance notice needs the report accepted",
                    detail_zh="检举控告件受理后才能告知受理情况",
                    code="wrong_state",
                )
            not_before(notified_on, self.accepted_on, field="notified_on", step=ACCEPTANCE)
        else:
            if self.concluded_on is None:
                raise Conflict(
                    "no result is due: the verification has not concluded",
                    detail_zh="核查尚未办结，还没有需要告知的处理结果",
                    code="wrong_state",
                )
            not_before(notified_on, self.concluded_on, field="notified_on", step=CONCLUSION)
        return [ReporterNotified(kind=kind, notified_on=notified_on)]

    def result_due(self, concluded_on: date) -> list[BaseModel]:
        """The matter's verification concluded: a real-name reporter is owed the result. Once due,
        later conclusions change nothing (redelivery and replays converge)."""
        if not self.real_name or self.concluded_on is not None:
            return []
        return [ReportResultDue(concluded_on=concluded_on, result_notice_due=result_notice_due(concluded_on))]

    def erase_reporter(self, command: EraseReporter) -> list[BaseModel]:
        """Crypto-shredding of the reporter: recorded once per report."""
        if self.reporter_subject_id is None or self.reporter_erased:
            return []
        return [ReporterErased(reporter_subject_id=self.reporter_subject_id, erased_on=command.erased_on)]

    # ---- 异议: the real-name reporter's objection ----------------------------------------------

    def _evolve_objection(self, payload: ObjectionLodged | ObjectionAnswered | ObjectionFedBack) -> None:
        if isinstance(payload, ObjectionLodged):
            self.objections[payload.objection_id] = Objection(payload)
        elif isinstance(payload, ObjectionAnswered):
            self.objections[payload.objection_id].answered = payload
        else:
            self.objections[payload.objection_id].fed_back = payload

    def lodge_objection(
        self, command: LodgeObjection, reporters: Sequence[ReporterIdentity]
    ) -> list[ObjectionLodged]:
        """异议: recorded for a real-name report handed to the handling department, with what is
        new; `reporters` are the matter's opened identities, which the texts must not contain
        (they travel to the handling department and beyond)."""
        check_objection_allowed(self)
        check_text_given(command.grounds, "grounds", Term("the grounds", "异议理由"))
        check_text_given(
            command.new_evidence, "new_evidence", Term("the new facts or evidence", "新的事实或证据")
        )
        check_no_reporter_identity(reporters, grounds=command.grounds, new_evidence=command.new_evidence)
        not_before(command.lodged_on, self.handed_on, field="lodged_on", step=HANDOVER)
        return [
            ObjectionLodged(
                objection_id=objection_id(self.report_id, len(self.objections) + 1),
                lodged_on=command.lodged_on,
                grounds=command.grounds,
                new_evidence=command.new_evidence,
            )
        ]

    def answer_objection(self, examined: ObjectionExamined) -> list[ObjectionAnswered]:
        """The handling department's re-examination reached intake: recorded once (redelivery
        and replays change nothing); an objection this report never had is not its answer."""
        objection = self.objections.get(examined.objection_id)
        if objection is None or objection.answered is not None:
            return []
        return [
            ObjectionAnswered(
                objection_id=examined.objection_id,
                examined_on=examined.examined_on,
                upheld=examined.upheld,
                reason=examined.reason,
            )
        ]

    def feed_back_objection(
        self, command: FeedBackObjection, objection_id: str, reporters: Sequence[ReporterIdentity]
    ) -> list[ObjectionFedBack]:
        """反馈: the result of the re-examination told to the reporter, once, not before it; the
        note travels like every event, so it must not name the reporter either."""
        objection = self.objections.get(objection_id)
        if objection is None:
            raise NotFound(
                f"report {self.report_id} has no objection {objection_id}",
                detail_zh=f"检举控告件 {self.report_id} 没有异议 {objection_id}",
                field="objection_id",
                code="objection_not_found",
            )
        if objection.answered is None:
            raise Conflict(
                f"objection {objection_id} has not been re-examined yet: there is no result to feed back",
                detail_zh=f"异议 {objection_id} 尚未复查，还没有可以反馈的结果",
                field="objection_id",
                code="objection_not_examined",
            )
        if objection.fed_back is not None:
            fed_back_on = objection.fed_back.fed_back_on.isoformat()
            raise Conflict(
                f"the result of objection {objection_id} was fed back on {fed_back_on}",
                detail_zh=f"异议 {objection_id} 的复查结果已于 {fed_back_on} 反馈",
                field="objection_id",
                code="already_recorded",
            )
        check_no_reporter_identity(reporters, note=command.note)
        not_before(command.fed_back_on, objection.answered.examined_on, field="fed_back_on", step=EXAMINATION)
        return [
            ObjectionFedBack(objection_id=objection_id, fed_back_on=command.fed_back_on, note=command.note)
        ]


class Application(Aggregate):
    """绿色通道 application: the reported person's written application for clarification, the
    `number`th of its matter (a stream of its own, in the matter's case)."""

    noun: ClassVar[str] = "application"
    noun_zh: ClassVar[str] = "澄清申请"

    def __init__(self, matter_id: str, number: int, jurisdiction: str = "") -> None:
        self.matter_id = matter_id
        self.application_id = application_id(matter_id, number)
        self.jurisdiction = jurisdiction
        self.filed: ClarificationApplicationFiled | None = None

    @property
    def stream_id(self) -> str:
        return application_stream_id(self.application_id)

    @property
    def case_id(self) -> str:
        return self.matter_id

    def evolve(self, payload: BaseModel) -> None:
        if isinstance(payload, ClarificationApplicationFiled):
            self.filed = payload

    def file(self, command: FileApplication, matter: Report | None) -> list[ClarificationApplicationFiled]:
        """About points of a matter of this jurisdiction; it may come before, during or after the
        verification."""
        jurisdiction = command.jurisdiction
        if matter is None or matter.jurisdiction != jurisdiction:
            raise RuleViolation(
                f"no matter of that id in jurisdiction {jurisdiction}",
                detail_zh=f"辖区 {jurisdiction} 没有该编号的检举控告件",
                field="matter_id",
                code="unknown_matter",
            )
        if matter.state == "repeat":
            raise RuleViolation(
                f"{matter.report_id} is a repeat; file under the matter {matter.repeats_matter_id}",
                detail_zh=f"{matter.report_id} 是重复件，请向原件 {matter.repeats_matter_id} 提出申请",
                field="matter_id",
                code="repeat_report",
            )
        if matter.state == "sent_down":
            raise RuleViolation(
                f"{matter.report_id} was sent down; file under {matter.lower_report_id}",
                detail_zh=f"{matter.report_id} 已转送下级，请向 {matter.lower_report_id} 提出申请",
                field="matter_id",
                code="matter_moved",
            )
        if command.applicant.subject_id not in {s.subject_id for s in matter.subjects}:
            raise RuleViolation(
                "the applicant is not a reported subject of the matter",
                detail_zh="申请人不是该件的被反映人",
                field="applicant",
                code="not_a_subject",
            )
        known = {a.allegation_id for a in matter.allegations}
        unknown = [p for p in command.untrue_points if p not in known]
        if unknown:
            raise RuleViolation(
                f"not allegations of {matter.report_id}: {', '.join(unknown)}",
                detail_zh=f"以下不是 {matter.report_id} 的反映问题：{'、'.join(unknown)}",
                field="untrue_points",
                code="unknown_allegation",
            )
        not_before(command.filed_on, matter.received_on, field="filed_on", step=RECEIPT)
        return [
            ClarificationApplicationFiled(
                application_id=self.application_id,
                matter_id=matter.report_id,
                applicant=command.applicant,
                untrue_points=list(dict.fromkeys(command.untrue_points)),
                request=command.request,
                filed_on=command.filed_on,
            )
        ]


# ---- overdue list ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Deadlines:
    """What the overdue list needs of one report (from the read model)."""

    report_id: str
    state: ReportState
    real_name: bool
    disposition_due: date | None = None
    disposed_on: date | None = None
    acceptance_notice_due: date | None = None
    acceptance_notified_on: date | None = None
    result_notice_due: date | None = None
    result_notified_on: date | None = None
    response_due: date | None = None
    lower_disposed_on: date | None = None


@dataclass(frozen=True)
class OverdueItem:
    report_id: str
    kind: OverdueKind
    due_on: date
    days_overdue: int


def _late(due: date | None, done_on: date | None, as_of: date) -> bool:
    """Past due at `as_of` and not done by then (a step done after as_of was still late then)."""
    return due is not None and as_of > due and (done_on is None or done_on > as_of)


def overdue(report: Deadlines, as_of: date) -> list[OverdueItem]:
    """What of one report is late at `as_of`; days_overdue counts calendar days past the due date."""
    found: list[tuple[OverdueKind, date]] = []
    if _late(report.disposition_due, report.disposed_on, as_of):
        assert report.disposition_due is not None
        found.append(("disposition", report.disposition_due))
    left_by_then = (
        report.state in LEFT_STATES and report.disposed_on is not None and report.disposed_on <= as_of
    )
    if (
        report.real_name
        and not left_by_then
        and _late(report.acceptance_notice_due, report.acceptance_notified_on, as_of)
    ):
        assert report.acceptance_notice_due is not None
        found.append(("acceptance_notice", report.acceptance_notice_due))
    if report.real_name and _late(report.result_notice_due, report.result_notified_on, as_of):
        assert report.result_notice_due is not None
        found.append(("result_notice", report.result_notice_due))
    if _late(report.response_due, report.lower_disposed_on, as_of):
        assert report.response_due is not None
        found.append(("sent_down_response", report.response_due))
    return [OverdueItem(report.report_id, kind, due, (as_of - due).days) for kind, due in found]
