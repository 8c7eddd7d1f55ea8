-- Refresh campaigns' planning walks one provider's refreshable links in id
-- order; workers look for running campaigns that have stalled.
CREATE INDEX social_accounts_refreshable_idx ON social_accounts (provider, id)
    WHERE refresh_token_enc IS NOT NULL;
CREATE INDEX refresh_campaigns_running_idx ON refresh_campaigns (updated_at)
    WHERE status = 'running';
