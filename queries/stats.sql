-- One row even for a campaign without emails; no row when the campaign is not
-- the user's, so callers get not-found rather than zeros.
-- name: GetCampaignSummary :one
-- cache: ttl=10m
SELECT count(e.id)                                AS total,
       count(e.id) FILTER (WHERE e.is_opened)     AS opened,
       count(e.id) FILTER (WHERE e.is_replied)    AS replied
FROM campaigns c
LEFT JOIN emails e ON e.campaign_id = c.id
WHERE c.id = @campaign_id AND c.user_id = @user_id
GROUP BY c.id;

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

-- name: GetUserStatistics :one
-- cache: ttl=5m
SELECT (SELECT count(*) FROM campaigns WHERE campaigns.user_id = @user_id) AS campaigns,
       count(e.id)                                                     AS emails,
       count(e.id) FILTER (WHERE e.is_opened)                          AS opened,
       count(e.id) FILTER (WHERE e.is_replied)                         AS replied
FROM campaigns c
JOIN emails e ON e.campaign_id = c.id
WHERE c.user_id = @user_id;

-- name: EnsureEmailPartitions :many
SELECT ensure_email_partitions(@from_month::timestamptz, @months::integer)::text AS created;
