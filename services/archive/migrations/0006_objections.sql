-- Facts of the real-name reporters' objections (异议): lodged (intake's ObjectionLodged, by the
-- date lodged) and re-examined (review's ObjectionExamined, by the date examined, upheld or not).
CREATE TABLE stat_objections (
    event_id     uuid    PRIMARY KEY,
    objection_id text    NOT NULL,
    case_id      text    NOT NULL,
    jurisdiction text    NOT NULL,
    lodged_on    date    NOT NULL
);
CREATE INDEX stat_objections_idx ON stat_objections (jurisdiction, lodged_on);

CREATE TABLE stat_objection_results (
    event_id     uuid    PRIMARY KEY,
    objection_id text    NOT NULL,
    case_id      text    NOT NULL,
    jurisdiction text    NOT NULL,
    examined_on  date    NOT NULL,
    upheld       boolean NOT NULL
);
CREATE INDEX stat_objection_results_idx ON stat_objection_results (jurisdiction, examined_on);
