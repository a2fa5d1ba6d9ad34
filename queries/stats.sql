-- One row even for a campaign without emails (every campaign has its
-- counter row, created with it); no row when the campaign is not the
-- user's, so callers get not-found rather than zeros. The counters are kept
-- by triggers on emails (schema/00005), so this reads one row however many
-- emails the campaign has.
-- name: GetCampaignSummary :one
-- cache: ttl=10m
SELECT n.total, n.opened, n.replied, n.sent, n.bounced, n.failed
FROM campaigns c
JOIN campaign_email_counts n ON n.campaign_id = c.id
WHERE c.id = @campaign_id AND c.user_id = @user_id;

-- Days are UTC days. Each email counts on the day it was created, the day
-- it was sent (sent_at), opened and replied (their own times), as the seed's
-- example counts sends by sent_at. An email is created before it is sent,
-- opened or replied, so only the emails created before the window's end
-- are read: the time range prunes the scan to the partitions up to it, and
-- the campaign's index range up to it. Days without any count are absent;
-- callers fill them in. Cached: an event batch invalidates only the
-- campaigns it touched.
-- name: GetCampaignDailyCounts :many
-- cache: ttl=10m
SELECT date_trunc('day', x.at AT TIME ZONE 'UTC')::date AS day,
       count(*) FILTER (WHERE x.what = 'created')      AS count,
       count(*) FILTER (WHERE x.what = 'sent')         AS sent,
       count(*) FILTER (WHERE x.what = 'opened')       AS opened,
       count(*) FILTER (WHERE x.what = 'replied')      AS replied
FROM emails e
CROSS JOIN LATERAL (VALUES ('created', e.created_at), ('sent', e.sent_at),
                           ('opened', e.opened_at), ('replied', e.replied_at)) AS x(what, at)
WHERE e.campaign_id = @campaign_id
  AND x.at >= @since::timestamptz
  AND x.at < @until::timestamptz
  AND e.created_at < @until::timestamptz
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
