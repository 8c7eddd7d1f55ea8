-- See migrations/postgres/0005_association.sql.
ALTER TABLE oauth_states ADD COLUMN user_id INTEGER;
ALTER TABLE oauth1_request_tokens ADD COLUMN user_id INTEGER;
ALTER TABLE social_accounts ADD COLUMN last_login_at INTEGER;
CREATE INDEX audit_events_provider_idx ON audit_events (provider, id);
