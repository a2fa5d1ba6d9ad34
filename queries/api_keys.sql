-- name: CreateAPIKey :one
INSERT INTO api_keys (user_id, name, prefix, key_hash)
VALUES (@user_id, @name, @prefix, @key_hash)
RETURNING id, user_id, name, prefix, created_at, last_used_at, revoked_at;

-- Authenticates a request: one indexed lookup on the unique key_hash, joined
-- to the owner so a deactivated user's keys stop working too. It leaves out
-- last_used_at on purpose: the cache invalidates a read when a column it
-- references is written, and TouchAPIKey writes that column for some key
-- every minute, which would empty the cache of every key's lookup.
-- rate_limit_per_minute rides along: the key's own budget, whose change
-- invalidates this read.
-- name: GetAPIKeyByHash :one
-- cache: ttl=1m
SELECT k.id, k.user_id, k.rate_limit_per_minute
FROM api_keys k
JOIN users u ON u.id = k.user_id
WHERE k.key_hash = @key_hash
  AND k.revoked_at IS NULL
  AND u.is_active;

-- Revoking twice keeps the first revocation time.
-- name: RevokeAPIKey :one
UPDATE api_keys
SET revoked_at = coalesce(revoked_at, now())
WHERE id = @id
RETURNING id, user_id, name, prefix, created_at, last_used_at, revoked_at;

-- Writes at most once a minute per key, so authenticating a busy client
-- does not turn every request into a write.
-- name: TouchAPIKey :execrows
UPDATE api_keys
SET last_used_at = now()
WHERE id = @id
  AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute');

-- NULL restores the server's default budget.
-- name: SetAPIKeyRateLimit :one
UPDATE api_keys
SET rate_limit_per_minute = sqlc.narg('rate_limit_per_minute')
WHERE id = @id
RETURNING id, user_id, name, prefix, created_at, last_used_at, revoked_at, rate_limit_per_minute;

-- Pages through the hashes of keys not revoked, in key_hash order (the
-- unique index), for the in-process set of existing keys that lets the
-- per-address failure limit refuse unknown keys without refusing good ones.
-- name: ListAPIKeyHashesAfter :many
SELECT key_hash
FROM api_keys
WHERE key_hash > @after
  AND revoked_at IS NULL
ORDER BY key_hash
LIMIT @page_size;
