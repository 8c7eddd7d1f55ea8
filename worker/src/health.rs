//! Writes each provider's breaker to the store when it opens or closes in
//! this process, so that `GET /providers` shows it and the api stops
//! sending logins to a provider whose calls fail at once.

use crate::deps::Deps;
use crate::providers::BreakerState;
use socialauth_common::now_ms;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tracing::warn;

/// How often the breakers are looked at.
const EVERY: Duration = Duration::from_millis(250);

/// Looks at the breakers every [`EVERY`] until `stop`; writes those that
/// changed (again at the next look when a write failed).
pub async fn run(deps: Arc<Deps>, mut stop: watch::Receiver<bool>) {
    let mut written: HashMap<String, u64> = HashMap::new();
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            () = tokio::time::sleep(EVERY) => {}
        }
        for (provider, state, version) in deps.providers.breaker_states() {
            // Version 0 is a breaker that never changed here: nothing to
            // say (it must not clear one another worker opened).
            if version == 0 || written.get(&provider) == Some(&version) {
                continue;
            }
            let now = now_ms();
            let open_until = match state {
                BreakerState::Open { until } => Some(
                    now.saturating_add(
                        i64::try_from(until.saturating_duration_since(Instant::now()).as_millis())
                            .unwrap_or(i64::MAX),
                    ),
                ),
                BreakerState::Closed | BreakerState::HalfOpen => None,
            };
            match deps
                .store
                .put_provider_health(&provider, open_until, now)
                .await
            {
                Ok(()) => {
                    written.insert(provider, version);
                }
                Err(e) => {
                    warn!(provider = %provider, error = %e, "could not record a provider's breaker")
                }
            }
        }
    }
}
