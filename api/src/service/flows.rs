//! What both login flows (the djoser redirect flow and `/social-auth`)
//! share: the provider and redirect URI checks, the optional email, OAuth
//! 1.0a step 1 through a worker, and a login job published and answered.

use crate::error::{ApiError, Flow};
use crate::service::jobs::{Submitted, submit, submit_envelope, with_partial_token, with_token};
use crate::state::AppState;
use socialauth_common::catalogue::ProviderConfig;
use socialauth_common::jobs::{
    Job, JobEnvelope, JobError, JobResult, LoginResult, RequestTokenJob, RequestTokenResult,
};
use socialauth_common::types::{Email, RedirectUri, UserId};
use std::sync::Arc;
use uuid::Uuid;

/// Looks a provider up by its URL segment.
pub fn provider(state: &AppState, name: &str) -> Result<Arc<ProviderConfig>, ApiError> {
    state
        .catalogue
        .get(name)
        .cloned()
        .ok_or(ApiError::InvalidProvider)
}

/// Checks `redirect_uri` against the allow-list.
pub fn redirect_uri(state: &AppState, raw: Option<&str>) -> Result<RedirectUri, ApiError> {
    let raw = raw
        .filter(|r| !r.is_empty())
        .ok_or(ApiError::NonField("redirect_uri_required"))?;
    RedirectUri::parse_allowed(raw, &state.settings.security.allowed_redirect_uris)
        .ok_or(ApiError::NonField("redirect_uri_not_allowed"))
}

/// OAuth 1.0a step 1, through a worker: a request token whose secret the
/// store keeps, and the URL that sends the user to the provider with it;
/// bound to `for_user` for an association.
pub async fn request_token(
    state: &AppState,
    provider: &ProviderConfig,
    callback: &RedirectUri,
    request_id: Option<String>,
    flow: Flow,
    for_user: Option<UserId>,
) -> Result<RequestTokenResult, ApiError> {
    let job = Job::RequestToken(RequestTokenJob {
        provider: provider.name.clone(),
        callback: callback.as_str().to_owned(),
        user_id: for_user,
    });
    match submit(state, job, request_id).await? {
        Submitted::Done(_, JobResult::RequestToken(token)) => Ok(token),
        Submitted::Done(_, JobResult::Failed(e)) => Err(ApiError::Job(e, flow)),
        _ => Err(ApiError::Job(JobError::ProviderUnavailable, flow)),
    }
}

/// A login's fate: the worker's answer, or a job to poll.
pub enum LoginOutcome {
    Done(LoginResult),
    Accepted(Uuid),
}

/// An optional email field: absent or empty is `None`, invalid is a 400.
pub fn parse_email(raw: Option<&str>) -> Result<Option<Email>, ApiError> {
    match raw.filter(|e| !e.is_empty()) {
        Some(raw) => Email::parse(raw)
            .map(Some)
            .ok_or_else(|| ApiError::field("email", "Enter a valid email address.")),
        None => Ok(None),
    }
}

/// Publishes a login job and turns its reply into an outcome.
pub async fn finish(
    state: &AppState,
    job: Job,
    request_id: Option<String>,
    flow: Flow,
) -> Result<LoginOutcome, ApiError> {
    finish_job(state, JobEnvelope::new(job, request_id), flow).await
}

/// [`finish`] with the envelope made by the caller. A redelivered job's
/// stored copy carries no token: the job's own is derived again.
pub async fn finish_job(
    state: &AppState,
    envelope: JobEnvelope,
    flow: Flow,
) -> Result<LoginOutcome, ApiError> {
    match submit_envelope(state, envelope).await? {
        Submitted::Accepted(id) => Ok(LoginOutcome::Accepted(id)),
        Submitted::Done(_, JobResult::Failed(e)) => {
            Err(ApiError::Job(with_partial_token(state, e).await?, flow))
        }
        Submitted::Done(id, JobResult::Login(result)) => {
            Ok(LoginOutcome::Done(with_token(state, id, result).await?))
        }
        Submitted::Done(
            _,
            JobResult::Discovered(_)
            | JobResult::RequestToken(_)
            | JobResult::Associated(_)
            | JobResult::Revoked(_)
            | JobResult::Refreshed(_)
            | JobResult::CampaignWork(_),
        ) => Err(ApiError::Job(JobError::Internal, flow)),
    }
}
