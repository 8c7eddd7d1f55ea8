//! The consumer loop: bounded concurrency, acknowledge after the commit,
//! dead-letter what cannot be handled, finish in-flight jobs on shutdown.

use crate::deps::Deps;
use crate::dispatch;
use socialauth_common::jobs::{JobEnvelope, JobError, JobResult};
use socialauth_common::queue::{Delivery, JobSource};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{Semaphore, watch};
use tracing::{info, warn};
use uuid::Uuid;

/// Runs until `shutdown` turns true or the source closes, then waits for
/// the jobs in flight.
pub async fn run(
    deps: Deps,
    mut source: Box<dyn JobSource>,
    concurrency: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    let deps = Arc::new(deps);
    let running = Running::default();
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
        let running = running.clone();
        tokio::spawn(async move {
            process(&deps, &running, delivery).await;
            drop(permit);
        });
    }
    // The broker stops sending: what it would hand out now goes to
    // other workers at once.
    source.close().await;
    // Every permit back means every job in flight has finished.
    let _ = slots.acquire_many(limit as u32).await;
    info!("worker stopped");
}

/// The jobs this runner is handling, by id. When the broker connection is
/// lost, the jobs in flight go on (their outcome is written), and the
/// broker hands them out again once reconnected: a copy of a job still
/// running here waits for it, then answers with its stored outcome,
/// instead of running beside it — two exchanges of one code make the
/// provider revoke both.
#[derive(Clone, Default)]
struct Running(Arc<std::sync::Mutex<HashMap<Uuid, watch::Receiver<bool>>>>);

/// Removes its job from [`Running`] and wakes its copies when dropped.
struct RunGuard {
    running: Running,
    id: Uuid,
    done: watch::Sender<bool>,
}

impl Running {
    /// Registers `id`; `Err` with the run to wait for when one is going on.
    fn enter(&self, id: Uuid) -> Result<RunGuard, watch::Receiver<bool>> {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(first) = map.get(&id) {
            return Err(first.clone());
        }
        let (done, rx) = watch::channel(false);
        map.insert(id, rx);
        Ok(RunGuard {
            running: self.clone(),
            id,
            done,
        })
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        self.running
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.id);
        self.done.send_replace(true);
    }
}

/// Registers the job as running here, waiting first for a run of it that
/// is going on (then it counts as redelivered: the first run's outcome is
/// stored).
async fn enter(running: &Running, id: Uuid, redelivered: bool) -> (RunGuard, bool) {
    let mut waited = false;
    loop {
        match running.enter(id) {
            Ok(guard) => return (guard, redelivered || waited),
            Err(mut first) => {
                let _ = first.wait_for(|done| *done).await;
                waited = true;
            }
        }
    }
}

async fn process(deps: &Deps, running: &Running, delivery: Delivery) {
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
            if let Err(e) = handle.dead_letter(None, None).await {
                warn!(error = %e, "could not dead-letter a job");
            }
            return;
        }
    };
    // How long it waited in the queue (a redelivered one: since it was
    // first published).
    #[allow(clippy::cast_precision_loss)]
    let waited_ms = socialauth_common::now_ms()
        .saturating_sub(envelope.created_at)
        .max(0) as f64;
    metrics::histogram!("socialauth_job_wait_seconds", "kind" => kind).record(waited_ms / 1000.0);
    // A copy of a job running here waits for it first (then it is
    // answered with the first run's outcome, and is not counted).
    let (_run, waited) = enter(running, envelope.id, false).await;
    if redelivered
        && !waited
        && let Some(result) = over_delivery_limit(deps, &envelope).await
    {
        tracing::error!(job_id = %envelope.id, kind, "handed out too many times: dead-lettered");
        metrics::counter!("socialauth_jobs_total", "kind" => kind, "outcome" => "delivery_limit")
            .increment(1);
        if let Err(e) = handle
            .dead_letter(Some(&result), Some("delivery_limit"))
            .await
        {
            warn!(job_id = %envelope.id, error = %e, "could not dead-letter a job");
        }
        return;
    }
    let redelivered = redelivered || waited;
    let (result, panicked) = caught(dispatch::handle(deps, &envelope, redelivered)).await;
    if panicked {
        // The panic's message went to stderr by the panic hook; the job is
        // failed and dead-lettered, never redelivered to panic again.
        tracing::error!(job_id = %envelope.id, kind, "a job panicked: dead-lettered");
    }
    if let JobResult::CampaignWork(work) = &result
        && work.interrupted
    {
        // Left unacknowledged: when this worker's connection closes, the
        // broker hands the page to another worker.
        info!(job_id = %envelope.id, "campaign page left to another worker");
        metrics::counter!("socialauth_jobs_total", "kind" => kind, "outcome" => "interrupted")
            .increment(1);
        drop(handle);
        return;
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
        handle.dead_letter(Some(&result), None).await
    } else {
        handle.complete(&result).await
    };
    if let Err(e) = settled {
        warn!(job_id = %envelope.id, error = %e, "could not settle a job (it will be redelivered)");
    }
}

/// A redelivered job counted once more; past `[queue] delivery_limit` its
/// failure (kept for a poll) instead of another run: a job that takes its
/// worker down (it exhausts memory, say) would otherwise take down one
/// worker after another. Not counted when the database does not answer.
async fn over_delivery_limit(deps: &Deps, envelope: &JobEnvelope) -> Option<JobResult> {
    // Campaign pages are handed back whenever their worker stops (a page
    // runs long) and go on where they stopped: not counted.
    if deps.delivery_limit == 0 || envelope.kind() == socialauth_common::jobs::JobKind::Campaign {
        return None;
    }
    let count = match deps
        .store
        .count_redelivery(envelope.id, socialauth_common::now_ms())
        .await
    {
        Ok(count) => count,
        Err(e) => {
            warn!(job_id = %envelope.id, error = %e, "could not count a redelivery");
            return None;
        }
    };
    if count <= i64::from(deps.delivery_limit) {
        return None;
    }
    // One that finished is answered with its outcome, however often it
    // came back.
    match deps.store.find_job(envelope.id).await {
        Ok(Some(record)) if record.status != socialauth_common::store::JobStatus::Pending => {
            return None;
        }
        Ok(_) => {}
        // Not known: run it rather than fail it.
        Err(_) => return None,
    }
    let failed = JobResult::Failed(JobError::Internal);
    dispatch::record_failure(deps, envelope.id, envelope.kind(), &failed).await;
    Some(failed)
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
    async fn a_copy_of_a_running_job_waits_for_it() {
        let running = Running::default();
        let id = Uuid::new_v4();
        let (first, redelivered) = enter(&running, id, false).await;
        assert!(!redelivered);
        let copy = tokio::spawn({
            let running = running.clone();
            async move { enter(&running, id, false).await.1 }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!copy.is_finished(), "the copy ran beside the first run");
        drop(first);
        assert!(copy.await.expect("copy"), "the copy counts as redelivered");
        // Another job does not wait.
        let (_other, redelivered) = enter(&running, Uuid::new_v4(), false).await;
        assert!(!redelivered);
    }

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
