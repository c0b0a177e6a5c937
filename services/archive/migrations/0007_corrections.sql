-- 纠正错误处理 (art. 51): each wrong treatment corrected, in the person's file and in the notice to
-- the organisation department of the period it was corrected in.
CREATE TABLE corrections (
    event_id     uuid    PRIMARY KEY,
    case_id      text    NOT NULL,
    jurisdiction text    NOT NULL,
    subject_id   text    NOT NULL,
    person_key   text    NOT NULL,
    kind         text    NOT NULL,
    name         text    NOT NULL,
    post         text,
    unit         text,
    treatment    text    NOT NULL,
    organ        text    NOT NULL,
    correction   text    NOT NULL,
    corrected_on date    NOT NULL
);
CREATE INDEX corrections_person_idx ON corrections (person_key);
CREATE INDEX corrections_period_idx ON corrections (jurisdiction, corrected_on);

ALTER TABLE notices ADD COLUMN corrections jsonb NOT NULL DEFAULT '[]';
