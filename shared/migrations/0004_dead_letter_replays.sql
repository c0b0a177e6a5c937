-- What operators did with dead letters (zhengming dlq): the last replay of each entry of a
-- consumer's dead-letter topic, and each purge of the topic (who, when, how much, why).
CREATE TABLE dead_letter_replays (
    consumer        text        NOT NULL,
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    outcome         text        NOT NULL CHECK (outcome IN ('applied', 'duplicate', 'skipped', 'failed')),
    code            text,
    reason          text,
    replayed_by     text        NOT NULL,
    replayed_at     timestamptz NOT NULL DEFAULT now(),
    attempts        integer     NOT NULL DEFAULT 1,
    PRIMARY KEY (consumer, kafka_partition, kafka_offset)
);

CREATE TABLE dead_letter_purges (
    id              bigserial   PRIMARY KEY,
    consumer        text        NOT NULL,
    kafka_partition integer     NOT NULL,
    before_offset   bigint      NOT NULL,
    removed         integer     NOT NULL,
    unresolved      integer     NOT NULL,
    reason          text,
    purged_by       text        NOT NULL,
    purged_at       timestamptz NOT NULL DEFAULT now()
);
