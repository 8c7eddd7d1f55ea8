//! `socialauth-worker` as a process: connect, consume, stop on a signal.

use crate::deps::Deps;
use crate::{campaign, refresh, runner};
use anyhow::Context;
use socialauth_common::bootstrap;
use socialauth_common::catalogue::Catalogue;
use socialauth_common::config::QueueSettings;
use socialauth_common::config::Settings;
use socialauth_common::jobs::JobKind;
use socialauth_common::queue::amqp::{AmqpQueue, AmqpSource};
use socialauth_common::queue::connect_with_retry;
use socialauth_common::store::{self, StoreOptions};
use std::sync::Arc;
use tokio::sync::watch;
use tracing::{info, warn};

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let queue = settings.queue.clone().context(
        "socialauth-worker needs a [queue] section; without one the api runs the worker itself",
    )?;
    let metrics_addr = crate::metrics_listener::install(&settings.worker.metrics_bind)?;
    info!(%metrics_addr, "serving Prometheus /metrics");

    let db = settings.database.as_ref();
    let options = db.map_or(StoreOptions::with_pool(8), |d| d.store_options());
    let store = store::connect_with(&settings.database_url(), options)
        .await
        .context("database")?;
    let catalogue = Arc::new(Catalogue::from_settings(&settings)?);
    crate::providers::check_minted_secrets(&catalogue).map_err(anyhow::Error::msg)?;
    let cipher = Arc::new(bootstrap::token_cipher(&settings)?);
    // Campaign planning publishes page jobs.
    let publisher = connect_with_retry("worker", || AmqpQueue::connect(&queue))
        .await
        .context("queue")?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let publisher = Arc::new(publisher);
    crate::gauges::baseline(&catalogue);
    tokio::spawn(crate::gauges::queue_depths(
        publisher.clone(),
        stop_rx.clone(),
    ));
    let deps = Deps::new(&settings, store, catalogue, cipher)
        .with_publisher(publisher)
        .with_stopping(stop_rx.clone());
    let kinds = [JobKind::Login, JobKind::Refresh];
    let source = connect_with_retry("worker", || AmqpSource::connect(&queue, &kinds))
        .await
        .context("queue")?;
    // Campaign jobs on their own consumer and slots: a long page never
    // holds a login's slot.
    let pages = settings.refresh.campaign_pages_per_worker.max(1);
    let campaign_queue = QueueSettings {
        prefetch: pages,
        ..queue.clone()
    };
    let campaign_source = connect_with_retry("worker", || {
        AmqpSource::connect(&campaign_queue, &[JobKind::Campaign])
    })
    .await
    .context("queue")?;

    tokio::spawn(async move {
        shutdown_signal().await;
        info!("shutting down: no new jobs; finishing the ones in flight");
        let _ = stop_tx.send(true);
    });
    if let Some(every) = refresh::Schedule::from_settings(&settings.refresh) {
        tokio::spawn(refresh::schedule(
            Arc::new(deps.clone()),
            every,
            stop_rx.clone(),
        ));
    }
    tokio::spawn(crate::cleanup::run(
        Arc::new(deps.clone()),
        settings.cleanup.clone(),
        stop_rx.clone(),
    ));
    tokio::spawn(crate::reencrypt::run(
        Arc::new(deps.clone()),
        settings.reencrypt.clone(),
        stop_rx.clone(),
    ));
    tokio::spawn(crate::health::run(Arc::new(deps.clone()), stop_rx.clone()));
    if settings.refresh.campaign_stall_secs > 0 {
        let stall =
            std::time::Duration::from_secs(settings.refresh.campaign_stall_secs.unsigned_abs());
        tokio::spawn(campaign::watch_stalls(
            Arc::new(deps.clone()),
            stall,
            stop_rx.clone(),
        ));
    }
    let campaigns = tokio::spawn(runner::run(
        deps.clone(),
        Box::new(campaign_source),
        usize::from(pages),
        stop_rx.clone(),
    ));
    let jobs = tokio::spawn(runner::run(
        deps,
        Box::new(source),
        usize::from(queue.prefetch),
        stop_rx.clone(),
    ));
    let both = async {
        let _ = jobs.await;
        let _ = campaigns.await;
    };
    tokio::pin!(both);
    let mut stopping = stop_rx;
    tokio::select! {
        () = &mut both => return Ok(()),
        _ = stopping.wait_for(|s| *s) => {}
    }
    // Stopping: what is in flight gets the grace period, no more.
    let grace = std::time::Duration::from_secs(settings.worker.shutdown_grace_secs);
    if tokio::time::timeout(grace, both).await.is_err() {
        warn!(
            grace_secs = grace.as_secs(),
            "jobs still running after the grace period: they go back to the queue"
        );
    }
    info!("worker exits");
    Ok(())
}

/// Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
