//! What a job handler needs, built once per process.

use crate::providers::ProviderClient;
use socialauth_common::catalogue::Catalogue;
use socialauth_common::config::Settings;
use socialauth_common::crypto::{JobSecrets, TokenCipher};
use socialauth_common::queue::JobQueue;
use socialauth_common::store::SharedStore;
use std::sync::Arc;
use std::time::Duration;

/// Account-linking and token policy, from `[security]`.
#[derive(Debug, Clone)]
pub struct Policy {
    /// App token lifetime in milliseconds; `None`: until logout.
    pub token_ttl_ms: Option<i64>,
    /// How long a retry of a used code gets the first outcome.
    pub retry_window_ms: i64,
    /// How long a refresher holds a link's lease, and another waits for it.
    pub refresh_lease_ms: i64,
    /// A refreshed token's lifetime when the provider names none.
    pub default_expires_in_ms: i64,
}

impl Policy {
    pub fn from_settings(settings: &Settings) -> Self {
        let ttl = settings.security.token_ttl_secs;
        Self {
            token_ttl_ms: (ttl > 0).then(|| ttl.saturating_mul(1000)),
            retry_window_ms: settings.security.retry_window_ms(),
            refresh_lease_ms: settings.refresh.lease_secs.max(1).saturating_mul(1000),
            default_expires_in_ms: settings
                .refresh
                .default_expires_in_secs
                .max(1)
                .saturating_mul(1000),
        }
    }
}

#[derive(Clone)]
pub struct Deps {
    pub store: SharedStore,
    pub catalogue: Arc<Catalogue>,
    pub providers: ProviderClient,
    pub cipher: Arc<TokenCipher>,
    /// The app and partial tokens each job hands out.
    pub secrets: JobSecrets,
    pub policy: Policy,
    /// Attempts of a transient provider failure before the job fails.
    pub max_attempts: u32,
    /// How long a transient store failure is retried before the job fails
    /// (`[worker] store_outage_secs`).
    pub store_outage: Duration,
    /// Redeliveries of a job before it is dead-lettered (`[queue]
    /// delivery_limit`); 0: no limit.
    pub delivery_limit: u32,
    /// True once this process is shutting down ([`Deps::with_stopping`]).
    pub stopping: tokio::sync::watch::Receiver<bool>,
    /// Where jobs made by jobs go (a campaign's planning publishes its
    /// pages); `None`: nowhere, such jobs fail.
    pub publisher: Option<Arc<dyn JobQueue>>,
    pub campaigns: CampaignLimits,
}

/// How a worker takes part in refresh campaigns.
#[derive(Clone)]
pub struct CampaignLimits {
    /// Accounts per page.
    pub page_size: u32,
    /// Refresh calls in flight for campaigns in this process, at most
    /// `concurrency`.
    pub slots: Arc<tokio::sync::Semaphore>,
    pub concurrency: usize,
    /// Pages this process handles at once.
    pub pages: usize,
    /// How often a running page tells its campaign is alive: well within
    /// `[refresh] campaign_stall_secs`.
    pub heartbeat: Duration,
}

impl Deps {
    pub fn new(
        settings: &Settings,
        store: SharedStore,
        catalogue: Arc<Catalogue>,
        cipher: Arc<TokenCipher>,
    ) -> Self {
        Self {
            store,
            catalogue,
            providers: ProviderClient::with_breaker(
                Duration::from_millis(settings.worker.http_timeout_ms),
                settings.worker.max_attempts,
                crate::providers::BreakerSettings {
                    failures: settings.worker.breaker_failures,
                    open_for: Duration::from_secs(settings.worker.breaker_open_secs.max(1)),
                    budget_wait: Duration::from_millis(settings.worker.budget_wait_ms),
                },
            )
            .expect("the provider HTTP client could not be built"),
            secrets: cipher.job_secrets().clone(),
            cipher,
            policy: Policy::from_settings(settings),
            max_attempts: settings.worker.max_attempts.max(1),
            store_outage: Duration::from_secs(settings.worker.store_outage_secs),
            delivery_limit: settings.queue.as_ref().map_or(0, |q| q.delivery_limit),
            stopping: tokio::sync::watch::channel(false).1,
            publisher: None,
            campaigns: CampaignLimits {
                page_size: settings.refresh.campaign_page_size.max(1),
                slots: Arc::new(tokio::sync::Semaphore::new(
                    settings.refresh.campaign_concurrency.max(1) as usize,
                )),
                concurrency: settings.refresh.campaign_concurrency.max(1) as usize,
                pages: usize::from(settings.refresh.campaign_pages_per_worker.max(1)),
                heartbeat: heartbeat(settings.refresh.campaign_stall_secs),
            },
        }
    }

    /// Jobs made by jobs go to `queue`.
    pub fn with_publisher(mut self, queue: Arc<dyn JobQueue>) -> Self {
        self.publisher = Some(queue);
        self
    }

    /// Long jobs (campaign pages) watch `stopping` and stop early.
    pub fn with_stopping(mut self, stopping: tokio::sync::watch::Receiver<bool>) -> Self {
        self.stopping = stopping;
        self
    }

    pub fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }
}

/// A third of the stall threshold, at most 30 s (at least 100 ms).
fn heartbeat(stall_secs: i64) -> Duration {
    let stall = Duration::from_secs(stall_secs.max(0).unsigned_abs());
    if stall.is_zero() {
        return Duration::from_secs(30);
    }
    (stall / 3).clamp(Duration::from_millis(100), Duration::from_secs(30))
}
