-- Read models of the clarification service. `clarifications` and `rounds` are projections of the
-- events (rebuildable from them); `documents` keeps the text of each issued document as it was
-- rendered in the command's transaction (replay never renders or issues a document again).

CREATE TABLE clarifications (
    case_id        text    PRIMARY KEY,
    jurisdiction   text    NOT NULL,
    state          text    NOT NULL,
    version        integer NOT NULL,
    eligible       boolean,
    concluded_on   date,
    outcome        jsonb,
    candidate_via  text,
    added_on       date,
    priority_flags jsonb   NOT NULL DEFAULT '[]'::jsonb,
    applications   jsonb   NOT NULL DEFAULT '{}'::jsonb,
    person         jsonb,
    approved_on    date,
    clarify_by     date,
    performed_on   date,
    round_id       text,
    steps          jsonb   NOT NULL DEFAULT '[]'::jsonb
);
CREATE INDEX clarifications_jurisdiction_state_idx ON clarifications (jurisdiction, state);

CREATE TABLE rounds (
    round_id     text PRIMARY KEY,
    jurisdiction text NOT NULL,
    quarter      text NOT NULL,
    held_on      date NOT NULL,
    matters      jsonb NOT NULL
);

CREATE TABLE documents (
    doc_id     text PRIMARY KEY,
    case_id    text NOT NULL,
    kind       text NOT NULL,
    title      text NOT NULL,
    body       text NOT NULL,
    created_on date NOT NULL
);
CREATE INDEX documents_case_idx ON documents (case_id);
