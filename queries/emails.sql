-- name: InsertEmails :copyfrom
INSERT INTO emails (id, campaign_id, recipient, subject, body, status, created_at)
VALUES (@id, @campaign_id, @recipient, @subject, @body, @status, @created_at);

-- The created_at = uuid7_time(id) predicate prunes the scan to the one
-- partition of the id's month; the join scopes the row to its owner.
-- name: GetEmail :one
-- cache: ttl=1m
SELECT e.id, e.campaign_id, e.recipient, e.subject, e.body, e.status, e.sent_at,
       e.is_opened, e.opened_at, e.is_replied, e.replied_at, e.created_at,
       e.bounced_at, e.bounce_reason
FROM emails e
JOIN campaigns c ON c.id = e.campaign_id
WHERE e.id = @id
  AND e.created_at = uuid7_time(@id)
  AND c.user_id = @user_id;

-- Keyset pagination, oldest first, by (created_at, id) after the last row
-- seen; rows inserted during a walk never shift the pages already served.
-- The body is left out: a list shows envelopes, GetEmail the message.
-- name: ListCampaignEmails :many
SELECT id, campaign_id, recipient, subject, status, sent_at,
       is_opened, opened_at, is_replied, replied_at, created_at,
       bounced_at, bounce_reason
FROM emails
WHERE campaign_id = @campaign_id
  AND (created_at, id) > (@after_created_at::timestamptz, @after_id::uuid)
ORDER BY created_at, id
LIMIT @page_size;

-- First open wins: a repeated event matches no row and changes nothing.
-- name: MarkEmailOpened :one
UPDATE emails e
SET is_opened = true, opened_at = now()
FROM campaigns c
WHERE e.id = @id
  AND e.created_at = uuid7_time(@id)
  AND c.id = e.campaign_id
  AND c.user_id = @user_id
  AND NOT e.is_opened
RETURNING e.id, e.campaign_id, e.recipient, e.subject, e.body, e.status, e.sent_at,
          e.is_opened, e.opened_at, e.is_replied, e.replied_at, e.created_at,
          e.bounced_at, e.bounce_reason;

-- First reply wins, as for opens.
-- name: MarkEmailReplied :one
UPDATE emails e
SET is_replied = true, replied_at = now()
FROM campaigns c
WHERE e.id = @id
  AND e.created_at = uuid7_time(@id)
  AND c.id = e.campaign_id
  AND c.user_id = @user_id
  AND NOT e.is_replied
RETURNING e.id, e.campaign_id, e.recipient, e.subject, e.body, e.status, e.sent_at,
          e.is_opened, e.opened_at, e.is_replied, e.replied_at, e.created_at,
          e.bounced_at, e.bounce_reason;
