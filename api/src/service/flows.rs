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

/// Microsoft's tenants whose logins come from many issuers.
const MULTI_TENANT: [&str; 3] = ["common", "organizations", "consumers"];

/// Checks `redirect_uri` against the provider's allow-list, else the
/// global one.
pub fn redirect_uri(
    state: &AppState,
    provider: &ProviderConfig,
    raw: Option<&str>,
) -> Result<RedirectUri, ApiError> {
    let raw = raw
        .filter(|r| !r.is_empty())
        .ok_or(ApiError::NonField("redirect_uri_required"))?;
    let allowed = provider
        .allowed_redirect_uris
        .as_ref()
        .unwrap_or(&state.settings.security.allowed_redirect_uris);
    RedirectUri::parse_allowed(raw, allowed).ok_or(ApiError::NonField("redirect_uri_not_allowed"))
}

/// RFC 9207: the `iss` of an authorization response, when there is one,
/// must be the provider's issuer (a response of another provider, sent
/// here by a mix-up attack, is refused before its code goes anywhere);
/// a provider with `require_iss` must send it. A provider whose issuer we
/// do not know — a plain OAuth2 provider without `issuer`, a multi-tenant
/// one (`microsoft` with `common`: each tenant answers with its own) —
/// cannot be checked, and with `require_iss` is refused. 400
/// `invalid_iss`.
pub fn check_iss(provider: &ProviderConfig, iss: Option<&str>) -> Result<(), ApiError> {
    let known = provider.issuer.as_ref().filter(|_| {
        provider
            .tenant
            .as_deref()
            .is_none_or(|t| !MULTI_TENANT.contains(&t))
    });
    match (iss.filter(|i| !i.is_empty()), known) {
        (_, None) if provider.require_iss => Err(ApiError::NonField("invalid_iss")),
        (Some(iss), Some(issuer)) => {
            let ours = issuer.as_str();
            // A configured issuer may have gained a `/` when it was parsed.
            if iss == ours || Some(iss) == ours.strip_suffix('/') {
                Ok(())
            } else {
                Err(ApiError::NonField("invalid_iss"))
            }
        }
        (None, _) if provider.require_iss => Err(ApiError::NonField("invalid_iss")),
        _ => Ok(()),
    }
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
