-- The approvals performed by the approver (the head approves or sends back the proposed handling, a
-- city head approves or refuses a proposed 诬告陷害), the revised conclusions and the reopenings
-- of 补充核查 (supplementary verification).

ALTER TABLE verifications DROP CONSTRAINT verifications_state_check;
ALTER TABLE verifications ADD CONSTRAINT verifications_state_check
    CHECK (state IN ('open', 'proposed', 'decided', 'concluded', 'reopened'));

ALTER TABLE verifications
    -- the proposed handling awaiting the head (method, decided_on, note, proposed_by), else NULL
    ADD COLUMN proposal                  jsonb,
    -- every send-back of a proposal (sent_back_on, reason, sent_back_by), in order
    ADD COLUMN sent_back                 jsonb   NOT NULL DEFAULT '[]'::jsonb,
    ADD COLUMN approved_on               date,
    ADD COLUMN approver_name             text,
    -- allegation id -> the proposed 诬告陷害 awaiting a city head
    ADD COLUMN false_accusation_proposals jsonb  NOT NULL DEFAULT '{}'::jsonb,
    -- every refusal of a proposed 诬告陷害 (allegation_id, refused_on, reason, refused_by)
    ADD COLUMN false_accusation_refusals jsonb   NOT NULL DEFAULT '[]'::jsonb,
    -- the latest conclusion's revision (0 the first), NULL before the first conclusion
    ADD COLUMN revision                  integer,
    -- every reopening (reopened_on, origin, reason), in order
    ADD COLUMN reopenings                jsonb   NOT NULL DEFAULT '[]'::jsonb;

UPDATE verifications SET revision = 0 WHERE state = 'concluded';
