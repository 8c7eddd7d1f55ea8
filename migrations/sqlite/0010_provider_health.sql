-- Each provider's circuit breaker as the workers last saw it change
-- (`GET /providers`, and the api's check before it sends a login to a
-- provider whose calls fail at once). open_until: ms since the epoch, NULL
-- when closed.
CREATE TABLE provider_health (
    provider text PRIMARY KEY,
    open_until bigint,
    updated_at bigint NOT NULL
);
