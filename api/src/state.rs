//! The one `AppState`, read with `State`.

use socialauth_common::catalogue::Catalogue;
use socialauth_common::config::Settings;
use socialauth_common::crypto::JobSecrets;
use socialauth_common::queue::JobQueue;
use socialauth_common::store::{ProviderHealth, SharedStore};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

#[derive(Clone)]
pub struct AppState {
    pub store: SharedStore,
    pub queue: Arc<dyn JobQueue>,
    pub catalogue: Arc<Catalogue>,
    pub settings: Arc<Settings>,
    pub endpoints: EndpointCache,
    /// The tokens jobs hand out, derived again when shown again.
    pub secrets: JobSecrets,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// Rate, concurrency and time limits of requests.
    pub guard: Arc<crate::guard::Guard>,
    /// Each provider's breaker as the workers last recorded it.
    pub health: HealthView,
}

/// Each provider's breaker as the workers last recorded it, read from the
/// store at most every [`HEALTH_TTL`] (by one request; the others use what
/// was read last meanwhile).
#[derive(Clone, Default)]
pub struct HealthView {
    inner: Arc<HealthInner>,
}

#[derive(Default)]
struct HealthInner {
    read: RwLock<Option<(Instant, Arc<Vec<ProviderHealth>>)>>,
    reading: tokio::sync::Mutex<()>,
}

const HEALTH_TTL: Duration = Duration::from_secs(1);

impl HealthView {
    /// What was recorded, at most [`HEALTH_TTL`] old when the store
    /// answers; what was read last (nothing at first) when it does not.
    pub async fn get(&self, store: &SharedStore) -> Arc<Vec<ProviderHealth>> {
        if let Some((at, all)) = self.last()
            && at.elapsed() < HEALTH_TTL
        {
            return all;
        }
        let Ok(_reading) = self.inner.reading.try_lock() else {
            return self.last().map(|(_, all)| all).unwrap_or_default();
        };
        let all = match store.list_provider_health().await {
            Ok(all) => Arc::new(all),
            Err(e) => {
                tracing::debug!(error = %e, "could not read the providers' breakers");
                self.last().map(|(_, all)| all).unwrap_or_default()
            }
        };
        if let Ok(mut read) = self.inner.read.write() {
            *read = Some((Instant::now(), all.clone()));
        }
        all
    }

    fn last(&self) -> Option<(Instant, Arc<Vec<ProviderHealth>>)> {
        self.inner.read.read().ok()?.clone()
    }
}

impl AppState {
    pub fn reply_timeout(&self) -> Duration {
        Duration::from_millis(self.settings.server.reply_timeout_ms)
    }
}

/// Authorization endpoints learnt from OIDC discovery (through a worker),
/// kept for an hour.
#[derive(Clone, Default)]
pub struct EndpointCache {
    inner: Arc<RwLock<HashMap<String, (String, Instant)>>>,
}

const ENDPOINT_TTL: Duration = Duration::from_secs(3600);

impl EndpointCache {
    pub fn get(&self, provider: &str) -> Option<String> {
        let map = self.inner.read().ok()?;
        let (url, at) = map.get(provider)?;
        (at.elapsed() < ENDPOINT_TTL).then(|| url.clone())
    }

    pub fn put(&self, provider: &str, url: String) {
        if let Ok(mut map) = self.inner.write() {
            map.insert(provider.to_owned(), (url, Instant::now()));
        }
    }
}
