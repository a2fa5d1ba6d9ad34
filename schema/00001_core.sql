-- +goose Up
-- Users of the product. E-mail addresses are unique regardless of case, so
-- the uniqueness lives on lower(email) rather than on the column.
CREATE TABLE users (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    email      text        NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
    name       text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    is_active  boolean     NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- CreateUser conflicts on it; GetUserByEmail looks up by it.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- API keys are stored as the SHA-256 of the key: a leaked table leaks no key.
CREATE TABLE api_keys (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    prefix       text        NOT NULL,
    key_hash     bytea       NOT NULL CHECK (length(key_hash) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz,
    CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash)
);
-- Foreign key: ON DELETE CASCADE from users scans by user_id.
CREATE INDEX api_keys_user_id_idx ON api_keys (user_id);

CREATE TABLE campaigns (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    status     text        NOT NULL DEFAULT 'draft',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT campaigns_status_check CHECK (status IN ('draft', 'active', 'paused', 'completed'))
);
-- ListCampaigns walks (created_at, id) descending within one user (keyset);
-- the leading user_id also serves the foreign key and GetUserStatistics.
CREATE INDEX campaigns_user_created_idx ON campaigns (user_id, created_at DESC, id DESC);

-- +goose Down
DROP TABLE campaigns;
DROP TABLE api_keys;
DROP TABLE users;
