"""Rules of the real-name reporter's objection (异议): lodged in intake, re-examined in review,
answered and fed back in intake, counted in the archive; one test per rule."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import BaseModel

from services.archive.domain import QuarterFacts, figures
from services.intake.commands import FeedBackObjection, LodgeObjection, ReporterIdentity
from services.intake.disclosure import reveals, reveals_any
from services.intake.domain import (
    Report,
    check_no_reporter_identity,
    objection_id,
)
from services.review.commands import ExamineObjection
from services.review.domain import Verification
from shared.crypto import SealedField
from shared.errors import Conflict, DomainError, NotFound, RuleViolation
from shared.events.common import Allegation, Subject
from shared.events.intake import (
    ObjectionAnswered,
    ObjectionFedBack,
    ObjectionLodged,
    ReportAccepted,
    ReporterErased,
    ReportHandedOver,
    ReportLogged,
    ReportReceived,
)
from shared.events.review import (
    ObjectionExamined,
    ObjectionReceived,
    VerificationConcluded,
    VerificationOpened,
    VerificationReopened,
)
from shared.http import status_of

RID = "331122-2023-000001"
PERSON = Subject(kind="person", name="李某", post="镇长", unit="缙云县某镇人民政府")
ALLEGATIONS = [Allegation(allegation_id="A1", summary="违规收受礼金")]
SEALED = SealedField(subject_id="reporter-abc", nonce="bm9uY2U=", ciphertext="Y2lwaGVy")
REPORTER = ReporterIdentity(name="郑实名", contact="138-1234-5678", id_number="332526198805050022")
HANDED = ReportHandedOver(
    handed_on=date(2023, 1, 20),
    department="第一监督检查室",
    received_on=date(2023, 1, 16),
    real_name=True,
    subjects=[PERSON],
    allegations=ALLEGATIONS,
)
LODGE = LodgeObjection(
    lodged_on=date(2023, 3, 10), grounds="不同意核查结论", new_evidence="提供了新的转账记录"
)


def report(*events: BaseModel, real_name: bool = True) -> Report:
    state = Report(RID, "331122")
    for event in [
        ReportReceived(
            report_id=RID,
            channel="letter",
            received_on=date(2023, 1, 16),
            real_name=real_name,
            reporter=SEALED if real_name else None,
            reporter_subject_id=SEALED.subject_id if real_name else None,
            subjects=[PERSON],
            allegations=ALLEGATIONS,
        ),
        *events,
    ]:
        state.evolve(event)
    return state


HANDED_OVER = (
    ReportLogged(logged_on=date(2023, 1, 17), disposition_due=date(2023, 1, 24)),
    ReportAccepted(accepted_on=date(2023, 1, 18)),
    HANDED,
)


def lodged(rid: str = RID, n: int = 1) -> ObjectionLodged:
    return ObjectionLodged(
        objection_id=objection_id(rid, n),
        lodged_on=date(2023, 3, 10),
        grounds="不同意核查结论",
        new_evidence="提供了新的转账记录",
    )


def examined(upheld: bool = False, on: date = date(2023, 3, 20), n: int = 1) -> ObjectionExamined:
    return ObjectionExamined(
        objection_id=objection_id(RID, n), examined_on=on, upheld=upheld, reason="新证据不足以推翻结论"
    )


def problem(exc: pytest.ExceptionInfo[DomainError]) -> tuple[int, str, str | None]:
    return status_of(exc.value), exc.value.code, exc.value.field


# ---- the identity check (保护检举控告人) -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "contains"),
    [
        ("检举人郑实名再次来信", True),  # the name
        ("联系电话 13812345678", True),  # the contact, written without its hyphens
        ("联系电话 138 1234 5678", True),  # or with spaces
        ("身份证 332526 19880505 0022", True),  # the ID number, spaced
        ("身份证332526198805050022", True),
        ("郑 实 名", True),  # a name spelled out with spaces still names the reporter
        ("不同意核查结论，提供了新的转账记录", False),
        ("郑某某", False),
        ("", False),
    ],
)
def test_a_text_contains_the_reporter_by_name_contact_or_id_number(text: str, contains: bool) -> None:
    assert reveals(text, REPORTER) is contains


def test_an_id_number_with_a_lower_case_x_is_the_same_number() -> None:
    reporter = ReporterIdentity(name="王五", contact="wang@example.cn", id_number="11010519491231002X")
    assert reveals("证件号 11010519491231002x", reporter)
    assert reveals("邮箱 WANG@example.cn", reporter)


def test_a_text_naming_any_reporter_of_the_matter_names_a_reporter() -> None:
    repeat = ReporterIdentity(name="钱重复", contact="0578-3123456")
    assert reveals_any("另据05783123456反映", [REPORTER, repeat])
    assert not reveals_any("另据反映", [REPORTER, repeat])
    assert not reveals_any("郑实名", [])


def test_the_refusal_names_the_field_and_never_the_identity() -> None:
    with pytest.raises(RuleViolation) as exc:
        check_no_reporter_identity([REPORTER], grounds="理由", new_evidence="郑实名提供的录音")
    assert problem(exc) == (422, "reporter_identity_in_text", "new_evidence")
    assert "郑实名" not in str(exc.value.detail) + str(exc.value.detail_zh)


# ---- lodging (intake) ------------------------------------------------------------------------


def test_an_objection_of_a_handed_over_real_name_report_is_lodged_without_the_reporter() -> None:
    [event] = report(*HANDED_OVER).lodge_objection(LODGE, [REPORTER])
    assert event == lodged()
    assert event.objection_id == f"{RID}-OB1"
    assert "reporter" not in event.model_dump_json()


def test_a_second_objection_gets_the_next_number() -> None:
    [event] = report(*HANDED_OVER, lodged()).lodge_objection(LODGE, [REPORTER])
    assert event.objection_id == f"{RID}-OB2"


def test_an_anonymous_report_has_nobody_to_object() -> None:
    with pytest.raises(RuleViolation) as exc:
        report(*HANDED_OVER, real_name=False).lodge_objection(LODGE, [])
    assert problem(exc) == (422, "objection_needs_real_name", "real_name")


@pytest.mark.parametrize("steps", [0, 1, 2])
def test_an_objection_needs_the_report_handed_over(steps: int) -> None:
    with pytest.raises(Conflict) as exc:
        report(*HANDED_OVER[:steps]).lodge_objection(LODGE, [REPORTER])
    assert problem(exc) == (409, "wrong_state", "state")


def test_an_erased_reporter_cannot_be_told_the_result() -> None:
    erased = ReporterErased(reporter_subject_id=SEALED.subject_id, erased_on=date(2023, 3, 1))
    with pytest.raises(Conflict) as exc:
        report(*HANDED_OVER, erased).lodge_objection(LODGE, [])
    assert problem(exc) == (409, "reporter_erased", "reporter")


@pytest.mark.parametrize("name", ["grounds", "new_evidence"])
def test_grounds_and_what_is_new_are_required(name: str) -> None:
    with pytest.raises(RuleViolation) as exc:
        report(*HANDED_OVER).lodge_objection(LODGE.model_copy(update={name: "  \n "}), [REPORTER])
    assert problem(exc) == (422, "text_required", name)


@pytest.mark.parametrize("name", ["grounds", "new_evidence"])
def test_an_objection_naming_its_reporter_is_refused(name: str) -> None:
    command = LODGE.model_copy(update={name: "检举人郑实名（13812345678）认为"})
    with pytest.raises(RuleViolation) as exc:
        report(*HANDED_OVER).lodge_objection(command, [REPORTER])
    assert problem(exc) == (422, "reporter_identity_in_text", name)


def test_an_objection_is_not_dated_before_the_handover() -> None:
    with pytest.raises(RuleViolation) as exc:
        report(*HANDED_OVER).lodge_objection(
            LODGE.model_copy(update={"lodged_on": date(2023, 1, 19)}), [REPORTER]
        )
    assert problem(exc) == (422, "date_before_previous_step", "lodged_on")


# ---- re-examination (review) -----------------------------------------------------------------

OPENED = VerificationOpened(
    department="第一监督检查室",
    opened_on=date(2023, 1, 20),
    received_on=date(2023, 1, 16),
    real_name=True,
    subjects=[PERSON],
    allegations=ALLEGATIONS,
)
CONCLUDED = VerificationConcluded(
    concluded_on=date(2023, 3, 1),
    received_on=date(2023, 1, 16),
    findings={"A1": "untrue"},
    untrue_points=ALLEGATIONS,
    subjects=[PERSON],
    eligible_for_pool=True,
)
RECEIVED = ObjectionReceived(**lodged().model_dump())
EXAMINE = ExamineObjection(examined_on=date(2023, 3, 20), upheld=True, reason="新的转账记录足以重新核查")


def verification(*events: BaseModel) -> Verification:
    v = Verification(RID, "331122")
    for event in events:
        v.evolve(event)
    return v


@pytest.mark.parametrize("before", [(OPENED, CONCLUDED), (OPENED,)])
def test_the_verification_receives_an_objection_after_or_before_its_conclusion(
    before: tuple[BaseModel, ...],
) -> None:
    assert verification(*before).receive_objection(lodged()) == [RECEIVED]


def test_a_redelivered_objection_is_received_once() -> None:
    assert verification(OPENED, RECEIVED).receive_objection(lodged()) == []


def test_an_objection_upheld_after_the_conclusion_reopens_the_verification() -> None:
    examined, reopened = verification(OPENED, CONCLUDED, RECEIVED).examine_objection(
        RECEIVED.objection_id, EXAMINE
    )
    assert examined == ObjectionExamined(
        objection_id=RECEIVED.objection_id,
        examined_on=date(2023, 3, 20),
        upheld=True,
        reason="新的转账记录足以重新核查",
    )
    assert isinstance(reopened, VerificationReopened)
    assert (reopened.origin, reopened.reopened_on, reopened.trigger) == (
        "objection",
        date(2023, 3, 20),
        RECEIVED.objection_id,
    )
    assert reopened.reason == "异议成立：新的转账记录足以重新核查"
    v = verification(OPENED, CONCLUDED, RECEIVED, examined, reopened)
    assert v.state == "reopened" and v.objection_results[RECEIVED.objection_id].upheld


def test_an_objection_not_upheld_or_upheld_before_the_conclusion_reopens_nothing() -> None:
    dismissed = EXAMINE.model_copy(update={"upheld": False, "reason": "所附材料不是新的事实"})
    [only] = verification(OPENED, CONCLUDED, RECEIVED).examine_objection(RECEIVED.objection_id, dismissed)
    assert isinstance(only, ObjectionExamined) and not only.upheld
    [running] = verification(OPENED, RECEIVED).examine_objection(RECEIVED.objection_id, EXAMINE)
    assert isinstance(running, ObjectionExamined) and running.upheld


def test_an_unknown_objection_is_not_found() -> None:
    with pytest.raises(NotFound) as exc:
        verification(OPENED, CONCLUDED).examine_objection(f"{RID}-OB9", EXAMINE)
    assert problem(exc) == (404, "objection_not_found", "objection_id")


def test_an_objection_is_examined_once() -> None:
    with pytest.raises(Conflict) as exc:
        verification(OPENED, RECEIVED, examined()).examine_objection(RECEIVED.objection_id, EXAMINE)
    assert problem(exc) == (409, "already_recorded", "objection_id")


def test_the_examination_is_not_dated_before_the_objection() -> None:
    early = EXAMINE.model_copy(update={"examined_on": date(2023, 3, 9)})
    with pytest.raises(RuleViolation) as exc:
        verification(OPENED, RECEIVED).examine_objection(RECEIVED.objection_id, early)
    assert problem(exc) == (422, "date_before_previous_step", "examined_on")


def test_the_examination_states_its_reason() -> None:
    blank = EXAMINE.model_copy(update={"reason": "   "})
    with pytest.raises(RuleViolation) as exc:
        verification(OPENED, RECEIVED).examine_objection(RECEIVED.objection_id, blank)
    assert problem(exc) == (422, "reason_required", "reason")


# ---- answer and feedback (intake) ------------------------------------------------------------

ANSWERED = ObjectionAnswered(**examined().model_dump())
FEEDBACK = FeedBackObjection(fed_back_on=date(2023, 3, 22), note="已书面告知复查结果")


def test_the_report_records_the_answer_once() -> None:
    r = report(*HANDED_OVER, lodged())
    assert r.answer_objection(examined()) == [ANSWERED]
    assert report(*HANDED_OVER, lodged(), ANSWERED).answer_objection(examined()) == []


def test_an_answer_to_an_objection_the_report_never_had_records_nothing() -> None:
    assert report(*HANDED_OVER).answer_objection(examined()) == []


def test_each_objection_shows_where_it_stands() -> None:
    fed = ObjectionFedBack(objection_id=objection_id(RID, 1), fed_back_on=date(2023, 3, 22))
    stages = [
        report(*HANDED_OVER, *events).objections[objection_id(RID, 1)].stage
        for events in ([lodged()], [lodged(), ANSWERED], [lodged(), ANSWERED, fed])
    ]
    assert stages == ["lodged", "examined", "fed_back"]


def test_the_result_is_fed_back_once_after_the_examination() -> None:
    r = report(*HANDED_OVER, lodged(), ANSWERED)
    [event] = r.feed_back_objection(FEEDBACK, objection_id(RID, 1), [REPORTER])
    assert event == ObjectionFedBack(
        objection_id=objection_id(RID, 1), fed_back_on=date(2023, 3, 22), note="已书面告知复查结果"
    )
    r.evolve(event)
    with pytest.raises(Conflict) as exc:
        r.feed_back_objection(FEEDBACK, objection_id(RID, 1), [REPORTER])
    assert problem(exc) == (409, "already_recorded", "objection_id")


def test_no_feedback_before_the_examination() -> None:
    with pytest.raises(Conflict) as exc:
        report(*HANDED_OVER, lodged()).feed_back_objection(FEEDBACK, objection_id(RID, 1), [REPORTER])
    assert problem(exc) == (409, "objection_not_examined", "objection_id")


def test_feedback_of_an_unknown_objection_is_not_found() -> None:
    with pytest.raises(NotFound) as exc:
        report(*HANDED_OVER).feed_back_objection(FEEDBACK, objection_id(RID, 1), [REPORTER])
    assert problem(exc) == (404, "objection_not_found", "objection_id")


def test_feedback_is_not_dated_before_the_examination() -> None:
    early = FEEDBACK.model_copy(update={"fed_back_on": date(2023, 3, 19)})
    with pytest.raises(RuleViolation) as exc:
        report(*HANDED_OVER, lodged(), ANSWERED).feed_back_objection(early, objection_id(RID, 1), [REPORTER])
    assert problem(exc) == (422, "date_before_previous_step", "fed_back_on")


def test_the_feedback_note_does_not_name_the_reporter() -> None:
    named = FEEDBACK.model_copy(update={"note": "已电话告知郑实名"})
    with pytest.raises(RuleViolation) as exc:
        report(*HANDED_OVER, lodged(), ANSWERED).feed_back_objection(named, objection_id(RID, 1), [REPORTER])
    assert problem(exc) == (422, "reporter_identity_in_text", "note")


# ---- statistics (archive) --------------------------------------------------------------------


def test_objections_and_upheld_ones_are_counted_over_the_city() -> None:
    county = QuarterFacts(objections=frozenset({"o1", "o2"}), objections_upheld=frozenset({"o1"}))
    city = QuarterFacts(objections=frozenset({"o3"}))
    fig = figures(county + city)
    assert (fig.objections, fig.objections_upheld) == (3, 1)
    assert (figures(QuarterFacts()).objections, figures(QuarterFacts()).objections_upheld) == (0, 0)
