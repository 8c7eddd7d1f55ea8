-- See migrations/postgres/0008_campaign_indexes.sql.
CREATE INDEX social_accounts_refreshable_idx ON social_accounts (provider, id)
    WHERE refresh_token_enc IS NOT NULL;
CREATE INDEX refresh_campaigns_running_idx ON refresh_campaigns (updated_at)
    WHERE status = 'running';
