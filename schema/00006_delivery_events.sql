-- The send lifecycle and tracking events at ingest scale (docs/writes.md).
--
-- 1. emails.status becomes the delivery_status enum (as 00004 did for
--    campaign_status): sqlc turns it into db.DeliveryStatus, the one list of
--    statuses. A bounce carries its time and the provider's reason.
-- 2. campaign_email_counts gains sent (emails with a sent_at), bounced and
--    failed (emails in that status), kept by the same statement triggers as
--    total, opened and replied, within the same total.
-- 3. email_events remembers each event id a user sent, so that a provider's
--    or pixel server's retry of the same event is a no-op. Its key leads
--    with user_id (distributable by it under Citus); it has no foreign keys:
--    a key-share lock on the users row per inserted event would make every
--    batch of one user contend on that row, and the rows only need to live
--    as long as a retry may come (EVENT_DEDUP_TTL, purged hourly with the
--    idempotency keys).

-- +goose Up
CREATE TYPE delivery_status AS ENUM ('queued', 'sent', 'bounced', 'failed');

-- One statement at a time: the text default cannot be cast along with the
-- column, so it is dropped first and set again on the enum.
ALTER TABLE emails DROP CONSTRAINT emails_status_check;
ALTER TABLE emails ALTER COLUMN status DROP DEFAULT;
ALTER TABLE emails ALTER COLUMN status TYPE delivery_status USING status::delivery_status;
ALTER TABLE emails ALTER COLUMN status SET DEFAULT 'queued';
ALTER TABLE emails ADD COLUMN bounced_at timestamptz;
ALTER TABLE emails ADD COLUMN bounce_reason text
    CONSTRAINT emails_bounce_reason_check CHECK (length(bounce_reason) <= 1000);

ALTER TABLE campaign_email_counts ADD COLUMN sent bigint NOT NULL DEFAULT 0 CHECK (sent >= 0);
ALTER TABLE campaign_email_counts ADD COLUMN bounced bigint NOT NULL DEFAULT 0 CHECK (bounced >= 0);
ALTER TABLE campaign_email_counts ADD COLUMN failed bigint NOT NULL DEFAULT 0 CHECK (failed >= 0);
-- A counter past its total is drift: refuse it rather than store it.
ALTER TABLE campaign_email_counts ADD CONSTRAINT campaign_email_counts_delivery_within_total
    CHECK (sent <= total AND bounced <= total AND failed <= total);

-- The function of 00005 with the three new counters: the same branches,
-- the same lock order (counter rows in campaign_id order).
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION campaign_email_counts_apply() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        WITH d AS (
            SELECT campaign_id,
                   count(*)                                        AS total,
                   count(*) FILTER (WHERE is_opened)               AS opened,
                   count(*) FILTER (WHERE is_replied)              AS replied,
                   count(*) FILTER (WHERE sent_at IS NOT NULL)     AS sent,
                   count(*) FILTER (WHERE status = 'bounced')      AS bounced,
                   count(*) FILTER (WHERE status = 'failed')       AS failed
            FROM new_emails
            GROUP BY campaign_id
        ), locked AS (
            SELECT k.campaign_id FROM campaign_email_counts k
            WHERE k.campaign_id IN (SELECT campaign_id FROM d)
            ORDER BY k.campaign_id
            FOR UPDATE
        )
        UPDATE campaign_email_counts c
        SET total   = c.total + d.total,
            opened  = c.opened + d.opened,
            replied = c.replied + d.replied,
            sent    = c.sent + d.sent,
            bounced = c.bounced + d.bounced,
            failed  = c.failed + d.failed
        FROM d
        WHERE c.campaign_id = d.campaign_id
          AND c.campaign_id IN (SELECT campaign_id FROM locked);
    ELSIF TG_OP = 'DELETE' THEN
        WITH d AS (
            SELECT campaign_id,
                   count(*)                                        AS total,
                   count(*) FILTER (WHERE is_opened)               AS opened,
                   count(*) FILTER (WHERE is_replied)              AS replied,
                   count(*) FILTER (WHERE sent_at IS NOT NULL)     AS sent,
                   count(*) FILTER (WHERE status = 'bounced')      AS bounced,
                   count(*) FILTER (WHERE status = 'failed')       AS failed
            FROM old_emails
            GROUP BY campaign_id
        ), locked AS (
            SELECT k.campaign_id FROM campaign_email_counts k
            WHERE k.campaign_id IN (SELECT campaign_id FROM d)
            ORDER BY k.campaign_id
            FOR UPDATE
        )
        UPDATE campaign_email_counts c
        SET total   = c.total - d.total,
            opened  = c.opened - d.opened,
            replied = c.replied - d.replied,
            sent    = c.sent - d.sent,
            bounced = c.bounced - d.bounced,
            failed  = c.failed - d.failed
        FROM d
        WHERE c.campaign_id = d.campaign_id
          AND c.campaign_id IN (SELECT campaign_id FROM locked);
    ELSE
        WITH d AS (
            SELECT campaign_id,
                   sum(total)   AS total,
                   sum(opened)  AS opened,
                   sum(replied) AS replied,
                   sum(sent)    AS sent,
                   sum(bounced) AS bounced,
                   sum(failed)  AS failed
            FROM (
                SELECT campaign_id, 1 AS total, is_opened::int AS opened, is_replied::int AS replied,
                       (sent_at IS NOT NULL)::int AS sent, (status = 'bounced')::int AS bounced,
                       (status = 'failed')::int AS failed
                FROM new_emails
                UNION ALL
                SELECT campaign_id, -1, -is_opened::int, -is_replied::int,
                       -(sent_at IS NOT NULL)::int, -(status = 'bounced')::int, -(status = 'failed')::int
                FROM old_emails
            ) r
            GROUP BY campaign_id
            HAVING sum(total) <> 0 OR sum(opened) <> 0 OR sum(replied) <> 0
                OR sum(sent) <> 0 OR sum(bounced) <> 0 OR sum(failed) <> 0
        ), locked AS (
            SELECT k.campaign_id FROM campaign_email_counts k
            WHERE k.campaign_id IN (SELECT campaign_id FROM d)
            ORDER BY k.campaign_id
            FOR UPDATE
        )
        UPDATE campaign_email_counts c
        SET total   = c.total + d.total,
            opened  = c.opened + d.opened,
            replied = c.replied + d.replied,
            sent    = c.sent + d.sent,
            bounced = c.bounced + d.bounced,
            failed  = c.failed + d.failed
        FROM d
        WHERE c.campaign_id = d.campaign_id
          AND c.campaign_id IN (SELECT campaign_id FROM locked);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- The new counters of the campaigns that exist now, from a full count.
UPDATE campaign_email_counts k
SET sent = f.sent, bounced = f.bounced, failed = f.failed
FROM (
    SELECT campaign_id,
           count(*) FILTER (WHERE sent_at IS NOT NULL) AS sent,
           count(*) FILTER (WHERE status = 'bounced')  AS bounced,
           count(*) FILTER (WHERE status = 'failed')   AS failed
    FROM emails
    GROUP BY campaign_id
) f
WHERE k.campaign_id = f.campaign_id;

CREATE TYPE email_event_kind AS ENUM ('sent', 'opened', 'replied', 'bounced', 'failed');

CREATE TABLE email_events (
    user_id     uuid             NOT NULL,
    event_id    uuid             NOT NULL,
    email_id    uuid             NOT NULL,
    kind        email_event_kind NOT NULL,
    at          timestamptz      NOT NULL,
    received_at timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, event_id)
);
-- PurgeEmailEvents deletes by age.
CREATE INDEX email_events_received_idx ON email_events (received_at);

-- +goose Down
DROP TABLE email_events;
DROP TYPE email_event_kind;

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION campaign_email_counts_apply() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        WITH d AS (
            SELECT campaign_id, count(*) AS total,
                   count(*) FILTER (WHERE is_opened) AS opened, count(*) FILTER (WHERE is_replied) AS replied
            FROM new_emails GROUP BY campaign_id
        ), locked AS (
            SELECT k.campaign_id FROM campaign_email_counts k
            WHERE k.campaign_id IN (SELECT campaign_id FROM d) ORDER BY k.campaign_id FOR UPDATE
        )
        UPDATE campaign_email_counts c
        SET total = c.total + d.total, opened = c.opened + d.opened, replied = c.replied + d.replied
        FROM d WHERE c.campaign_id = d.campaign_id AND c.campaign_id IN (SELECT campaign_id FROM locked);
    ELSIF TG_OP = 'DELETE' THEN
        WITH d AS (
            SELECT campaign_id, count(*) AS total,
                   count(*) FILTER (WHERE is_opened) AS opened, count(*) FILTER (WHERE is_replied) AS replied
            FROM old_emails GROUP BY campaign_id
        ), locked AS (
            SELECT k.campaign_id FROM campaign_email_counts k
            WHERE k.campaign_id IN (SELECT campaign_id FROM d) ORDER BY k.campaign_id FOR UPDATE
        )
        UPDATE campaign_email_counts c
        SET total = c.total - d.total, opened = c.opened - d.opened, replied = c.replied - d.replied
        FROM d WHERE c.campaign_id = d.campaign_id AND c.campaign_id IN (SELECT campaign_id FROM locked);
    ELSE
        WITH d AS (
            SELECT campaign_id, sum(total) AS total, sum(opened) AS opened, sum(replied) AS replied
            FROM (
                SELECT campaign_id, 1 AS total, is_opened::int AS opened, is_replied::int AS replied FROM new_emails
                UNION ALL
                SELECT campaign_id, -1, -is_opened::int, -is_replied::int FROM old_emails
            ) r
            GROUP BY campaign_id
            HAVING sum(total) <> 0 OR sum(opened) <> 0 OR sum(replied) <> 0
        ), locked AS (
            SELECT k.campaign_id FROM campaign_email_counts k
            WHERE k.campaign_id IN (SELECT campaign_id FROM d) ORDER BY k.campaign_id FOR UPDATE
        )
        UPDATE campaign_email_counts c
        SET total = c.total + d.total, opened = c.opened + d.opened, replied = c.replied + d.replied
        FROM d WHERE c.campaign_id = d.campaign_id AND c.campaign_id IN (SELECT campaign_id FROM locked);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

ALTER TABLE campaign_email_counts DROP CONSTRAINT campaign_email_counts_delivery_within_total;
ALTER TABLE campaign_email_counts DROP COLUMN failed;
ALTER TABLE campaign_email_counts DROP COLUMN bounced;
ALTER TABLE campaign_email_counts DROP COLUMN sent;

ALTER TABLE emails DROP COLUMN bounce_reason;
ALTER TABLE emails DROP COLUMN bounced_at;
ALTER TABLE emails ALTER COLUMN status DROP DEFAULT;
ALTER TABLE emails ALTER COLUMN status TYPE text USING status::text;
ALTER TABLE emails ALTER COLUMN status SET DEFAULT 'queued';
ALTER TABLE emails ADD CONSTRAINT emails_status_check
    CHECK (status IN ('queued', 'sent', 'bounced', 'failed'));
DROP TYPE delivery_status;
