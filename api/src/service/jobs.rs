//! Publishing a job and waiting for its reply; polling a job.

use crate::error::{ApiError, Flow, job_error_parts};
use crate::service::views::{JobStatusView, TokenResponse};
use crate::state::AppState;
use socialauth_common::crypto::new_app_token;
use socialauth_common::jobs::{Job, JobEnvelope, JobKind, JobResult, LoginResult};
use socialauth_common::now_ms;
use socialauth_common::store::JobStatus;
use uuid::Uuid;

/// A job's fate from the caller's side.
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
    let envelope = JobEnvelope::new(job, request_id);
    let kind = envelope.kind();
    let kind_label = kind.as_str();
    let waiter = state.queue.submit(&envelope).await?;
    metrics::counter!("socialauth_jobs_published_total", "kind" => kind_label).increment(1);
    match waiter.wait(state.reply_timeout()).await {
        Some(result) => Ok(Submitted::Done(envelope.id, result)),
        None => {
            state
                .store
                .insert_pending_job(envelope.id, kind, now_ms())
                .await?;
            metrics::counter!("socialauth_jobs_accepted_total", "kind" => kind_label).increment(1);
            Ok(Submitted::Accepted(envelope.id))
        }
    }
}

/// A login result whose token was not in the reply (a redelivered job's
/// stored copy, or a poll): issue one, once per job.
pub async fn deliver_token(
    state: &AppState,
    job_id: Uuid,
    mut result: LoginResult,
) -> Result<Option<LoginResult>, ApiError> {
    if result.token.is_some() {
        return Ok(Some(result));
    }
    let now = now_ms();
    if !state.store.take_job_delivery(job_id, now).await? {
        return Ok(None);
    }
    let (token, hash) = new_app_token();
    let ttl = state.settings.security.token_ttl_secs;
    let expires_at = (ttl > 0).then(|| now.saturating_add(ttl.saturating_mul(1000)));
    state
        .store
        .insert_auth_token(&hash, result.user.id, now, expires_at)
        .await?;
    result.token = Some(token);
    Ok(Some(result))
}

/// `GET /auth/jobs/{id}`. A finished login's token is handed out by the
/// first poll only; later polls show the outcome without it.
pub async fn poll(state: &AppState, raw_id: &str) -> Result<JobStatusView, ApiError> {
    let id = Uuid::parse_str(raw_id).map_err(|_| ApiError::NotFound)?;
    let job = state.store.find_job(id).await?.ok_or(ApiError::NotFound)?;
    let view = match (job.status, job.result) {
        (JobStatus::Succeeded, Some(JobResult::Login(result))) if job.kind == JobKind::Login => {
            let shown = deliver_token(state, id, result.clone())
                .await?
                .unwrap_or(result);
            JobStatusView {
                status: "succeeded",
                result: Some(TokenResponse::from(&shown)),
                error: None,
            }
        }
        (JobStatus::Failed, Some(JobResult::Failed(e))) => JobStatusView {
            status: "failed",
            result: None,
            error: Some(job_error_parts(&e, Flow::Djoser).1),
        },
        (JobStatus::Pending, _) => JobStatusView {
            status: "pending",
            result: None,
            error: None,
        },
        (status, _) => JobStatusView {
            status: status.as_str(),
            result: None,
            error: None,
        },
    };
    Ok(view)
}
