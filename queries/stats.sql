-- One row even for a campaign without emails (every campaign has its
-- counter row, created with it); no row when the campaign is not the
-- user's, so callers get not-found rather than zeros. The counters are kept
-- by triggers on emails (schema/00005), so this reads one row however many
-- emails the campaign has.
-- name: GetCampaignSummary :one
-- cache: ttl=10m
SELECT n.total, n.opened, n.replied
FROM campaigns c
JOIN campaign_email_counts n ON n.campaign_id = c.id
WHERE c.id = @campaign_id AND c.user_id = @user_id;

-- Days are UTC days. The time range prunes the scan to the partitions of the
-- months it spans. Days without emails are absent; callers fill them in.
-- name: GetCampaignDailyCounts :many
-- cache: ttl=10m
SELECT date_trunc('day', created_at AT TIME ZONE 'UTC')::date AS day,
       count(*)                                              AS count
FROM emails
WHERE campaign_id = @campaign_id
  AND created_at >= @since::timestamptz
  AND created_at < @until::timestamptz
GROUP BY 1
ORDER BY 1;

-- One counter row per campaign of the user: the sum reads as many rows as
-- the user has campaigns, not emails.
-- name: GetUserStatistics :one
-- cache: ttl=5m
SELECT count(*)                             AS campaigns,
       coalesce(sum(n.total), 0)::bigint    AS emails,
       coalesce(sum(n.opened), 0)::bigint   AS opened,
       coalesce(sum(n.replied), 0)::bigint  AS replied
FROM campaigns c
JOIN campaign_email_counts n ON n.campaign_id = c.id
WHERE c.user_id = @user_id;

-- name: EnsureEmailPartitions :many
SELECT ensure_email_partitions(@from_month::timestamptz, @months::integer)::text AS created;
