-- Tracking events, applied in batches by internal/ingest: each batch is one
-- statement, ApplyEmailEvents, so one round trip and one implicit
-- transaction (no BEGIN and COMMIT of their own); then, only for events it
-- did not record, FindOwnedEmails. The arrays are the batch's events, at
-- most EVENT_BATCH_MAX of them, which bounds these :many queries (sqlc.yaml
-- many-is-bounded). docs/writes.md describes the transitions.

-- Records the events whose email exists and belongs to the event's user,
-- once per (user_id, event_id) (a retried event conflicts and is skipped),
-- and applies the recorded ones to their emails.
--
-- recorded: the email is looked up by primary key per event (a LATERAL …
-- LIMIT 1: as a plain join, the planner read every email of the user's
-- campaigns to find a few), and the same lookup locks it. Events are
-- walked in email id order, so every batch locks its emails in one order,
-- and rows are inserted in key order, so two batches waiting on each
-- other's uncommitted keys also wait in one direction: overlapping
-- batches wait instead of deadlocking. The GROUP BY of v reads all of
-- recorded before the UPDATE writes a row, so every lock is taken, in
-- that order, before any update; the counters' trigger then locks campaign
-- rows in campaign_id order.
--
-- v folds the recorded events per email (an UPDATE … FROM applies one
-- source row per target row): the earliest time of each kind, and of
-- bounced/failed the earliest one. Transitions: opened and replied stamp
-- their time once (the first recorded wins) whatever the status; sent
-- moves queued to sent and stamps sent_at once, except on a failed email;
-- bounced and failed are terminal and the first recorded wins (a bounce
-- also stamps sent_at if no sent event came: a bounce reports a send).
-- Every email with a recorded event is returned as it is after the
-- update, with its owner and the ids of their events recorded now
-- (user_id, event_ids): an event whose (user_id, id) is in no row was not
-- recorded. The owner is read from the campaign joined on the foreign key
-- (it equals v.user_id: only the owner's events are recorded), so that
-- dbgen bumps each user's scopes from the returned rows instead of
-- looking the owners up in another round trip after the write.
-- name: ApplyEmailEvents :many
WITH ev AS (
    -- unnest in the select list zips the arrays (sqlc does not know the
    -- many-argument unnest of FROM).
    SELECT unnest(@user_ids::uuid[])     AS user_id,
           unnest(@event_ids::uuid[])    AS event_id,
           unnest(@email_ids::uuid[])    AS email_id,
           unnest(@kinds::text[])        AS kind,
           unnest(@ats::timestamptz[])   AS at,
           unnest(@reasons::text[])      AS reason
), recorded AS (
    INSERT INTO email_events (user_id, event_id, email_id, kind, at)
    SELECT o.user_id, o.event_id, o.email_id, o.kind::email_event_kind, o.at
    FROM (SELECT user_id, event_id, email_id, kind, at FROM ev ORDER BY email_id) o
    CROSS JOIN LATERAL (
        SELECT 1 FROM emails e
        JOIN campaigns c ON c.id = e.campaign_id
        WHERE e.id = o.email_id
          AND e.created_at = uuid7_time(o.email_id)
          AND c.user_id = o.user_id
        LIMIT 1
        FOR NO KEY UPDATE OF e
    ) owned
    ORDER BY o.user_id, o.event_id
    ON CONFLICT (user_id, event_id) DO NOTHING
    RETURNING user_id, event_id, email_id, kind, at
), v AS (
    -- An email's recorded events are all its owner's: grouped by both,
    -- one row per email, which names the user its event ids are of.
    SELECT r.email_id, r.user_id,
           array_agg(r.event_id)::uuid[]                                                  AS event_ids,
           min(r.at) FILTER (WHERE r.kind = 'sent')                                       AS sent_at,
           min(r.at) FILTER (WHERE r.kind = 'opened')                                     AS opened_at,
           min(r.at) FILTER (WHERE r.kind = 'replied')                                    AS replied_at,
           (array_agg(r.kind::text ORDER BY r.at, r.kind) FILTER (WHERE r.kind IN ('bounced', 'failed')))[1] AS terminal,
           min(r.at) FILTER (WHERE r.kind IN ('bounced', 'failed'))                       AS terminal_at,
           (array_agg(ev.reason ORDER BY r.at, r.kind) FILTER (WHERE r.kind IN ('bounced', 'failed')))[1]    AS reason
    FROM recorded r
    -- The reason is not stored with the event: it comes from the input.
    JOIN ev ON ev.user_id = r.user_id AND ev.event_id = r.event_id
    GROUP BY r.email_id, r.user_id
)
UPDATE emails e
SET status = CASE
        WHEN e.status IN ('bounced', 'failed') THEN e.status
        WHEN v.terminal IS NOT NULL THEN v.terminal::delivery_status
        WHEN v.sent_at IS NOT NULL THEN 'sent'::delivery_status
        ELSE e.status
    END,
    sent_at = CASE
        WHEN e.status = 'failed' THEN e.sent_at
        ELSE coalesce(e.sent_at, v.sent_at,
                      CASE WHEN v.terminal = 'bounced' AND e.status <> 'bounced' THEN v.terminal_at END)
    END,
    bounced_at = CASE
        WHEN e.status IN ('bounced', 'failed') OR v.terminal IS DISTINCT FROM 'bounced' THEN e.bounced_at
        ELSE v.terminal_at
    END,
    bounce_reason = CASE
        WHEN e.status IN ('bounced', 'failed') OR v.terminal IS DISTINCT FROM 'bounced' THEN e.bounce_reason
        ELSE nullif(v.reason, '')
    END,
    is_opened = e.is_opened OR v.opened_at IS NOT NULL,
    opened_at = coalesce(e.opened_at, v.opened_at),
    is_replied = e.is_replied OR v.replied_at IS NOT NULL,
    replied_at = coalesce(e.replied_at, v.replied_at)
FROM v, campaigns c
WHERE e.id = v.email_id
  AND e.created_at = uuid7_time(v.email_id)
  AND c.id = e.campaign_id
RETURNING e.id, e.campaign_id, e.recipient, e.subject, e.body, e.status, e.sent_at,
          e.is_opened, e.opened_at, e.is_replied, e.replied_at, e.created_at,
          e.bounced_at, e.bounce_reason, c.user_id, v.event_ids::uuid[] AS event_ids;

-- The caller's emails among the events ApplyEmailEvents did not record:
-- such an event is a duplicate when its email is its user's (and the
-- email, as it is, answers a repeated single event without another read),
-- not found otherwise. Looked up by primary key per pair, as in
-- ApplyEmailEvents.
-- name: FindOwnedEmails :many
SELECT v.user_id::uuid AS user_id, o.id, o.campaign_id, o.recipient, o.subject, o.body,
       o.status, o.sent_at, o.is_opened, o.opened_at, o.is_replied, o.replied_at,
       o.created_at, o.bounced_at, o.bounce_reason
FROM (
    SELECT unnest(@user_ids::uuid[]) AS user_id, unnest(@email_ids::uuid[]) AS email_id
) v
CROSS JOIN LATERAL (
    SELECT e.id, e.campaign_id, e.recipient, e.subject, e.body, e.status, e.sent_at,
           e.is_opened, e.opened_at, e.is_replied, e.replied_at, e.created_at,
           e.bounced_at, e.bounce_reason
    FROM emails e
    JOIN campaigns c ON c.id = e.campaign_id
    WHERE e.id = v.email_id
      AND e.created_at = uuid7_time(v.email_id)
      AND c.user_id = v.user_id
    LIMIT 1
) o;

-- Event ids are remembered for EVENT_DEDUP_TTL: a retry after that is a
-- new event (opened and replied stay stamped once; a status event finds
-- its email already moved).
-- name: PurgeEmailEvents :execrows
DELETE FROM email_events
WHERE received_at < @before;
