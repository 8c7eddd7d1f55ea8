//! `POST /auth/o/{provider}/`: consume the state, publish the login job,
//! return the worker's result or a job to poll.

use crate::error::{ApiError, Flow};
use crate::service::authorize::provider;
use crate::service::jobs::{Submitted, submit_envelope, with_partial_token, with_token};
use crate::state::AppState;
use serde::Deserialize;
use socialauth_common::catalogue::{Protocol, ProviderConfig};
use socialauth_common::crypto::hash_token;
use socialauth_common::jobs::{
    Job, JobEnvelope, JobError, JobResult, LoginCredential, LoginJob, LoginResult,
};
use socialauth_common::now_ms;
use socialauth_common::redemption::{FirstUse, retry_of};
use socialauth_common::secret::Secret;
use socialauth_common::store::OAuthStateTake;
use socialauth_common::types::Email;
use utoipa::ToSchema;
use uuid::Uuid;

/// The provider's answer in the djoser flow.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct CallbackForm {
    #[schema(value_type = Option<String>)]
    pub code: Option<Secret>,
    #[schema(value_type = Option<String>)]
    pub state: Option<Secret>,
    pub email: Option<String>,
    pub referral_code: Option<String>,
    /// OAuth 1.0a providers answer with these instead of `code` + `state`.
    pub oauth_token: Option<String>,
    #[schema(value_type = Option<String>)]
    pub oauth_verifier: Option<Secret>,
}

pub enum LoginOutcome {
    Done(LoginResult),
    Accepted(Uuid),
}

pub async fn complete(
    state: &AppState,
    provider_name: &str,
    form: CallbackForm,
    request_id: Option<String>,
) -> Result<LoginOutcome, ApiError> {
    let provider = provider(state, provider_name)?;
    if provider.protocol == Protocol::OAuth1 {
        return complete_oauth1(state, &provider, form, request_id).await;
    }
    let email = parse_email(form.email.as_deref())?;
    let (code, state_value) = match (form.code, form.state) {
        (Some(c), Some(s)) if !c.expose().is_empty() && !s.expose().is_empty() => (c, s),
        (c, s) => {
            let mut missing = Vec::new();
            if c.is_none_or(|c| c.expose().is_empty()) {
                missing.push("code");
            }
            if s.is_none_or(|s| s.expose().is_empty()) {
                missing.push("state");
            }
            return Err(ApiError::required(&missing));
        }
    };
    let now = now_ms();
    let job_id = Uuid::new_v4();
    let state_hash = hash_token(state_value.expose());
    let code_hash = hash_token(code.expose());
    let take = OAuthStateTake {
        state_hash: &state_hash,
        now,
        job_id,
        code_hash: &code_hash,
    };
    let credential = match state.store.take_oauth_state(&take).await? {
        Some(saved) if saved.provider == provider.name.as_str() => {
            if saved.expires_at <= now {
                return Err(ApiError::NonField("state_expired"));
            }
            LoginCredential::AuthorizationCode {
                code,
                redirect_uri: saved.redirect_uri,
                pkce_verifier: saved.pkce_verifier.map(Secret::new),
                nonce: saved.nonce.map(Secret::new),
                state_consumed: true,
            }
        }
        Some(_) => return Err(ApiError::NonField("invalid_state")),
        // Taken already: a double submit of the same code gets the first
        // outcome.
        None => LoginCredential::Retry {
            first_job: retry_of_taken_state(state, &provider, &state_hash, &code_hash, now)
                .await?
                .ok_or(ApiError::NonField("invalid_state"))?,
        },
    };
    let job = Job::Login(LoginJob {
        provider: provider.name.as_str().to_owned(),
        credential,
        email: email.map(|e| e.as_str().to_owned()),
        referral_code: form.referral_code.filter(|r| !r.is_empty()),
    });
    finish_job(
        state,
        JobEnvelope::with_id(job_id, job, request_id),
        Flow::Djoser,
    )
    .await
}

/// The job whose outcome answers a second POST of a taken state
/// ([`retry_of`]): the same code, on the same provider, within the window.
async fn retry_of_taken_state(
    state: &AppState,
    provider: &ProviderConfig,
    state_hash: &str,
    code_hash: &str,
    now: i64,
) -> Result<Option<Uuid>, ApiError> {
    let Some(taken) = state.store.find_taken_oauth_state(state_hash).await? else {
        return Ok(None);
    };
    let Some(first) = taken.taken_by else {
        return Ok(None);
    };
    let same_request =
        taken.provider == provider.name.as_str() && taken.code_hash.as_deref() == Some(code_hash);
    Ok(retry_of(
        FirstUse {
            job_id: first,
            at: taken.taken_at,
            same_request,
        },
        now,
        state.settings.security.retry_window_ms(),
    ))
}

/// The djoser flow's second step for OAuth 1.0a: the request token stands
/// in for `state` (server-side, single use).
async fn complete_oauth1(
    state: &AppState,
    provider: &ProviderConfig,
    form: CallbackForm,
    request_id: Option<String>,
) -> Result<LoginOutcome, ApiError> {
    let email = parse_email(form.email.as_deref())?;
    let token = form.oauth_token.filter(|t| !t.is_empty());
    let verifier = form.oauth_verifier.filter(|v| !v.expose().is_empty());
    let (Some(oauth_token), Some(oauth_verifier)) = (token.clone(), verifier.clone()) else {
        let mut missing = Vec::new();
        if token.is_none() {
            missing.push("oauth_token");
        }
        if verifier.is_none() {
            missing.push("oauth_verifier");
        }
        return Err(ApiError::required(&missing));
    };
    let job = Job::Login(LoginJob {
        provider: provider.name.as_str().to_owned(),
        credential: LoginCredential::OAuth1 {
            oauth_token,
            oauth_token_secret: None,
            oauth_verifier,
        },
        email: email.map(|e| e.as_str().to_owned()),
        referral_code: form.referral_code.filter(|r| !r.is_empty()),
    });
    finish(state, job, request_id, Flow::Djoser).await
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
async fn finish_job(
    state: &AppState,
    envelope: JobEnvelope,
    flow: Flow,
) -> Result<LoginOutcome, ApiError> {
    match submit_envelope(state, envelope).await? {
        Submitted::Accepted(id) => Ok(LoginOutcome::Accepted(id)),
        Submitted::Done(_, JobResult::Failed(e)) => {
            Err(ApiError::Job(with_partial_token(state, e), flow))
        }
        Submitted::Done(id, JobResult::Login(result)) => {
            Ok(LoginOutcome::Done(with_token(state, id, result)))
        }
        Submitted::Done(_, JobResult::Discovered(_) | JobResult::RequestToken(_)) => {
            Err(ApiError::Job(JobError::Internal, flow))
        }
    }
}
