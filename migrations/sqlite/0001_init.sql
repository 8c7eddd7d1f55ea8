-- socialauth schema, SQLite: mirrors migrations/postgres/0001_init.sql.
-- Timestamps are milliseconds since the Unix epoch; booleans are 0/1.
-- SQLite reports a unique violation by column ("UNIQUE constraint failed:
-- users.username"); the store maps those names to `Constraint` variants.

CREATE TABLE users (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    username         TEXT    NOT NULL,
    email            TEXT,
    email_normalized TEXT,
    first_name       TEXT    NOT NULL DEFAULT '',
    last_name        TEXT    NOT NULL DEFAULT '',
    is_active        INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    referral_code    TEXT    NOT NULL,
    referred_by      INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at       INTEGER NOT NULL,
    CONSTRAINT users_username_key UNIQUE (username),
    CONSTRAINT users_email_key UNIQUE (email_normalized),
    CONSTRAINT users_referral_code_key UNIQUE (referral_code)
);

CREATE TABLE social_accounts (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id           INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider          TEXT    NOT NULL,
    uid               TEXT    NOT NULL,
    email             TEXT,
    extra_data        TEXT    NOT NULL DEFAULT '{}',
    token_key_id      TEXT,
    access_token_enc  TEXT,
    refresh_token_enc TEXT,
    expires_at        INTEGER,
    needs_reauth      INTEGER NOT NULL DEFAULT 0 CHECK (needs_reauth IN (0, 1)),
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    CONSTRAINT social_accounts_provider_uid_key UNIQUE (provider, uid)
);
CREATE INDEX social_accounts_user_id_idx ON social_accounts (user_id);
CREATE INDEX social_accounts_refresh_due_idx ON social_accounts (expires_at)
    WHERE refresh_token_enc IS NOT NULL;

CREATE TABLE auth_tokens (
    token_hash TEXT    PRIMARY KEY NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER
);
CREATE INDEX auth_tokens_user_id_idx ON auth_tokens (user_id);

CREATE TABLE oauth_states (
    state_hash    TEXT    PRIMARY KEY NOT NULL,
    provider      TEXT    NOT NULL,
    redirect_uri  TEXT    NOT NULL,
    pkce_verifier TEXT,
    nonce         TEXT,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    consumed_at   INTEGER
);

CREATE TABLE oauth1_request_tokens (
    oauth_token      TEXT    PRIMARY KEY NOT NULL,
    provider         TEXT    NOT NULL,
    token_secret_enc TEXT    NOT NULL,
    token_key_id     TEXT    NOT NULL,
    redirect_uri     TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    consumed_at      INTEGER
);

CREATE TABLE partial_logins (
    token_hash   TEXT    PRIMARY KEY NOT NULL,
    provider     TEXT    NOT NULL,
    data_enc     TEXT    NOT NULL,
    token_key_id TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    consumed_at  INTEGER
);

CREATE TABLE login_codes (
    provider   TEXT    NOT NULL,
    code_hash  TEXT    NOT NULL,
    job_id     TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (provider, code_hash)
);

CREATE TABLE jobs (
    id           TEXT    PRIMARY KEY NOT NULL,
    kind         TEXT    NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    result       TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    delivered_at INTEGER
);
