-- name: CreateCampaign :one
INSERT INTO campaigns (user_id, name, status)
VALUES (@user_id, @name, @status)
RETURNING id, user_id, name, status, created_at, updated_at;

-- name: GetCampaign :one
-- cache: ttl=1m
SELECT id, user_id, name, status, created_at, updated_at
FROM campaigns
WHERE id = @id AND user_id = @user_id;

-- A NULL argument keeps the current value.
-- name: UpdateCampaign :one
UPDATE campaigns
SET name       = coalesce(sqlc.narg('name'), name),
    status     = coalesce(sqlc.narg('status'), status),
    updated_at = now()
WHERE id = @id AND user_id = @user_id
RETURNING id, user_id, name, status, created_at, updated_at;

-- Its emails go with it (ON DELETE CASCADE).
-- name: DeleteCampaign :execrows
DELETE FROM campaigns
WHERE id = @id AND user_id = @user_id;

-- Keyset pagination, newest first: the caller passes the (created_at, id) of
-- the last row it saw, or (far future, max uuid) for the first page. The row
-- comparison matches campaigns_user_created_idx, so each page is one index
-- range scan however deep the walk goes.
-- name: ListCampaigns :many
SELECT id, user_id, name, status, created_at, updated_at
FROM campaigns
WHERE user_id = @user_id
  AND (created_at, id) < (@before_created_at::timestamptz, @before_id::uuid)
ORDER BY created_at DESC, id DESC
LIMIT @page_size;
