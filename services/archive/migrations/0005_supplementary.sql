-- Facts of 补充核查 (supplementary verification): each reopening of a concluded verification
-- (the re-review found it incomplete, or an objection was upheld), by the date it reopened.
CREATE TABLE stat_reopenings (
    event_id     uuid PRIMARY KEY,
    case_id      text NOT NULL,
    jurisdiction text NOT NULL,
    origin       text NOT NULL,
    reopened_on  date NOT NULL
);
CREATE INDEX stat_reopenings_idx ON stat_reopenings (jurisdiction, reopened_on);
