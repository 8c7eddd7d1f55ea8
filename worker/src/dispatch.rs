//! One job in, one result out: plain async functions that tests call
//! without a broker.

use crate::deps::Deps;
use crate::error::WorkerError;
use crate::pipeline::{self, Obtained};
use crate::{campaign, oauth1, refresh, replay, revocation};
use backon::{ExponentialBuilder, Retryable};
use socialauth_common::jobs::{
    AssociateJob, AssociationResult, Job, JobEnvelope, JobError, JobKind, JobResult,
    LoginCredential, LoginJob,
};
use socialauth_common::store::JobStatus;
use socialauth_common::{now_ms, reissue};
use std::time::Duration;
use tracing::{instrument, warn};
use uuid::Uuid;

/// Handles one job. A redelivered job that already finished gets its stored
/// result again instead of being run twice.
#[instrument(skip_all, fields(
    job_id = %envelope.id,
    kind = envelope.kind().as_str(),
    request_id = envelope.request_id.as_deref().unwrap_or("-"),
))]
pub async fn handle(deps: &Deps, envelope: &JobEnvelope, redelivered: bool) -> JobResult {
    if redelivered && let Some(stored) = stored_result(deps, envelope.id).await {
        return stored;
    }
    match &envelope.job {
        Job::Login(job) => login(deps, envelope, job, redelivered).await,
        Job::Discover(job) => discover(deps, job.provider.as_str()).await,
        Job::RequestToken(job) => oauth1::request_token(deps, job).await,
        Job::Associate(job) => associate(deps, envelope, job, redelivered).await,
        Job::Revoke(job) => revocation::revoke(deps, job).await,
        Job::Refresh(job) => refresh::handle(deps, envelope.id, job).await,
        Job::CampaignPlan(job) => campaign::plan(deps, job).await,
        Job::CampaignPage(job) => campaign::page(deps, envelope.id, job).await,
    }
}

async fn stored_result(deps: &Deps, id: Uuid) -> Option<JobResult> {
    match deps.store.find_job(id).await {
        Ok(Some(record)) if record.status != JobStatus::Pending => record.result,
        Ok(_) => None,
        Err(e) => {
            warn!(error = %e, "could not look up a redelivered job");
            None
        }
    }
}

async fn discover(deps: &Deps, provider: &str) -> JobResult {
    let Some(config) = deps.catalogue.get(provider) else {
        return JobResult::Failed(JobError::InvalidProvider);
    };
    match deps.providers.discover(config).await {
        Ok(endpoints) => JobResult::Discovered(endpoints),
        Err(e) => {
            warn!(provider, error = %e, "discovery failed");
            JobResult::Failed(WorkerError::from(e).to_job_error())
        }
    }
}

/// How long a redelivered job whose credential the provider refused waits
/// for its first run's outcome (a first run on a worker that died never
/// comes: the wait is kept short, polled with backoff).
const FIRST_RUN_WAIT: Duration = Duration::from_secs(20);

/// A redelivered job whose credential the provider refused may have been
/// used by this job's first run, still going on (its worker lost the
/// broker, not the job) or finished meanwhile: its outcome, once stored,
/// is this job's. `None` after [`FIRST_RUN_WAIT`] or for any other error.
async fn first_run_outcome(
    deps: &Deps,
    job_id: Uuid,
    redelivered: bool,
    error: &WorkerError,
) -> Option<JobResult> {
    if !redelivered || !matches!(error, WorkerError::Job(JobError::InvalidCredentials)) {
        return None;
    }
    let deadline = std::time::Instant::now() + FIRST_RUN_WAIT;
    let mut pause = Duration::from_millis(100);
    loop {
        match deps.store.find_job(job_id).await {
            Ok(Some(record)) if record.status != JobStatus::Pending => return record.result,
            _ if std::time::Instant::now() > deadline => return None,
            _ => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
        }
    }
}

async fn login(
    deps: &Deps,
    envelope: &JobEnvelope,
    job: &LoginJob,
    redelivered: bool,
) -> JobResult {
    let job_id = envelope.id;
    let outcome = run_login(deps, job_id, envelope.request_id.as_deref(), job).await;
    let outcome = match outcome {
        Err(e) => match first_run_outcome(deps, job_id, redelivered, &e).await {
            Some(first) => return first,
            None => Err(e),
        },
        ok => ok,
    };
    let provider = job.provider.as_str();
    match outcome {
        Ok(result) => {
            let event = if result.is_new { "signup" } else { "login" };
            metrics::counter!("socialauth_logins_total", "provider" => provider.to_owned(), "kind" => event)
                .increment(1);
            JobResult::Login(result)
        }
        Err(e) => failed(deps, job_id, provider, e).await,
    }
}

async fn run_login(
    deps: &Deps,
    job_id: Uuid,
    request_id: Option<&str>,
    job: &LoginJob,
) -> Result<socialauth_common::jobs::LoginResult, WorkerError> {
    let provider = deps
        .catalogue
        .get(job.provider.as_str())
        .ok_or(JobError::InvalidProvider)?;
    // The provider step runs once: a code is single-use, so only the store
    // part below is retried.
    let fetched =
        match pipeline::fetch_profile(deps, provider, job_id, &job.credential, None).await? {
            Obtained::Fresh(fetched) => *fetched,
            Obtained::Replay(first) => return replay::outcome_of(deps, job_id, first).await,
        };
    let ctx = std::sync::Arc::new(pipeline::context(
        job_id, request_id, provider, fetched, job,
    )?);
    // A write retried after a failure that may have come after its commit
    // (a connection lost mid-answer) first looks for its own result: the
    // login is then done, with its token, and is not made twice.
    let attempts = std::sync::atomic::AtomicU32::new(0);
    let write = (|| async {
        if attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed) > 0
            && let Some(JobResult::Login(done)) = stored_result(deps, job_id).await
        {
            let job = done.token_job.unwrap_or(job_id);
            let now = now_ms();
            let issued =
                match reissue::app_token(&deps.secrets, deps.store.as_ref(), job, now).await? {
                    Some((issued, _)) => issued,
                    None => deps.secrets.app_token(job),
                };
            return Ok(socialauth_common::jobs::LoginResult {
                token: Some(issued.token),
                ..done
            });
        }
        pipeline::run(deps, &ctx).await
    })
    .retry(backoff(deps))
    .when(WorkerError::is_retryable);
    within_outage(deps, write).await
}

async fn associate(
    deps: &Deps,
    envelope: &JobEnvelope,
    job: &AssociateJob,
    redelivered: bool,
) -> JobResult {
    let job_id = envelope.id;
    let outcome = run_association(deps, job_id, envelope.request_id.as_deref(), job).await;
    let outcome = match outcome {
        Err(e) => match first_run_outcome(deps, job_id, redelivered, &e).await {
            Some(first) => return first,
            None => Err(e),
        },
        ok => ok,
    };
    let provider = job.provider.as_str().to_owned();
    match outcome {
        Ok(result) => {
            let event = if result.created {
                "linked"
            } else {
                "already_linked"
            };
            metrics::counter!("socialauth_associations_total", "provider" => provider, "outcome" => event)
                .increment(1);
            JobResult::Associated(result)
        }
        Err(e) => {
            metrics::counter!("socialauth_associations_total", "provider" => provider.clone(), "outcome" => "refused")
                .increment(1);
            failed(deps, job_id, &provider, e).await
        }
    }
}

/// Step 1 as for a login (an OAuth 1.0a request token must have been
/// obtained for this user), then the association. A stored result answers
/// a write retried after a failure that may have come after its commit.
async fn run_association(
    deps: &Deps,
    job_id: Uuid,
    request_id: Option<&str>,
    job: &AssociateJob,
) -> Result<AssociationResult, WorkerError> {
    let provider = deps
        .catalogue
        .get(job.provider.as_str())
        .ok_or(JobError::InvalidProvider)?;
    // An association comes with the provider's answer, never a partial
    // login or a retry of another job.
    if !matches!(
        job.credential,
        LoginCredential::AuthorizationCode { .. } | LoginCredential::OAuth1 { .. }
    ) {
        return Err(JobError::InvalidCredentials.into());
    }
    let fetched =
        match pipeline::fetch_profile(deps, provider, job_id, &job.credential, Some(job.user_id))
            .await?
        {
            Obtained::Fresh(fetched) => *fetched,
            Obtained::Replay(_) => return Err(JobError::InvalidCredentials.into()),
        };
    let ctx = pipeline::association_context(job_id, request_id, provider, fetched)?;
    let attempts = std::sync::atomic::AtomicU32::new(0);
    let write = (|| async {
        if attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed) > 0
            && let Some(JobResult::Associated(done)) = stored_result(deps, job_id).await
        {
            return Ok(done);
        }
        pipeline::associate(deps, &ctx, job.user_id).await
    })
    .retry(backoff(deps))
    .when(WorkerError::is_retryable);
    within_outage(deps, write).await
}

/// A job that ended in `e`: logged unless it is an outcome the client is
/// told about, and kept so a poll finds it.
async fn failed(deps: &Deps, job_id: Uuid, provider: &str, e: WorkerError) -> JobResult {
    if !matches!(e, WorkerError::Job(_)) {
        warn!(provider, error = %e, "job failed");
    }
    let failed = JobResult::Failed(e.to_job_error());
    record_failure(deps, job_id, JobKind::Login, &failed).await;
    failed
}

/// Keeps a failed job's outcome so a poll finds it.
pub(crate) async fn record_failure(deps: &Deps, job_id: Uuid, kind: JobKind, failed: &JobResult) {
    let write = || async {
        let mut tx = deps.store.begin().await?;
        tx.upsert_job_result(job_id, kind, JobStatus::Failed, failed, 1, now_ms())
            .await?;
        tx.commit().await
    };
    if let Err(e) = write
        .retry(backoff(deps))
        .when(|e: &socialauth_common::store::StoreError| e.is_transient())
        .await
    {
        warn!(error = %e, "could not record a failed job");
    }
}

/// Retries of a transient store failure: from 50 ms growing to 1 s apart,
/// for `store_outage` in all (a database restarting or failing over takes
/// seconds), at least `max_attempts` tries.
/// `work` (retries of a store write) bounded in wall-clock time as well:
/// the backoff bounds its pauses, not the attempts between them (a
/// connection attempt may wait for the pool's timeout each time).
pub(crate) async fn within_outage<T>(
    deps: &Deps,
    work: impl std::future::Future<Output = Result<T, WorkerError>>,
) -> Result<T, WorkerError> {
    let bound = deps.store_outage.saturating_add(Duration::from_secs(5));
    tokio::time::timeout(bound, work).await.unwrap_or_else(|_| {
        Err(WorkerError::Store(
            socialauth_common::store::StoreError::Unavailable(
                "the database did not answer within [worker] store_outage_secs".into(),
            ),
        ))
    })
}

pub(crate) fn backoff(deps: &Deps) -> ExponentialBuilder {
    let floor = deps.max_attempts.saturating_sub(1) as usize;
    let by_time = (deps.store_outage.as_millis() / 500) as usize;
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_secs(1))
        .with_max_times(floor.max(by_time))
        .with_total_delay(Some(deps.store_outage.max(Duration::from_millis(200))))
        .with_jitter()
}
