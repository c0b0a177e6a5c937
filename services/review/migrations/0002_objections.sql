-- 异议: the real-name reporters' objections each verification received, and their re-examination.
-- A table of its own (keyed by the objection), so an objection never waits for its verification's row.
CREATE TABLE verification_objections (
    objection_id text    PRIMARY KEY,
    case_id      text    NOT NULL,
    jurisdiction text    NOT NULL,
    lodged_on    date    NOT NULL,
    grounds      text    NOT NULL,
    new_evidence text    NOT NULL,
    examined_on  date,
    upheld       boolean,
    reason       text
);
CREATE INDEX verification_objections_case_idx ON verification_objections (case_id, lodged_on);
