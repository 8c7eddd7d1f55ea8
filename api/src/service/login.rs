//! `POST /auth/o/{provider}/`: consume the state, publish the login job,
//! return the worker's result or a job to poll.

use crate::error::{ApiError, Flow};
use crate::service::authorize::provider;
use crate::service::jobs::{Submitted, deliver_token, submit};
use crate::state::AppState;
use serde::Deserialize;
use socialauth_common::catalogue::{Protocol, ProviderConfig};
use socialauth_common::crypto::hash_token;
use socialauth_common::jobs::{Job, JobError, JobResult, LoginCredential, LoginJob, LoginResult};
use socialauth_common::now_ms;
use socialauth_common::secret::Secret;
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
    let saved = state
        .store
        .take_oauth_state(&hash_token(state_value.expose()), now)
        .await?
        .filter(|s| s.provider == provider.name.as_str())
        .ok_or(ApiError::NonField("invalid_state"))?;
    if saved.expires_at <= now {
        return Err(ApiError::NonField("state_expired"));
    }

    let job = Job::Login(LoginJob {
        provider: provider.name.as_str().to_owned(),
        credential: LoginCredential::AuthorizationCode {
            code,
            redirect_uri: saved.redirect_uri,
            pkce_verifier: saved.pkce_verifier.map(Secret::new),
            nonce: saved.nonce.map(Secret::new),
            state_consumed: true,
        },
        email: email.map(|e| e.as_str().to_owned()),
        referral_code: form.referral_code.filter(|r| !r.is_empty()),
    });
    finish(state, job, request_id, Flow::Djoser).await
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
    match submit(state, job, request_id).await? {
        Submitted::Accepted(id) => Ok(LoginOutcome::Accepted(id)),
        Submitted::Done(_, JobResult::Failed(e)) => Err(ApiError::Job(e, flow)),
        Submitted::Done(id, JobResult::Login(result)) => {
            match result.token {
                Some(_) => Ok(LoginOutcome::Done(result)),
                // A redelivered job's stored copy carries no token.
                None => deliver_token(state, id, result)
                    .await?
                    .map(LoginOutcome::Done)
                    .ok_or(ApiError::Job(JobError::Internal, flow)),
            }
        }
        Submitted::Done(_, JobResult::Discovered(_) | JobResult::RequestToken(_)) => {
            Err(ApiError::Job(JobError::Internal, flow))
        }
    }
}
