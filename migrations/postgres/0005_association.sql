-- Account association: a state or an OAuth 1.0a request token issued to a
-- signed-in user (GET /auth/associate/{provider}/) links to that user only;
-- NULL for a login's.
ALTER TABLE oauth_states ADD COLUMN user_id bigint;
ALTER TABLE oauth1_request_tokens ADD COLUMN user_id bigint;
-- When the link was last used to sign in. Links made before this column
-- read as their last update (no rewrite of the table here).
ALTER TABLE social_accounts ADD COLUMN last_login_at bigint;
-- GET /admin/audit, filtered by provider, newest first.
CREATE INDEX audit_events_provider_idx ON audit_events (provider, id);
