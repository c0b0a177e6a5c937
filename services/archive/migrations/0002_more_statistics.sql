-- Facts for the figures an officer asks first: matters (reports less merged repeats), refusals by
-- reason, and the pool's stock (candidates not yet started).
CREATE TABLE stat_repeats (
    event_id     uuid    PRIMARY KEY,
    case_id      text    NOT NULL,
    jurisdiction text    NOT NULL,
    merged_on    date    NOT NULL
);
CREATE INDEX stat_repeats_idx ON stat_repeats (jurisdiction, case_id);

CREATE TABLE stat_refusals (
    event_id     uuid    PRIMARY KEY,
    case_id      text    NOT NULL,
    jurisdiction text    NOT NULL,
    assessed_on  date    NOT NULL,
    refusals     text[]  NOT NULL
);
CREATE INDEX stat_refusals_idx ON stat_refusals (jurisdiction, assessed_on);

CREATE TABLE stat_starts (
    event_id     uuid    PRIMARY KEY,
    case_id      text    NOT NULL,
    jurisdiction text    NOT NULL,
    started_on   date    NOT NULL
);
CREATE INDEX stat_starts_idx ON stat_starts (jurisdiction, started_on);
