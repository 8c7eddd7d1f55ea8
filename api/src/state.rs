//! The one `AppState`, read with `State`.

use socialauth_common::catalogue::Catalogue;
use socialauth_common::config::Settings;
use socialauth_common::crypto::JobSecrets;
use socialauth_common::queue::JobQueue;
use socialauth_common::store::SharedStore;
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
