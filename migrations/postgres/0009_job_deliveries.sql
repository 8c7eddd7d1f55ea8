-- How many times the broker handed out a job again (a redelivery: its
-- worker died or lost the broker before acknowledging it). A job handed
-- out more than `[queue] delivery_limit` times goes to the dead letters
-- instead of taking down one worker after another.
CREATE TABLE job_deliveries (
    job_id text PRIMARY KEY,
    redeliveries bigint NOT NULL,
    updated_at bigint NOT NULL
);
