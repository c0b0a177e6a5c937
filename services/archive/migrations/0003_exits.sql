-- Facts of the chain's early exits: the person declining (before the start) or withdrawing (after
-- it), and the head refusing or sending back; each by the date it was recorded with.
CREATE TABLE stat_exits (
    event_id     uuid    PRIMARY KEY,
    case_id      text    NOT NULL,
    jurisdiction text    NOT NULL,
    exit         text    NOT NULL,
    exited_on    date    NOT NULL
);
CREATE INDEX stat_exits_idx ON stat_exits (jurisdiction, exited_on);
