-- See migrations/postgres/0011_reencryptions.sql.
CREATE TABLE reencryptions (
    id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    status TEXT NOT NULL,
    total INTEGER,
    after_id INTEGER NOT NULL DEFAULT 0,
    moved INTEGER NOT NULL DEFAULT 0,
    changed INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    remaining INTEGER,
    lease_owner TEXT,
    lease_until INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    finished_at INTEGER
);
CREATE INDEX reencryptions_created_idx ON reencryptions (created_at);
CREATE UNIQUE INDEX reencryptions_one_running_idx ON reencryptions (status)
    WHERE status = 'running';
