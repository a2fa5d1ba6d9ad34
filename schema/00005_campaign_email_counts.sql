-- Per-campaign email counters, so that a campaign's summary, its user's
-- statistics and a page of campaigns read one row per campaign instead of
-- every email of it (309 ms at p50 for a 1 000 000-email campaign before).
--
-- The counters change in the same statement as the emails: AFTER STATEMENT
-- triggers on emails read the statement's transition tables (COPY fires
-- them too) and apply per-campaign deltas, new rows minus old rows. So an
-- insert, a COPY, an open, a reply, a delete and the cascade of a campaign
-- delete all keep them exact, and a rolled-back statement rolls its deltas
-- back with it. What fires no trigger — detaching or dropping a partition,
-- TRUNCATE — must subtract the rows itself: `partitions retain` does, in
-- the transaction of the detach; a TRUNCATE of emails is refused below.
--
-- internal/dbgen reads these triggers and their functions: a write to
-- emails also invalidates the cached reads of the counters of the
-- campaigns (and users) it touched.

-- +goose Up
CREATE TABLE campaign_email_counts (
    campaign_id uuid   PRIMARY KEY REFERENCES campaigns (id) ON DELETE CASCADE,
    total       bigint NOT NULL DEFAULT 0 CHECK (total >= 0),
    opened      bigint NOT NULL DEFAULT 0 CHECK (opened >= 0),
    replied     bigint NOT NULL DEFAULT 0 CHECK (replied >= 0),
    -- A counter past its total is drift: refuse it rather than store it.
    CONSTRAINT campaign_email_counts_within_total CHECK (opened <= total AND replied <= total)
);

-- Every campaign has its counter row from the statement that creates it.
-- +goose StatementBegin
CREATE FUNCTION campaign_email_counts_create() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO campaign_email_counts (campaign_id)
    SELECT id FROM new_campaigns;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER campaigns_email_counts_create
    AFTER INSERT ON campaigns
    REFERENCING NEW TABLE AS new_campaigns
    FOR EACH STATEMENT EXECUTE FUNCTION campaign_email_counts_create();

-- The deltas of one statement on emails, applied per campaign. Each branch
-- aggregates the transition tables its event has (PostgreSQL gives an
-- INSERT trigger no old rows and a DELETE trigger no new ones), groups by
-- campaign, and skips campaigns whose counts did not change (an UPDATE of
-- a subject). The counter rows are locked in campaign_id order before they
-- are updated, so two statements touching the same campaigns in any order
-- wait for each other instead of deadlocking. A campaign's counter row
-- that is gone (its campaign deleted, the cascade reaching the counters
-- first) matches nothing: its emails are being deleted with it.
-- +goose StatementBegin
CREATE FUNCTION campaign_email_counts_apply() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        WITH d AS (
            SELECT campaign_id,
                   count(*)                             AS total,
                   count(*) FILTER (WHERE is_opened)    AS opened,
                   count(*) FILTER (WHERE is_replied)   AS replied
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
            replied = c.replied + d.replied
        FROM d
        WHERE c.campaign_id = d.campaign_id
          AND c.campaign_id IN (SELECT campaign_id FROM locked);
    ELSIF TG_OP = 'DELETE' THEN
        WITH d AS (
            SELECT campaign_id,
                   count(*)                             AS total,
                   count(*) FILTER (WHERE is_opened)    AS opened,
                   count(*) FILTER (WHERE is_replied)   AS replied
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
            replied = c.replied - d.replied
        FROM d
        WHERE c.campaign_id = d.campaign_id
          AND c.campaign_id IN (SELECT campaign_id FROM locked);
    ELSE
        WITH d AS (
            SELECT campaign_id,
                   sum(total)   AS total,
                   sum(opened)  AS opened,
                   sum(replied) AS replied
            FROM (
                SELECT campaign_id, 1 AS total, is_opened::int AS opened, is_replied::int AS replied
                FROM new_emails
                UNION ALL
                SELECT campaign_id, -1, -is_opened::int, -is_replied::int
                FROM old_emails
            ) r
            GROUP BY campaign_id
            HAVING sum(total) <> 0 OR sum(opened) <> 0 OR sum(replied) <> 0
        ), locked AS (
            SELECT k.campaign_id FROM campaign_email_counts k
            WHERE k.campaign_id IN (SELECT campaign_id FROM d)
            ORDER BY k.campaign_id
            FOR UPDATE
        )
        UPDATE campaign_email_counts c
        SET total   = c.total + d.total,
            opened  = c.opened + d.opened,
            replied = c.replied + d.replied
        FROM d
        WHERE c.campaign_id = d.campaign_id
          AND c.campaign_id IN (SELECT campaign_id FROM locked);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

-- One trigger per event: PostgreSQL allows transition tables only on a
-- trigger for a single event, and not with UPDATE OF a column list.
CREATE TRIGGER emails_counts_insert
    AFTER INSERT ON emails
    REFERENCING NEW TABLE AS new_emails
    FOR EACH STATEMENT EXECUTE FUNCTION campaign_email_counts_apply();

CREATE TRIGGER emails_counts_update
    AFTER UPDATE ON emails
    REFERENCING OLD TABLE AS old_emails NEW TABLE AS new_emails
    FOR EACH STATEMENT EXECUTE FUNCTION campaign_email_counts_apply();

CREATE TRIGGER emails_counts_delete
    AFTER DELETE ON emails
    REFERENCING OLD TABLE AS old_emails
    FOR EACH STATEMENT EXECUTE FUNCTION campaign_email_counts_apply();

-- TRUNCATE removes rows without DELETE triggers: the counters would keep
-- them. Nothing in the application truncates emails; refuse it so that
-- nobody does by hand either (delete the campaigns, or retire partitions).
-- +goose StatementBegin
CREATE FUNCTION emails_refuse_truncate() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'TRUNCATE of emails would leave campaign_email_counts wrong; delete the rows or retire partitions instead'
        USING ERRCODE = 'feature_not_supported';
END
$$;
-- +goose StatementEnd

CREATE TRIGGER emails_refuse_truncate
    BEFORE TRUNCATE ON emails
    FOR EACH STATEMENT EXECUTE FUNCTION emails_refuse_truncate();

-- The counters of the campaigns that exist now, from a full count.
-- campaign_email_counts_within_total holds for a full count by construction.
INSERT INTO campaign_email_counts (campaign_id, total, opened, replied)
SELECT c.id,
       count(e.id),
       count(e.id) FILTER (WHERE e.is_opened),
       count(e.id) FILTER (WHERE e.is_replied)
FROM campaigns c
LEFT JOIN emails e ON e.campaign_id = c.id
GROUP BY c.id;

-- +goose Down
DROP TRIGGER emails_refuse_truncate ON emails;
DROP FUNCTION emails_refuse_truncate();
DROP TRIGGER emails_counts_delete ON emails;
DROP TRIGGER emails_counts_update ON emails;
DROP TRIGGER emails_counts_insert ON emails;
DROP FUNCTION campaign_email_counts_apply();
DROP TRIGGER campaigns_email_counts_create ON campaigns;
DROP FUNCTION campaign_email_counts_create();
DROP TABLE campaign_email_counts;
