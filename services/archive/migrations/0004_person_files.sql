-- 一人一档 kept under the person key (the officer id, the keyed ID number, or as before the hash
-- of name and unit), and the merges (合档) that join two files into one. The rows of before keep
-- their subject_id as their person key: the files read exactly as they did.
ALTER TABLE filings ADD COLUMN person_key text;
UPDATE filings SET person_key = subject_id WHERE person_key IS NULL;
ALTER TABLE filings ALTER COLUMN person_key SET NOT NULL;
CREATE INDEX filings_person_idx ON filings (person_key);

ALTER TABLE integrity_entries ADD COLUMN person_key text;
UPDATE integrity_entries SET person_key = subject_id WHERE person_key IS NULL;
ALTER TABLE integrity_entries ALTER COLUMN person_key SET NOT NULL;
CREATE INDEX integrity_entries_person_idx ON integrity_entries (person_key);

ALTER TABLE visits ADD COLUMN person_key text;
UPDATE visits SET person_key = subject_id WHERE person_key IS NULL;
ALTER TABLE visits ALTER COLUMN person_key SET NOT NULL;
CREATE INDEX visits_person_idx ON visits (person_key);

-- Persons clarified are counted by person key: one person clarified in two units counts once.
-- (Every event before had neither officer id nor ID number: its person key is its subject_id.)
ALTER TABLE stat_clarifications ADD COLUMN person_key text;
UPDATE stat_clarifications SET person_key = subject_id WHERE person_key IS NULL;
ALTER TABLE stat_clarifications ALTER COLUMN person_key SET NOT NULL;

-- 合档: each merge of two files, with who merged them, when and why.
CREATE TABLE file_merges (
    event_id     uuid    PRIMARY KEY,
    case_id      text    NOT NULL,
    jurisdiction text    NOT NULL,
    person_key   text    NOT NULL,
    other_key    text    NOT NULL,
    merged_on    date    NOT NULL,
    reason       text    NOT NULL,
    merged_by    text    NOT NULL,
    merged_by_name text
);
CREATE INDEX file_merges_person_idx ON file_merges (person_key);
CREATE INDEX file_merges_other_idx ON file_merges (other_key);
