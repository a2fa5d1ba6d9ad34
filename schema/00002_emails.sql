-- +goose Up
-- Email ids are UUIDv7: their first 48 bits are the Unix time in
-- milliseconds. created_at is that same instant, so an id alone names the
-- month partition of its row, and a lookup by id reads a single partition.
-- The body uses only immutable functions so that PostgreSQL inlines it: the
-- CHECK below runs it for every row a COPY writes, and a non-inlined SQL
-- function call costs more than the rest of the row's insert. to_timestamp
-- rounds to the microsecond, so the double holds milliseconds exactly.
-- +goose StatementBegin
CREATE FUNCTION uuid7_time(id uuid) RETURNS timestamptz
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$
    SELECT to_timestamp(
        (('x' || substr(id::text, 1, 8) || substr(id::text, 10, 4))::bit(48)::bigint)::float8 / 1000)
$$;
-- +goose StatementEnd

CREATE TABLE emails (
    id          uuid        NOT NULL,
    campaign_id uuid        NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    recipient   text        NOT NULL CHECK (length(recipient) BETWEEN 3 AND 320),
    subject     text        NOT NULL CHECK (length(subject) <= 998),
    body        text        NOT NULL,
    status      text        NOT NULL DEFAULT 'queued',
    sent_at     timestamptz,
    is_opened   boolean     NOT NULL DEFAULT false,
    opened_at   timestamptz,
    is_replied  boolean     NOT NULL DEFAULT false,
    replied_at  timestamptz,
    created_at  timestamptz NOT NULL,
    -- PostgreSQL requires the partition key in every unique constraint.
    PRIMARY KEY (id, created_at),
    CONSTRAINT emails_status_check CHECK (status IN ('queued', 'sent', 'bounced', 'failed')),
    CONSTRAINT emails_created_at_id_check CHECK (created_at = uuid7_time(id))
) PARTITION BY RANGE (created_at);

-- Rows whose month has no partition yet land here instead of failing the
-- insert; `replyrocket partitions list` reports them and `ensure` moves them
-- into the monthly partition it creates for them.
-- Created through EXECUTE so that sqlc, which reads these files, sees only
-- the parent table (sqlc would emit a model per partition).
DO $$ BEGIN EXECUTE 'CREATE TABLE emails_default PARTITION OF emails DEFAULT'; END $$;

-- The table is empty here, so a plain (non-concurrent) index on the parent
-- is instant and cascades to every partition, present and future.
-- ListCampaignEmails walks (created_at, id) within one campaign (keyset);
-- GetCampaignDailyCounts and GetCampaignSummary filter by campaign and time;
-- the leading campaign_id serves the foreign key's ON DELETE CASCADE.
CREATE INDEX emails_campaign_created_idx ON emails (campaign_id, created_at, id);

-- Creates the monthly partitions [p_from's month, + p_months) that do not
-- exist yet and returns the names it created. Safe to run from many
-- processes at once: a transaction-scoped advisory lock serialises them, and
-- existing partitions are skipped. Rows already sitting in the DEFAULT
-- partition for a new month are moved into it in the same transaction, since
-- PostgreSQL refuses to create a partition that DEFAULT holds rows for.
-- +goose StatementBegin
CREATE FUNCTION ensure_email_partitions(p_from timestamptz, p_months integer)
RETURNS SETOF text
LANGUAGE plpgsql
AS $$
DECLARE
    month_start timestamptz;
    month_end   timestamptz;
    part        text;
    moved       bigint;
BEGIN
    IF p_months < 1 OR p_months > 1200 THEN
        RAISE EXCEPTION 'ensure_email_partitions: months must be between 1 and 1200, got %', p_months
            USING ERRCODE = 'check_violation';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('replyrocket.emails.partitions', 0));
    month_start := date_trunc('month', p_from AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    FOR i IN 0 .. p_months - 1 LOOP
        month_end := ((month_start AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
        part := format('emails_p%s', to_char(month_start AT TIME ZONE 'UTC', 'YYYYMM'));
        IF to_regclass(format('%I.%I', current_schema(), part)) IS NULL THEN
            IF EXISTS (SELECT 1 FROM emails_default
                       WHERE created_at >= month_start AND created_at < month_end) THEN
                EXECUTE format('CREATE TABLE %I (LIKE emails INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
                EXECUTE format(
                    'WITH moved AS (DELETE FROM emails_default WHERE created_at >= $1 AND created_at < $2 RETURNING *)
                     INSERT INTO %I SELECT * FROM moved', part)
                    USING month_start, month_end;
                GET DIAGNOSTICS moved = ROW_COUNT;
                RAISE NOTICE 'moved % rows from emails_default into %', moved, part;
                EXECUTE format('ALTER TABLE emails ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                               part, month_start, month_end);
            ELSE
                EXECUTE format('CREATE TABLE %I PARTITION OF emails FOR VALUES FROM (%L) TO (%L)',
                               part, month_start, month_end);
            END IF;
            RETURN NEXT part;
        END IF;
        month_start := month_end;
    END LOOP;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION ensure_email_partitions(timestamptz, integer);
DROP TABLE emails;
DROP FUNCTION uuid7_time(uuid);
