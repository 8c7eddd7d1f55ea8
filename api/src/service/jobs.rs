//! Publishing a job and waiting for its reply; polling a job.

use crate::error::{ApiError, Flow, job_error_parts};
use crate::service::views::{JobStatusView, SocialAccountView, TokenResponse};
use crate::state::AppState;
use backon::{ExponentialBuilder, Retryable};
use socialauth_common::jobs::{Job, JobEnvelope, JobError, JobKind, JobResult, LoginResult};
use socialauth_common::store::{JobStatus, StoreError};
use socialauth_common::{now_ms, reissue};
use std::time::Duration;
use uuid::Uuid;

/// How long after it finished a job answered with 202 can be polled; its
/// token (or partial token) is shown to the first poll only.
pub const POLL_WINDOW_MS: i64 = 10 * 60 * 1000;

/// How long a write a request cannot do without (a 202's pending job, a
/// login's state) waits out a database that does not answer.
const STORE_PATIENCE: Duration = Duration::from_secs(10);

/// `work` (retries of such a write) bounded in wall-clock time: the
/// backoff bounds its pauses, not the attempts between them.
pub async fn patiently<T>(
    work: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(STORE_PATIENCE.saturating_add(Duration::from_secs(2)), work)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "the database did not answer in time".into(),
            ))
        })
}

/// Retries of such a write: 50 ms growing to 1 s apart, for
/// [`STORE_PATIENCE`] in all. Only for writes that may be made twice.
pub fn patience() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_secs(1))
        .with_max_times(40)
        .with_total_delay(Some(STORE_PATIENCE))
        .with_jitter()
}

/// A job's fate from the caller's side.
// A value returned once per request and matched at once: boxing the
// result would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Submitted {
    /// The worker replied in time (job id, result).
    Done(Uuid, JobResult),
    /// It did not: the client polls `/auth/jobs/{id}`.
    Accepted(Uuid),
}

/// One publish, one wait. After `reply_timeout` the job is recorded as
/// pending (unless the worker already wrote it) and the caller answers 202.
pub async fn submit(
    state: &AppState,
    job: Job,
    request_id: Option<String>,
) -> Result<Submitted, ApiError> {
    submit_envelope(state, JobEnvelope::new(job, request_id)).await
}

/// [`submit`] with the envelope (and so the job id) made by the caller.
pub async fn submit_envelope(
    state: &AppState,
    envelope: JobEnvelope,
) -> Result<Submitted, ApiError> {
    let kind = envelope.kind();
    let kind_label = kind.as_str();
    let waiter = state.queue.submit(&envelope).await?;
    metrics::counter!("socialauth_jobs_published_total", "kind" => kind_label).increment(1);
    match waiter.wait(state.reply_timeout()).await {
        Some(result) => Ok(Submitted::Done(envelope.id, result)),
        None => {
            // The job is in the queue and will be done: a database that
            // does not answer right now (restarting) is waited for a
            // little rather than answering 503 for an accepted job.
            let now = now_ms();
            let insert = || state.store.insert_pending_job(envelope.id, kind, now);
            patiently(insert.retry(patience()).when(StoreError::is_transient)).await?;
            metrics::counter!("socialauth_jobs_accepted_total", "kind" => kind_label).increment(1);
            Ok(Submitted::Accepted(envelope.id))
        }
    }
}

/// A login result whose token is not in it (a redelivered job's stored
/// copy, or a poll): the token the job issued, made again with the key
/// that made it ([`reissue`]) — the worker stored its hash, no other token
/// is made. One no longer in the store is made with the current key.
pub async fn with_token(
    state: &AppState,
    job_id: Uuid,
    mut result: LoginResult,
) -> Result<LoginResult, ApiError> {
    if result.token.is_none() {
        let job = result.token_job.unwrap_or(job_id);
        let issued =
            match reissue::app_token(&state.secrets, state.store.as_ref(), job, now_ms()).await? {
                Some((issued, _)) => issued,
                None => state.secrets.app_token(job),
            };
        result.token = Some(issued.token);
    }
    Ok(result)
}

/// A resumable failure with its partial token, made again likewise when
/// it does not carry it.
pub async fn with_partial_token(state: &AppState, e: JobError) -> Result<JobError, ApiError> {
    let Some(job) = e.missing_partial_token() else {
        return Ok(e);
    };
    let issued =
        match reissue::partial_token(&state.secrets, state.store.as_ref(), job, now_ms()).await? {
            Some(issued) => issued,
            None => state.secrets.partial_token(job),
        };
    Ok(e.with_partial_token(issued.token))
}

/// `GET /auth/jobs/{id}`, for [`POLL_WINDOW_MS`] after the job finished
/// (later: not found). A finished login's token, or a stopped one's
/// partial token, is shown to the first poll only; later polls show the
/// outcome without it.
pub async fn poll(state: &AppState, raw_id: &str) -> Result<JobStatusView, ApiError> {
    let id = Uuid::parse_str(raw_id).map_err(|_| ApiError::NotFound)?;
    let job = state.store.find_job(id).await?.ok_or(ApiError::NotFound)?;
    let now = now_ms();
    if job.status != JobStatus::Pending && now.saturating_sub(job.updated_at) > POLL_WINDOW_MS {
        return Err(ApiError::NotFound);
    }
    let first_poll = || async {
        Ok::<_, ApiError>(
            job.delivered_at.is_none() && state.store.take_job_delivery(id, now).await?,
        )
    };
    let view = match (job.status, job.result.clone()) {
        (JobStatus::Succeeded, Some(JobResult::Login(result))) if job.kind == JobKind::Login => {
            let shown = if first_poll().await? {
                with_token(state, id, result).await?
            } else {
                result
            };
            JobStatusView {
                status: "succeeded",
                result: Some(TokenResponse::from(&shown)),
                social_account: None,
                error: None,
            }
        }
        (JobStatus::Failed, Some(JobResult::Failed(e))) => {
            let shown = if e.partial_job().is_some() && first_poll().await? {
                with_partial_token(state, e).await?
            } else {
                e
            };
            JobStatusView {
                status: "failed",
                result: None,
                social_account: None,
                error: Some(job_error_parts(&shown, Flow::Djoser).1),
            }
        }
        (JobStatus::Succeeded, Some(JobResult::Associated(done))) => JobStatusView {
            status: "succeeded",
            result: None,
            social_account: Some(SocialAccountView::from(&done.account)),
            error: None,
        },
        (JobStatus::Pending, _) => JobStatusView {
            status: "pending",
            result: None,
            social_account: None,
            error: None,
        },
        (status, _) => JobStatusView {
            status: status.as_str(),
            result: None,
            social_account: None,
            error: None,
        },
    };
    Ok(view)
}
