-- Read models of the archive service: the files (一人一档) from its own events, and the raw facts
-- of the other contexts the quarterly statistics are computed from. Every row is keyed by the
-- event (or case) it comes from, so applying an event twice or in another order changes nothing.

-- 备案: one filing per clarified matter.
CREATE TABLE filings (
    case_id      text    PRIMARY KEY,
    jurisdiction text    NOT NULL,
    subject_id   text    NOT NULL,
    kind         text    NOT NULL,
    name         text    NOT NULL,
    post         text,
    unit         text,
    points       jsonb   NOT NULL,
    forms        text[]  NOT NULL,
    filed_on     date    NOT NULL,
    concluded_on date    NOT NULL,
    clarified_on date    NOT NULL,
    event_id     uuid    NOT NULL UNIQUE
);
CREATE INDEX filings_subject_idx ON filings (subject_id);
CREATE INDEX filings_period_idx ON filings (jurisdiction, filed_on);

-- 廉政档案 entries.
CREATE TABLE integrity_entries (
    event_id     uuid    PRIMARY KEY,
    case_id      text    NOT NULL,
    jurisdiction text    NOT NULL,
    subject_id   text    NOT NULL,
    entered_on   date    NOT NULL,
    summary      text    NOT NULL
);
CREATE INDEX integrity_entries_subject_idx ON integrity_entries (subject_id);

-- 回访: scheduled, and once recorded what it found.
CREATE TABLE visits (
    visit_id           text    PRIMARY KEY,
    case_id            text    NOT NULL,
    jurisdiction       text    NOT NULL,
    subject_id         text    NOT NULL,
    visit_with         text    NOT NULL,
    clarified_on       date    NOT NULL,
    due_on             date    NOT NULL,
    visited_on         date,
    state_of_mind      text,
    work               text,
    leader_views       text,
    colleague_views    text,
    scheduled_event_id uuid    NOT NULL UNIQUE,
    recorded_event_id  uuid    UNIQUE
);
CREATE INDEX visits_case_idx ON visits (case_id);
CREATE INDEX visits_due_idx ON visits (jurisdiction, due_on);
CREATE INDEX visits_subject_idx ON visits (subject_id);

-- Notices to the organisation department.
CREATE TABLE notices (
    notice_id    text    PRIMARY KEY,
    jurisdiction text    NOT NULL,
    period       text    NOT NULL,
    issued_on    date    NOT NULL,
    entries      jsonb   NOT NULL,
    event_id     uuid    NOT NULL UNIQUE,
    UNIQUE (jurisdiction, period)
);

-- Facts of other contexts for the statistics.
CREATE TABLE stat_reports (
    event_id     uuid    PRIMARY KEY,
    case_id      text    NOT NULL,
    jurisdiction text    NOT NULL,
    channel      text    NOT NULL,
    received_on  date    NOT NULL
);
CREATE INDEX stat_reports_idx ON stat_reports (jurisdiction, received_on);

CREATE TABLE stat_conclusions (
    event_id      uuid    PRIMARY KEY,
    case_id       text    NOT NULL,
    jurisdiction  text    NOT NULL,
    concluded_on  date    NOT NULL,
    untrue_points integer NOT NULL
);
CREATE INDEX stat_conclusions_idx ON stat_conclusions (jurisdiction, concluded_on);

CREATE TABLE stat_candidates (
    event_id     uuid    PRIMARY KEY,
    case_id      text    NOT NULL,
    jurisdiction text    NOT NULL,
    added_on     date    NOT NULL,
    via          text    NOT NULL
);
CREATE INDEX stat_candidates_idx ON stat_candidates (jurisdiction, added_on);

CREATE TABLE stat_clarifications (
    event_id     uuid    PRIMARY KEY,
    case_id      text    NOT NULL,
    jurisdiction text    NOT NULL,
    subject_id   text    NOT NULL,
    kind         text    NOT NULL,
    forms        text[]  NOT NULL,
    on_time      boolean NOT NULL,
    concluded_on date    NOT NULL,
    performed_on date    NOT NULL,
    working_days integer NOT NULL
);
CREATE INDEX stat_clarifications_idx ON stat_clarifications (jurisdiction, performed_on);

CREATE TABLE stat_false_accusations (
    event_id      uuid    PRIMARY KEY,
    case_id       text    NOT NULL,
    jurisdiction  text    NOT NULL,
    allegation_id text    NOT NULL,
    referred_on   date    NOT NULL
);
CREATE INDEX stat_false_accusations_idx ON stat_false_accusations (jurisdiction, referred_on);
