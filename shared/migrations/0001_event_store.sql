-- Event store, transactional outbox, consumer inbox and per-subject keys of one service schema.

CREATE TABLE events (
    global_position bigserial PRIMARY KEY,
    event_id        uuid        NOT NULL UNIQUE,
    stream_id       text        NOT NULL,
    stream_version  integer     NOT NULL CHECK (stream_version >= 1),
    event_type      text        NOT NULL,
    schema_version  integer     NOT NULL,
    case_id         text        NOT NULL,
    jurisdiction    text        NOT NULL,
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    actor           jsonb       NOT NULL,
    correlation_id  uuid        NOT NULL,
    causation_id    uuid,
    payload         jsonb       NOT NULL,
    prev_hash       char(64)    NOT NULL,
    hash            char(64)    NOT NULL,
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version)
);
CREATE INDEX events_case_idx ON events (case_id, global_position);
CREATE INDEX events_jurisdiction_idx ON events (jurisdiction, global_position);

-- Written in the same transaction as the events; the relay publishes rows in id order and
-- marks them. It never tracks a "last id sent", so a row that commits late is still found.
CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    event_id     uuid        NOT NULL UNIQUE,
    topic        text        NOT NULL,
    key          text        NOT NULL,
    body         bytea       NOT NULL,
    headers      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_pending_idx ON outbox (id) WHERE published_at IS NULL;

-- One row per (consumer, event) applied: the same transaction as the effect.
CREATE TABLE inbox (
    consumer    text        NOT NULL,
    event_id    uuid        NOT NULL,
    topic       text        NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset    bigint  NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- Data keys of data subjects (e.g. one per reporter), wrapped by the master key.
-- Deleting a row erases every field sealed with it (crypto-shredding).
CREATE TABLE subject_keys (
    subject_id  text        PRIMARY KEY,
    wrapped_key bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE erased_subjects (
    subject_id  text        PRIMARY KEY,
    erased_at   timestamptz NOT NULL DEFAULT now(),
    erased_by   text        NOT NULL
);
