-- Only a job the api answered with 202 may show its token to a poll: the
-- api marks it when it stops waiting. A job answered at once never does.
ALTER TABLE jobs ADD COLUMN accepted boolean NOT NULL DEFAULT false;
