-- See migrations/postgres/0003_email_provenance_and_audit.sql.
ALTER TABLE users ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0;
UPDATE users SET email_verified = 1
WHERE email_normalized IS NOT NULL AND EXISTS (
    SELECT 1 FROM social_accounts s
    WHERE s.user_id = users.id AND lower(s.email) = users.email_normalized
      AND json_extract(s.extra_data, '$.email_verified') = 1);

CREATE TABLE audit_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    user_id    INTEGER,
    provider   TEXT,
    outcome    TEXT    NOT NULL,
    detail     TEXT    NOT NULL DEFAULT '{}',
    request_id TEXT
);
CREATE INDEX audit_events_user_id_idx ON audit_events (user_id, id);
