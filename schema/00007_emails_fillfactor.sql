-- Room on every page of emails for the updates tracking events make.
--
-- An email row is written once and then updated a few times in its life
-- (sent, opened, replied, bounced). Packed at the default fillfactor of
-- 100, a page has no room for the new version, so every such update was
-- a non-HOT one: the version goes to another page and both indexes get a
-- new entry. Measured on the loadtest's 100 000 emails, 80 events a
-- batch: 480 of 480 updates HOT at 80 against 0 of 480 at 100, and the
-- batch's WAL 38 kB against 79 kB (docs/writes.md). None of the columns
-- an event sets is indexed, so with room on the page the update stays on
-- it, and page pruning reclaims the old version without a VACUUM. The
-- price is a fifth more pages for a freshly loaded partition.
--
-- PostgreSQL keeps storage parameters on leaf partitions only, so the
-- existing partitions are altered (their new pages get the room; a VACUUM
-- FULL or pg_repack gives it to the old ones) and ensure_email_partitions
-- creates new ones with it. Through EXECUTE, as in 00002, so that sqlc
-- sees only the parent table.

-- +goose Up
-- +goose StatementBegin
DO $$
DECLARE
    part regclass;
BEGIN
    FOR part IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'emails'::regclass LOOP
        EXECUTE format('ALTER TABLE %s SET (fillfactor = 80)', part);
    END LOOP;
END
$$;
-- +goose StatementEnd

-- The function of 00002, its two CREATE TABLEs WITH (fillfactor = 80).
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION ensure_email_partitions(p_from timestamptz, p_months integer)
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
                EXECUTE format('CREATE TABLE %I (LIKE emails INCLUDING DEFAULTS INCLUDING CONSTRAINTS) WITH (fillfactor = 80)', part);
                EXECUTE format(
                    'WITH moved AS (DELETE FROM emails_default WHERE created_at >= $1 AND created_at < $2 RETURNING *)
                     INSERT INTO %I SELECT * FROM moved', part)
                    USING month_start, month_end;
                GET DIAGNOSTICS moved = ROW_COUNT;
                RAISE NOTICE 'moved % rows from emails_default into %', moved, part;
                EXECUTE format('ALTER TABLE emails ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                               part, month_start, month_end);
            ELSE
                EXECUTE format('CREATE TABLE %I PARTITION OF emails FOR VALUES FROM (%L) TO (%L) WITH (fillfactor = 80)',
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
-- +goose StatementBegin
DO $$
DECLARE
    part regclass;
BEGIN
    FOR part IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'emails'::regclass LOOP
        EXECUTE format('ALTER TABLE %s RESET (fillfactor)', part);
    END LOOP;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION ensure_email_partitions(p_from timestamptz, p_months integer)
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
