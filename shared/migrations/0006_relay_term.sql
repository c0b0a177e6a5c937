-- The outbox relay's terms: the number of the latest and whether it ended with every row it had
-- committed on Kafka marked published. A relay starting a term (after fencing the producer of
-- the one before) bumps the number; if the term before ended clean, no row can be on Kafka
-- unmarked and the new term skips the reconciliation (reading the topics' tails). A term says it
-- ended clean only while its number is still the latest, so an older term ending late cannot
-- vouch for a newer one. An outbox that is still empty has never had a row published: clean.
CREATE TABLE relay_term (
    one   boolean PRIMARY KEY DEFAULT true CHECK (one),
    term  bigint  NOT NULL,
    clean boolean NOT NULL
);
INSERT INTO relay_term (term, clean) SELECT 0, NOT EXISTS (SELECT FROM outbox);
