-- Re-encryptions (POST /admin/reencrypt): every link's sealed provider
-- tokens moved to one key (key_id) and the current format, in pages of
-- links in id order. A worker holds a running one under a lease
-- (lease_owner until lease_until) and writes each page with its place
-- (after_id) and counts in one transaction; another worker goes on from
-- there once the lease has expired. Progress lives here, not in any
-- process.
CREATE TABLE reencryptions (
    id text PRIMARY KEY,
    -- The key every token moves to (the api's current key when started).
    key_id text NOT NULL,
    -- running, done, cancelled.
    status text NOT NULL,
    -- Links due when a worker first took it (NULL until then).
    total bigint,
    -- The last link id handled.
    after_id bigint NOT NULL DEFAULT 0,
    -- Links sealed again, links rewritten meanwhile by a refresh or a
    -- sign-in (left as they were written), links that could not be
    -- opened (left as they were).
    moved bigint NOT NULL DEFAULT 0,
    changed bigint NOT NULL DEFAULT 0,
    failed bigint NOT NULL DEFAULT 0,
    -- Links still due when it finished.
    remaining bigint,
    lease_owner text,
    lease_until bigint,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL,
    finished_at bigint
);
CREATE INDEX reencryptions_created_idx ON reencryptions (created_at);
-- One running at a time.
CREATE UNIQUE INDEX reencryptions_one_running_idx ON reencryptions (status)
    WHERE status = 'running';
