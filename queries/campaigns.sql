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

-- A page of ListCampaigns with each campaign's figures, in one statement:
-- each campaign's counter row (kept by triggers on emails, schema/00005)
-- is one primary-key lookup, so a page costs the same however many emails
-- its campaigns have. Its cache scope: campaigns pinned by user_id, and
-- their counters through the foreign-key path
-- campaign_email_counts.campaign_id>campaigns.user_id — an open, a bulk
-- insert or a delete of another user's leaves the page cached.
-- name: ListCampaignsWithStats :many
-- cache: ttl=1m
SELECT c.id, c.user_id, c.name, c.status, c.created_at, c.updated_at,
       n.total, n.opened, n.replied, n.sent, n.bounced, n.failed
FROM campaigns c
JOIN campaign_email_counts n ON n.campaign_id = c.id
WHERE c.user_id = @user_id
  AND (c.created_at, c.id) < (@before_created_at::timestamptz, @before_id::uuid)
ORDER BY c.created_at DESC, c.id DESC
LIMIT @page_size;

-- The owners of some campaigns. The cache decorator calls it after a COPY
-- of emails, whose rows carry their campaign but not its user, to
-- invalidate only those users' cached statistics and campaign pages
-- (the scope emails.campaign_id>campaigns.user_id). Its "cache: resolver"
-- annotation names it as that lookup for dbgen, which checks its shape:
-- the parent's key and one column, for keys = ANY(an array).
-- name: ListCampaignOwners :many
-- cache: resolver
SELECT id, user_id
FROM campaigns
WHERE id = ANY(@ids::uuid[]);
