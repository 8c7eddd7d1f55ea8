-- See migrations/postgres/0006_refresh_leases.sql.
ALTER TABLE social_accounts ADD COLUMN refresh_lease_until INTEGER;
ALTER TABLE social_accounts ADD COLUMN refresh_lease_owner TEXT;
