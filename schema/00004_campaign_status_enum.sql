-- Campaign statuses as a PostgreSQL enum: the one list of them. sqlc turns
-- it into db.CampaignStatus (with Valid() and AllCampaignStatusValues()), and
-- the handlers, the OpenAPI document and the seeder derive from that type,
-- so adding a status is this migration's ALTER TYPE … ADD VALUE plus
-- `task generate`.

-- +goose Up
CREATE TYPE campaign_status AS ENUM ('draft', 'active', 'paused', 'completed');

-- One statement at a time: the text default cannot be cast along with the
-- column, so it is dropped first and set again on the enum.
ALTER TABLE campaigns DROP CONSTRAINT campaigns_status_check;
ALTER TABLE campaigns ALTER COLUMN status DROP DEFAULT;
ALTER TABLE campaigns ALTER COLUMN status TYPE campaign_status USING status::campaign_status;
ALTER TABLE campaigns ALTER COLUMN status SET DEFAULT 'draft';

-- +goose Down
ALTER TABLE campaigns ALTER COLUMN status DROP DEFAULT;
ALTER TABLE campaigns ALTER COLUMN status TYPE text USING status::text;
ALTER TABLE campaigns ALTER COLUMN status SET DEFAULT 'draft';
ALTER TABLE campaigns ADD CONSTRAINT campaigns_status_check
    CHECK (status IN ('draft', 'active', 'paused', 'completed'));

DROP TYPE campaign_status;
