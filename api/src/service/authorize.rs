//! `GET /auth/o/{provider}/`: a server-side state (single use, expiring),
//! PKCE S256 and an OIDC nonce, and the provider's authorization URL.

use crate::error::ApiError;
use crate::error::Flow;
use crate::service::jobs::{Submitted, submit};
use crate::state::AppState;
use socialauth_common::catalogue::{Protocol, ProviderConfig};
use socialauth_common::crypto::{hash_token, pkce_challenge, random_token};
use socialauth_common::jobs::{
    DiscoverJob, Job, JobError, JobResult, RequestTokenJob, RequestTokenResult,
};
use socialauth_common::now_ms;
use socialauth_common::store::NewOAuthState;
use socialauth_common::types::RedirectUri;
use std::sync::Arc;
use url::Url;

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

pub async fn authorization_url(
    state: &AppState,
    provider_name: &str,
    raw_redirect_uri: Option<&str>,
    request_id: Option<String>,
) -> Result<String, ApiError> {
    let provider = provider(state, provider_name)?;
    let redirect_uri = redirect_uri(state, raw_redirect_uri)?;
    if provider.protocol == Protocol::OAuth1 {
        let token =
            request_token(state, &provider, &redirect_uri, request_id, Flow::Djoser).await?;
        return Ok(token.authorization_url);
    }
    let endpoint = authorize_endpoint(state, &provider, request_id).await?;

    let state_value = random_token(32);
    let verifier = provider.pkce.then(|| random_token(32));
    let nonce = (provider.protocol == Protocol::Oidc).then(|| random_token(16));
    let now = now_ms();
    state
        .store
        .insert_oauth_state(&NewOAuthState {
            state_hash: hash_token(&state_value),
            provider: provider.name.as_str().to_owned(),
            redirect_uri: redirect_uri.as_str().to_owned(),
            pkce_verifier: verifier.clone(),
            nonce: nonce.clone(),
            created_at: now,
            expires_at: now.saturating_add(state.settings.security.state_ttl_secs * 1000),
        })
        .await?;

    let mut url = endpoint;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &provider.client_id)
            .append_pair("redirect_uri", redirect_uri.as_str())
            .append_pair("state", &state_value);
        if !provider.scopes.is_empty() {
            q.append_pair("scope", &provider.scopes.join(" "));
        }
        if let Some(v) = &verifier {
            q.append_pair("code_challenge", &pkce_challenge(v))
                .append_pair("code_challenge_method", "S256");
        }
        if let Some(n) = &nonce {
            q.append_pair("nonce", n);
        }
        for (k, v) in &provider.authorize_params {
            q.append_pair(k, v);
        }
    }
    Ok(url.into())
}

/// OAuth 1.0a step 1, through a worker: a request token whose secret the
/// store keeps, and the URL that sends the user to the provider with it.
pub async fn request_token(
    state: &AppState,
    provider: &ProviderConfig,
    callback: &RedirectUri,
    request_id: Option<String>,
    flow: Flow,
) -> Result<RequestTokenResult, ApiError> {
    let job = Job::RequestToken(RequestTokenJob {
        provider: provider.name.as_str().to_owned(),
        callback: callback.as_str().to_owned(),
    });
    match submit(state, job, request_id).await? {
        Submitted::Done(_, JobResult::RequestToken(token)) => Ok(token),
        Submitted::Done(_, JobResult::Failed(e)) => Err(ApiError::Job(e, flow)),
        _ => Err(ApiError::Job(JobError::ProviderUnavailable, flow)),
    }
}

/// The configured authorization endpoint, or the one a worker found by
/// OIDC discovery (the api makes no provider call itself).
async fn authorize_endpoint(
    state: &AppState,
    provider: &ProviderConfig,
    request_id: Option<String>,
) -> Result<Url, ApiError> {
    if let Some(url) = &provider.authorize_url {
        return Ok(url.clone());
    }
    let name = provider.name.as_str();
    let found = match state.endpoints.get(name) {
        Some(url) => url,
        None => {
            let job = Job::Discover(DiscoverJob {
                provider: name.to_owned(),
            });
            let url = match submit(state, job, request_id).await? {
                Submitted::Done(_, JobResult::Discovered(d)) => d.authorization_endpoint,
                Submitted::Done(_, JobResult::Failed(JobError::InvalidProvider)) => {
                    return Err(ApiError::InvalidProvider);
                }
                _ => {
                    return Err(ApiError::Job(JobError::ProviderUnavailable, Flow::Djoser));
                }
            };
            state.endpoints.put(name, url.clone());
            url
        }
    };
    Url::parse(&found).map_err(|_| ApiError::Job(JobError::ProviderUnavailable, Flow::Djoser))
}
