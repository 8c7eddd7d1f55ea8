//! `Application::build`: wire store, queue and (embedded) worker, bind.

use crate::routes;
use crate::state::{AppState, EndpointCache};
use anyhow::Context;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use socialauth_common::bootstrap;
use socialauth_common::catalogue::Catalogue;
use socialauth_common::config::Settings;
use socialauth_common::jobs::JobKind;
use socialauth_common::queue::amqp::AmqpQueue;
use socialauth_common::queue::inproc::InProcessQueue;
use socialauth_common::queue::{ByKind, JobQueue, connect_with_retry};
use socialauth_common::store::{self, SharedStore, StoreOptions};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::info;

/// Jobs waiting in the in-process queue before `submit` waits.
const EMBEDDED_QUEUE_CAPACITY: usize = 4096;
/// Campaign jobs waiting in theirs: a campaign's planning publishes its
/// pages while it holds a campaign slot, so it must not wait for one (a
/// page is a few bytes; the channel allocates as it fills).
const EMBEDDED_CAMPAIGN_PAGES: usize = 1 << 22;

pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    port: u16,
    worker: Option<(JoinHandle<()>, watch::Sender<bool>)>,
    /// How long requests in flight may go on after a shutdown signal.
    grace: Duration,
    /// How long the embedded worker may finish its jobs after that.
    worker_grace: Duration,
    /// A connection that sends no request headers within this is closed.
    header_read_timeout: Duration,
}

impl Application {
    /// Connects everything and binds `server.bind` (port 0: any free port).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let settings = Arc::new(settings);
        // Installed first: what starts below records into it.
        let metrics = prometheus();
        let catalogue = Arc::new(Catalogue::from_settings(&settings)?);
        socialauth_worker::providers::check_minted_secrets(&catalogue)
            .map_err(anyhow::Error::msg)?;
        let store = connect_store(&settings).await?;
        // The worker's key: the api derives the tokens a job handed out
        // when it shows them again (a poll, a redelivered reply).
        let cipher = Arc::new(bootstrap::token_cipher(&settings)?);
        let secrets = cipher.job_secrets().clone();
        let mut worker = None;
        let queue: Arc<dyn JobQueue> = match &settings.queue {
            Some(q) => Arc::new(
                connect_with_retry("api", || AmqpQueue::connect(q))
                    .await
                    .context("queue")?,
            ),
            None => {
                let (queue, source) = InProcessQueue::new(EMBEDDED_QUEUE_CAPACITY);
                // Campaign jobs on their own queue and slots: a long page
                // never holds a login's slot.
                let (campaign_queue, campaign_source) =
                    InProcessQueue::new(EMBEDDED_CAMPAIGN_PAGES);
                let queue: Arc<dyn JobQueue> = Arc::new(ByKind {
                    kind: JobKind::Campaign,
                    to: Arc::new(campaign_queue),
                    rest: Arc::new(queue),
                });
                let deps = socialauth_worker::Deps::new(
                    &settings,
                    store.clone(),
                    catalogue.clone(),
                    cipher,
                )
                .with_publisher(queue.clone());
                let (stop_tx, stop_rx) = watch::channel(false);
                let deps = deps.with_stopping(stop_rx.clone());
                if let Some(every) =
                    socialauth_worker::refresh::Schedule::from_settings(&settings.refresh)
                {
                    tokio::spawn(socialauth_worker::refresh::schedule(
                        Arc::new(deps.clone()),
                        every,
                        stop_rx.clone(),
                    ));
                }
                // The in-process queue lost the jobs of campaigns that
                // were running when this process stopped: plan them again
                // (looking again for two leases' time at any the stopping
                // process still writes to).
                tokio::spawn({
                    let deps = deps.clone();
                    let window =
                        Duration::from_secs(settings.refresh.lease_secs.max(1).unsigned_abs() * 2);
                    async move {
                        socialauth_worker::campaign::revive_at_start(&deps, window).await;
                    }
                });
                tokio::spawn(socialauth_worker::cleanup::run(
                    Arc::new(deps.clone()),
                    settings.cleanup.clone(),
                    stop_rx.clone(),
                ));
                tokio::spawn(socialauth_worker::reencrypt::run(
                    Arc::new(deps.clone()),
                    settings.reencrypt.clone(),
                    stop_rx.clone(),
                ));
                tokio::spawn(socialauth_worker::health::run(
                    Arc::new(deps.clone()),
                    stop_rx.clone(),
                ));
                let stall = settings.refresh.campaign_stall_secs;
                if stall > 0 {
                    tokio::spawn(socialauth_worker::campaign::watch_stalls(
                        Arc::new(deps.clone()),
                        Duration::from_secs(stall.unsigned_abs()),
                        stop_rx.clone(),
                    ));
                }
                let pages = usize::from(settings.refresh.campaign_pages_per_worker.max(1));
                let campaigns = tokio::spawn(socialauth_worker::runner::run(
                    deps.clone(),
                    Box::new(campaign_source),
                    pages,
                    stop_rx.clone(),
                ));
                let jobs = tokio::spawn(socialauth_worker::runner::run(
                    deps,
                    Box::new(source),
                    settings.worker.concurrency,
                    stop_rx,
                ));
                let handle = tokio::spawn(async move {
                    let _ = jobs.await;
                    let _ = campaigns.await;
                });
                worker = Some((handle, stop_tx));
                socialauth_worker::gauges::baseline(&catalogue);
                info!("embedded mode: the worker runs in this process");

                queue
            }
        };
        let state = AppState {
            store,
            queue,
            catalogue,
            settings: settings.clone(),
            endpoints: EndpointCache::default(),
            secrets,
            metrics,
            guard: Arc::new(crate::guard::Guard::from_settings(&settings.server)?),
            health: Default::default(),
        };
        let idle = state.guard.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(60));
            loop {
                every.tick().await;
                idle.forget_idle_clients();
            }
        });
        let header_read_timeout = Duration::from_millis(settings.server.header_read_timeout_ms);
        let listener = TcpListener::bind(&settings.server.bind)
            .await
            .with_context(|| format!("bind {}", settings.server.bind))?;
        let port = listener.local_addr()?.port();
        if settings.demo.enabled {
            routes::demo::announce(&settings, port);
        }
        let grace = Duration::from_millis(settings.server.reply_timeout_ms)
            .saturating_add(Duration::from_secs(5));
        Ok(Self {
            listener,
            router: routes::router(state),
            port,
            worker,
            grace,
            worker_grace: Duration::from_secs(settings.worker.shutdown_grace_secs),
            header_read_timeout,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` resolves: then takes no new connection,
    /// lets the requests in flight finish — for at most the reply timeout
    /// plus 5 s (a login waiting for its worker is answered, 202 at
    /// worst) — and lets the embedded worker finish the jobs it holds.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        info!(port = self.port, "listening");
        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            shutdown.await;
            info!("shutting down: no new connections; finishing the requests in flight");
            let _ = stopping_tx.send(());
        };
        let serve =
            crate::serve::serve(self.listener, self.router, self.header_read_timeout, signal);
        tokio::pin!(serve);
        let grace = self.grace;
        tokio::select! {
            served = &mut serve => served?,
            () = async {
                if stopping_rx.await.is_ok() {
                    tokio::time::sleep(grace).await;
                } else {
                    std::future::pending::<()>().await;
                }
            } => {
                tracing::warn!(
                    grace_ms = grace.as_millis() as u64,
                    "requests still in flight after the grace period are dropped"
                );
            }
        }
        if let Some((handle, stop)) = self.worker {
            let _ = stop.send(true);
            let _ = tokio::time::timeout(self.worker_grace, handle).await;
        }
        Ok(())
    }
}

/// The configured store; SQLite (the embedded default) is migrated at start,
/// PostgreSQL by `socialauth-api migrate`.
async fn connect_store(settings: &Settings) -> anyhow::Result<SharedStore> {
    let options = settings
        .database
        .as_ref()
        .map_or(StoreOptions::with_pool(8), |d| d.store_options());
    let store = store::connect_with(&settings.database_url(), options)
        .await
        .context("database")?;
    if store.backend() == "sqlite" {
        store.migrate().await.context("migrations")?;
    }
    Ok(store)
}

/// Applies the migrations of the configured database.
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let max = settings.database.as_ref().map_or(2, |d| d.max_connections);
    let store = store::connect(&settings.database_url(), max)
        .await
        .context("database")?;
    store.migrate().await.context("migrations")?;
    info!(backend = store.backend(), "migrations applied");
    Ok(())
}

/// The process-wide Prometheus recorder (the `metrics` facade has one).
fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(&socialauth_common::HISTOGRAM_BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Another recorder may be installed already (tests); then this
            // handle renders nothing, which only tests can observe.
            let _ = metrics::set_global_recorder(recorder);
            let upkeep = handle.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(5));
                loop {
                    tick.tick().await;
                    upkeep.run_upkeep();
                }
            });
            handle
        })
        .clone()
}
