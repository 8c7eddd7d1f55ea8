//! Series a dashboard and its alerts read from the first scrape: each
//! provider's counters at zero (so `rate()` and `increase()` see the first
//! event), the expiry of client secrets that are JWTs (Sign in with Apple's),
//! and the broker's queue depths.

use socialauth_common::catalogue::{Catalogue, Protocol, ProviderConfig, client_secret_expiry};
use socialauth_common::queue::amqp::AmqpQueue;
use std::time::Duration;
use tokio::sync::watch;
use tracing::debug;

/// Every provider's series, at zero where nothing happened yet.
pub fn baseline(catalogue: &Catalogue) {
    for p in catalogue.iter() {
        let provider = p.name.as_str().to_owned();
        metrics::gauge!("socialauth_provider_breaker_open", "provider" => provider.clone())
            .set(0.0);
        metrics::counter!("socialauth_provider_breaker_opened_total", "provider" => provider.clone())
            .absolute(0);
        for reason in ["breaker", "budget"] {
            metrics::counter!(
                "socialauth_provider_refused_requests_total",
                "provider" => provider.clone(),
                "reason" => reason,
            )
            .increment(0);
        }
        for kind in ["signup", "login"] {
            metrics::counter!("socialauth_logins_total", "provider" => provider.clone(), "kind" => kind)
                .increment(0);
        }
        // A login's calls by every outcome, so that the first errors after
        // a start count in a `rate()` (a series that appears at 1 does not).
        for endpoint in login_endpoints(p) {
            for outcome in ["ok", "error", "refused"] {
                metrics::counter!(
                    "socialauth_provider_calls_total",
                    "provider" => provider.clone(),
                    "endpoint" => endpoint,
                    "outcome" => outcome,
                )
                .increment(0);
            }
        }
        if let Some(exp) = client_secret_expiry(p.client_secret.expose()) {
            #[allow(clippy::cast_precision_loss)]
            metrics::gauge!(
                "socialauth_client_secret_expiry_timestamp_seconds",
                "provider" => provider.clone(),
            )
            .set(exp as f64);
        }
    }
}

/// The provider calls a login through `p` makes (the `endpoint` label of
/// `socialauth_provider_calls_total`), and its refresh.
fn login_endpoints(p: &ProviderConfig) -> Vec<&'static str> {
    let mut endpoints = match p.protocol {
        Protocol::Oidc => vec!["discovery", "token"],
        Protocol::OAuth2 => vec!["token", "userinfo"],
        Protocol::OAuth1 => vec!["request_token", "access_token", "userinfo"],
    };
    if p.protocol == Protocol::Oidc && p.read_userinfo {
        endpoints.push("userinfo");
    }
    if p.emails_url.is_some() {
        endpoints.push("emails");
    }
    if p.refresh.enabled {
        endpoints.push("refresh");
    }
    endpoints
}

/// How often the broker's queue depths are read.
const DEPTH_EVERY: Duration = Duration::from_secs(5);

/// `socialauth_queue_messages{queue}`: messages waiting in each queue, read
/// every [`DEPTH_EVERY`] until `stop`. Every worker reads them: take the
/// `max` across workers.
pub async fn queue_depths(queue: std::sync::Arc<AmqpQueue>, mut stop: watch::Receiver<bool>) {
    loop {
        match queue.depths().await {
            Ok(depths) => {
                for (name, count) in depths {
                    metrics::gauge!("socialauth_queue_messages", "queue" => name)
                        .set(f64::from(count));
                }
            }
            Err(e) => debug!(error = %e, "could not read the queue depths"),
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            () = tokio::time::sleep(DEPTH_EVERY) => {}
        }
    }
}
