-- Idempotency keys of POST commands (Idempotency-Key header). A row commits in the transaction
-- of the command's events, with the answer the first request got; a retry gets that answer.
CREATE TABLE idempotency_keys (
    principal    text        NOT NULL,  -- the caller's user id: keys are unique per caller
    key          text        NOT NULL,
    fingerprint  char(64)    NOT NULL,  -- SHA-256 of method, path, query and canonical body
    method       text        NOT NULL,
    path         text        NOT NULL,
    status       integer,               -- NULL only inside the request's own transaction
    headers      jsonb,
    body         bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (principal, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
