//! Each provider's circuit breaker as the workers last saw it change: the
//! view `GET /providers` shows and the api consults before it sends a
//! login to a provider. One row per provider, last writer wins (a worker
//! writes only when its breaker opens or closes).

/// A provider's breaker, as last recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderHealth {
    pub provider: String,
    /// Calls to it fail at once until then (ms since the epoch); `None`:
    /// closed.
    pub open_until: Option<i64>,
    pub updated_at: i64,
}

impl ProviderHealth {
    /// Whether its breaker is open at `now`.
    pub fn is_open(&self, now: i64) -> bool {
        self.open_until.is_some_and(|until| until > now)
    }
}

pub(super) const PUT: &str = "INSERT INTO provider_health (provider, open_until, updated_at) \
     VALUES ($1, $2, $3) \
     ON CONFLICT (provider) DO UPDATE SET open_until = excluded.open_until, \
         updated_at = excluded.updated_at";

pub(super) const LIST: &str =
    "SELECT provider, open_until, updated_at FROM provider_health ORDER BY provider";
