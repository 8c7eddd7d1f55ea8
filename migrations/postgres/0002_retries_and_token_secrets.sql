-- The djoser flow's double submit: the job that took a state and the hash of
-- the code it came with, so a second POST of the same code is answered with
-- that job's outcome (common/src/redemption.rs).
ALTER TABLE oauth_states ADD COLUMN consumed_by text;
ALTER TABLE oauth_states ADD COLUMN code_hash text;

-- OAuth 1.0a access tokens come with a token secret, without which the
-- token cannot sign a request: sealed like the other provider tokens.
ALTER TABLE social_accounts ADD COLUMN token_secret_enc text;
