-- Refresh campaigns (POST /admin/refresh-campaigns): the accounts a
-- campaign covers are planned in pages (items, each with its page), each
-- page travels as one message; an item's outcome is written once, so a
-- page handled twice (a worker killed, a message published again) counts
-- each account once. Progress lives here, not in any process.
CREATE TABLE refresh_campaigns (
    id text PRIMARY KEY,
    -- As asked (NULL: every provider whose tokens are refreshed).
    provider text,
    -- The providers covered, in planning order (a JSON array).
    providers text NOT NULL,
    expiring_within_secs bigint NOT NULL,
    -- Accounts whose access tokens expire before this (ms) are refreshed.
    expiring_before bigint NOT NULL,
    rate_per_second double precision,
    -- running, done, cancelled.
    status text NOT NULL,
    -- Planning: the provider (index into providers) and the last account
    -- id planned; planned once every provider is.
    plan_provider bigint NOT NULL DEFAULT 0,
    plan_cursor bigint NOT NULL DEFAULT 0,
    planned boolean NOT NULL DEFAULT false,
    pages bigint NOT NULL DEFAULT 0,
    published_pages bigint NOT NULL DEFAULT 0,
    total bigint NOT NULL DEFAULT 0,
    refreshed bigint NOT NULL DEFAULT 0,
    failed bigint NOT NULL DEFAULT 0,
    needs_reauth bigint NOT NULL DEFAULT 0,
    skipped bigint NOT NULL DEFAULT 0,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    finished_at bigint
);
CREATE INDEX refresh_campaigns_created_idx ON refresh_campaigns (created_at);

CREATE TABLE refresh_campaign_pages (
    campaign_id text NOT NULL REFERENCES refresh_campaigns (id) ON DELETE CASCADE,
    page bigint NOT NULL,
    provider text NOT NULL,
    PRIMARY KEY (campaign_id, page)
);

-- No reference to social_accounts: a link removed meanwhile stays an item
-- (counted as skipped).
CREATE TABLE refresh_campaign_items (
    campaign_id text NOT NULL REFERENCES refresh_campaigns (id) ON DELETE CASCADE,
    account_id bigint NOT NULL,
    page bigint NOT NULL,
    -- NULL until handled: refreshed, failed, needs_reauth, skipped.
    outcome text,
    PRIMARY KEY (campaign_id, account_id)
);
CREATE INDEX refresh_campaign_items_page_idx ON refresh_campaign_items (campaign_id, page);

-- Rate budgets shared by every worker (a generic cell rate algorithm): the
-- time (µs) from which the next call of the budget may be made.
CREATE TABLE rate_budgets (
    key text PRIMARY KEY,
    next_at_us bigint NOT NULL
);
