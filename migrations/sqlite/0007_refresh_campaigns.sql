-- See migrations/postgres/0007_refresh_campaigns.sql.
CREATE TABLE refresh_campaigns (
    id TEXT PRIMARY KEY,
    provider TEXT,
    providers TEXT NOT NULL,
    expiring_within_secs INTEGER NOT NULL,
    expiring_before INTEGER NOT NULL,
    rate_per_second REAL,
    status TEXT NOT NULL,
    plan_provider INTEGER NOT NULL DEFAULT 0,
    plan_cursor INTEGER NOT NULL DEFAULT 0,
    planned INTEGER NOT NULL DEFAULT 0,
    pages INTEGER NOT NULL DEFAULT 0,
    published_pages INTEGER NOT NULL DEFAULT 0,
    total INTEGER NOT NULL DEFAULT 0,
    refreshed INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    needs_reauth INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE INDEX refresh_campaigns_created_idx ON refresh_campaigns (created_at);

CREATE TABLE refresh_campaign_pages (
    campaign_id TEXT NOT NULL REFERENCES refresh_campaigns (id) ON DELETE CASCADE,
    page INTEGER NOT NULL,
    provider TEXT NOT NULL,
    PRIMARY KEY (campaign_id, page)
);

CREATE TABLE refresh_campaign_items (
    campaign_id TEXT NOT NULL REFERENCES refresh_campaigns (id) ON DELETE CASCADE,
    account_id INTEGER NOT NULL,
    page INTEGER NOT NULL,
    outcome TEXT,
    PRIMARY KEY (campaign_id, account_id)
);
CREATE INDEX refresh_campaign_items_page_idx ON refresh_campaign_items (campaign_id, page);

CREATE TABLE rate_budgets (
    key TEXT PRIMARY KEY,
    next_at_us INTEGER NOT NULL
);
