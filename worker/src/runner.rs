//! The consumer loop: bounded concurrency, acknowledge after the commit,
//! dead-letter what cannot be handled, finish in-flight jobs on shutdown.

use crate::deps::Deps;
use crate::dispatch;
use socialauth_common::jobs::{JobError, JobResult};
use socialauth_common::queue::{Delivery, JobSource};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{Semaphore, watch};
use tracing::{info, warn};

/// Runs until `shutdown` turns true or the source closes, then waits for
/// the jobs in flight.
pub async fn run(
    deps: Deps,
    mut source: Box<dyn JobSource>,
    concurrency: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    let deps = Arc::new(deps);
    let limit = concurrency.max(1);
    let slots = Arc::new(Semaphore::new(limit));
    info!(concurrency = limit, "worker consuming jobs");
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            break;
        };
        let delivery = tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            d = source.next() => d,
        };
        let Some(delivery) = delivery else { break };
        let deps = deps.clone();
        tokio::spawn(async move {
            process(&deps, delivery).await;
            drop(permit);
        });
    }
    // Every permit back means every job in flight has finished.
    let _ = slots.acquire_many(limit as u32).await;
    info!("worker stopped");
}

async fn process(deps: &Deps, delivery: Delivery) {
    let kind = delivery.kind.as_str();
    let started = Instant::now();
    let Delivery {
        job,
        redelivered,
        handle,
        ..
    } = delivery;
    let envelope = match job {
        Ok(envelope) => envelope,
        Err(reason) => {
            warn!(%reason, "undecodable job sent to the dead-letter queue");
            metrics::counter!("socialauth_jobs_total", "kind" => kind, "outcome" => "undecodable")
                .increment(1);
            if let Err(e) = handle.dead_letter(None).await {
                warn!(error = %e, "could not dead-letter a job");
            }
            return;
        }
    };
    let (result, panicked) = caught(dispatch::handle(deps, &envelope, redelivered)).await;
    if panicked {
        // The panic's message went to stderr by the panic hook; the job is
        // failed and dead-lettered, never redelivered to panic again.
        tracing::error!(job_id = %envelope.id, kind, "a job panicked: dead-lettered");
    }
    let outcome = match &result {
        _ if panicked => "panicked",
        JobResult::Failed(JobError::ProviderUnavailable | JobError::Internal) => "failed",
        JobResult::Failed(_) => "refused",
        _ => "succeeded",
    };
    metrics::counter!("socialauth_jobs_total", "kind" => kind, "outcome" => outcome).increment(1);
    metrics::histogram!("socialauth_job_duration_seconds", "kind" => kind)
        .record(started.elapsed().as_secs_f64());
    let settled = if outcome == "failed" || outcome == "panicked" {
        // Exhausted: the client gets the failure, the message goes to `dead`.
        handle.dead_letter(Some(&result)).await
    } else {
        handle.complete(&result).await
    };
    if let Err(e) = settled {
        warn!(job_id = %envelope.id, error = %e, "could not settle a job (it will be redelivered)");
    }
}

/// A job's result, or — when handling it panicked — `Internal` and true:
/// one bad message never takes its worker down, nor comes back to panic
/// again.
async fn caught(job: impl std::future::Future<Output = JobResult>) -> (JobResult, bool) {
    use futures_util::FutureExt;
    match std::panic::AssertUnwindSafe(job).catch_unwind().await {
        Ok(result) => (result, false),
        Err(_) => (JobResult::Failed(JobError::Internal), true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_job_is_a_failed_one() {
        let (result, panicked) = caught(async { panic!("poison") }).await;
        assert!(panicked);
        assert!(matches!(result, JobResult::Failed(JobError::Internal)));
        let (result, panicked) =
            caught(async { JobResult::Failed(JobError::InvalidCredentials) }).await;
        assert!(!panicked);
        assert!(matches!(
            result,
            JobResult::Failed(JobError::InvalidCredentials)
        ));
    }
}
