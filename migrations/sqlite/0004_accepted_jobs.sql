-- See migrations/postgres/0004_accepted_jobs.sql.
ALTER TABLE jobs ADD COLUMN accepted INTEGER NOT NULL DEFAULT 0;
