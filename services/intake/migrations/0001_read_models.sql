-- Read models of intake, fed by its own events (and, for conclusions, by review's).

-- Next matter number per jurisdiction and year: handlers take the next one, the projection of
-- ReportReceived keeps the highest seen, so a rebuild from the events gives the same table.
CREATE TABLE report_sequences (
    jurisdiction text    NOT NULL,
    year         integer NOT NULL,
    last         integer NOT NULL,
    PRIMARY KEY (jurisdiction, year)
);

-- One row per report: its state and deadlines, never the reporter's identity.
CREATE TABLE reports (
    report_id              text    PRIMARY KEY,
    jurisdiction           text    NOT NULL,
    state                  text    NOT NULL,
    channel                text    NOT NULL,
    received_on            date    NOT NULL,
    real_name              boolean NOT NULL,
    reporter_subject_id    text,
    reporter_erased        boolean NOT NULL DEFAULT false,
    subjects               jsonb   NOT NULL,
    allegations            jsonb   NOT NULL,
    summary                text    NOT NULL DEFAULT '',
    source_agency          text,
    source_reference       text,
    logged_on              date,
    disposition_due        date,
    disposed_on            date,
    accepted_on            date,
    sent_to                text,
    lower_report_id        text,
    response_due           date,
    repeats_matter_id      text,
    handed_on              date,
    department             text,
    acceptance_notice_due  date,
    acceptance_notified_on date,
    concluded_on           date,
    result_notice_due      date,
    result_notified_on     date
);
CREATE INDEX reports_jurisdiction_idx ON reports (jurisdiction, state, report_id);
CREATE INDEX reports_reporter_idx ON reports (reporter_subject_id) WHERE reporter_subject_id IS NOT NULL;
CREATE INDEX reports_repeats_idx ON reports (repeats_matter_id) WHERE repeats_matter_id IS NOT NULL;
CREATE INDEX reports_source_idx ON reports (source_agency, source_reference)
    WHERE source_reference IS NOT NULL;

-- 绿色通道 applications.
CREATE TABLE applications (
    application_id text    PRIMARY KEY,
    matter_id      text    NOT NULL,
    jurisdiction   text    NOT NULL,
    applicant      jsonb   NOT NULL,
    untrue_points  jsonb   NOT NULL,
    request        text    NOT NULL,
    filed_on       date    NOT NULL
);
CREATE INDEX applications_matter_idx ON applications (matter_id);

-- Conclusions of verifications (review's VerificationConcluded), whether or not intake has the
-- report yet: a report merged or registered later still learns its result is due.
CREATE TABLE conclusions (
    matter_id    text PRIMARY KEY,
    jurisdiction text NOT NULL,
    concluded_on date NOT NULL
);
