-- See migrations/postgres/0002_retries_and_token_secrets.sql.
ALTER TABLE oauth_states ADD COLUMN consumed_by TEXT;
ALTER TABLE oauth_states ADD COLUMN code_hash TEXT;
ALTER TABLE social_accounts ADD COLUMN token_secret_enc TEXT;
