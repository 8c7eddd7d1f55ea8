-- Provider-token refresh, one at a time per link across every process: a
-- refresher holds the link's lease (until when, which job) while it calls
-- the provider; others wait for its outcome.
ALTER TABLE social_accounts ADD COLUMN refresh_lease_until bigint;
ALTER TABLE social_accounts ADD COLUMN refresh_lease_owner text;
