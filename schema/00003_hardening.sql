-- +goose Up
-- A key's own request budget, in cost units per minute; NULL takes the
-- server's default (RATE_LIMIT_PER_MINUTE). Set through PATCH /api/v1/keys/{id}.
ALTER TABLE api_keys
    ADD COLUMN rate_limit_per_minute integer
        CONSTRAINT api_keys_rate_limit_check CHECK (rate_limit_per_minute BETWEEN 1 AND 1000000);

-- Responses of POSTs sent with an Idempotency-Key, per owner ('user:<id>'
-- or 'admin'). The row is inserted first, in the transaction of the write:
-- a concurrent retry's INSERT waits on the unique key until that
-- transaction ends, so a write never runs twice. status and response are
-- filled in before the commit, so a committed row always has them.
CREATE TABLE idempotency_keys (
    owner        text        NOT NULL,
    key          text        NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    method       text        NOT NULL,
    path         text        NOT NULL,
    request_hash bytea       NOT NULL CHECK (length(request_hash) = 32),
    status       integer,
    content_type text,
    location     text,
    response     bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner, key)
);
-- PurgeIdempotencyKeys deletes by age.
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

-- +goose Down
DROP TABLE idempotency_keys;
ALTER TABLE api_keys DROP COLUMN rate_limit_per_minute;
