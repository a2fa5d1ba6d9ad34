-- Claims an Idempotency-Key for a request: 1 row when this request is the
-- first, 0 when the key exists. A concurrent claim of the same key waits
-- here until the first transaction ends.
-- name: ClaimIdempotencyKey :execrows
INSERT INTO idempotency_keys (owner, key, method, path, request_hash)
VALUES (@owner, @key, @method, @path, @request_hash)
ON CONFLICT (owner, key) DO NOTHING;

-- name: GetIdempotencyKey :one
SELECT owner, key, method, path, request_hash, status, content_type, location, response, created_at
FROM idempotency_keys
WHERE owner = @owner AND key = @key;

-- name: SaveIdempotentResponse :exec
UPDATE idempotency_keys
SET status = @status, content_type = @content_type, location = @location, response = @response
WHERE owner = @owner AND key = @key;

-- name: PurgeIdempotencyKeys :execrows
DELETE FROM idempotency_keys
WHERE created_at < @before;
