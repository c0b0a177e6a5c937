-- Producer-signed events (shared/signing.py): the key id and the Ed25519 signature over the hash,
-- outside the hashed body. Events recorded before this migration stay unsigned: their positions
-- are remembered, so verify tells them from an unsigned event written later.
ALTER TABLE events ADD COLUMN key_id text, ADD COLUMN signature text;

CREATE TABLE unsigned_events_before (
    global_position bigint      NOT NULL,
    migrated_at     timestamptz NOT NULL DEFAULT now()
);
INSERT INTO unsigned_events_before (global_position)
    SELECT coalesce(max(global_position), 0) FROM events;

-- Messages a consumer refused because they do not vouch for themselves (altered, unsigned, signed
-- by an unknown key or by a service that does not own the topic). They went to the dead-letter
-- topic too; this record keeps GET /audit/verify failing and naming them.
CREATE TABLE rejected_events (
    consumer        text        NOT NULL,
    topic           text        NOT NULL,
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    event_id        uuid,
    code            text        NOT NULL,
    reason          text        NOT NULL,
    rejected_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, topic, kafka_partition, kafka_offset)
);
