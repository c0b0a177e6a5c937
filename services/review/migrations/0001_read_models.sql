-- Read models of the review service (核查), fed only by its own events.

CREATE TABLE verifications (
    case_id           text    PRIMARY KEY,
    jurisdiction      text    NOT NULL,
    department        text    NOT NULL,
    state             text    NOT NULL CHECK (state IN ('open', 'decided', 'concluded')),
    opened_on         date    NOT NULL,
    received_on       date    NOT NULL,
    real_name         boolean NOT NULL,
    subjects          jsonb   NOT NULL,
    allegations       jsonb   NOT NULL,
    method            text,
    decided_on        date,
    approved_by       text,
    decision_note     text,
    findings          jsonb   NOT NULL DEFAULT '{}'::jsonb,
    concluded_on      date,
    eligible_for_pool boolean,
    untrue_points     jsonb,
    screenings        jsonb   NOT NULL DEFAULT '[]'::jsonb,
    version           integer NOT NULL
);
CREATE INDEX verifications_jurisdiction_idx ON verifications (jurisdiction, state);
CREATE INDEX verifications_concluded_idx ON verifications (jurisdiction, concluded_on)
    WHERE concluded_on IS NOT NULL;

-- 诬告陷害 referred for punishment of the false accuser.
CREATE TABLE false_accusations (
    case_id               text NOT NULL,
    allegation_id         text NOT NULL,
    jurisdiction          text NOT NULL,
    referred_on           date NOT NULL,
    referred_to           text NOT NULL,
    basis                 text NOT NULL,
    approved_by           text,
    approval_jurisdiction text,
    PRIMARY KEY (case_id, allegation_id)
);
CREATE INDEX false_accusations_jurisdiction_idx ON false_accusations (jurisdiction, referred_on);

-- Quarterly results reported back to the letters-and-visits office.
CREATE TABLE results_reports (
    jurisdiction text  NOT NULL,
    quarter      text  NOT NULL,
    reported_on  date  NOT NULL,
    matters      jsonb NOT NULL,
    PRIMARY KEY (jurisdiction, quarter)
);
