//! `GET /providers` and the one check every way to a provider makes
//! first: a provider whose breaker the workers opened gets no new login
//! until it closes (503 `provider_unavailable` with `Retry-After`, the
//! client's code and state still unused).

use crate::error::{ApiError, Flow};
use crate::state::AppState;
use serde::Serialize;
use socialauth_common::catalogue::{Protocol, ProviderConfig};
use socialauth_common::now_ms;
use socialauth_common::store::ProviderHealth;
use utoipa::ToSchema;

/// Refuses a provider whose breaker is open.
pub async fn ensure_available(
    state: &AppState,
    provider: &ProviderConfig,
    flow: Flow,
) -> Result<(), ApiError> {
    let now = now_ms();
    let health = state.health.get(&state.store).await;
    match open_until(&health, provider.name.as_str(), now) {
        Some(until) => Err(ApiError::ProviderPaused(secs_until(until, now), flow)),
        None => Ok(()),
    }
}

/// Until when (ms) `provider`'s breaker is open, if it is open at `now`.
fn open_until(health: &[ProviderHealth], provider: &str, now: i64) -> Option<i64> {
    health
        .iter()
        .find(|h| h.provider == provider && h.is_open(now))
        .and_then(|h| h.open_until)
}

/// `GET /providers`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProvidersView {
    pub providers: Vec<ProviderView>,
}

/// One configured provider and its live state.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderView {
    /// Its URL segment (`/auth/o/{provider}/`).
    pub name: String,
    /// `oidc`, `oauth2` or `oauth1`.
    pub protocol: &'static str,
    /// False while its breaker is open: logins are refused at once.
    pub available: bool,
    /// `closed` or `open`.
    pub breaker: &'static str,
    /// While open: seconds until a login may be tried again.
    pub retry_after: Option<u64>,
}

pub async fn list(state: &AppState) -> ProvidersView {
    let now = now_ms();
    let health = state.health.get(&state.store).await;
    let providers = state
        .catalogue
        .iter()
        .map(|p| {
            let open_until = open_until(&health, p.name.as_str(), now);
            ProviderView {
                name: p.name.as_str().to_owned(),
                protocol: match p.protocol {
                    Protocol::Oidc => "oidc",
                    Protocol::OAuth2 => "oauth2",
                    Protocol::OAuth1 => "oauth1",
                },
                available: open_until.is_none(),
                breaker: if open_until.is_some() {
                    "open"
                } else {
                    "closed"
                },
                retry_after: open_until.map(|until| secs_until(until, now)),
            }
        })
        .collect();
    ProvidersView { providers }
}

/// Whole seconds from `now` to `until` (ms), rounded up, at least 1.
fn secs_until(until: i64, now: i64) -> u64 {
    u64::try_from(until.saturating_sub(now))
        .unwrap_or(0)
        .div_ceil(1000)
        .max(1)
}
