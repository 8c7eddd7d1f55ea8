//! OAuth 1.0a step 1: a request token from the provider; its secret is kept
//! sealed in the store, keyed by `oauth_token`, so any worker and any api
//! instance can finish the flow.

use crate::deps::Deps;
use crate::error::WorkerError;
use crate::providers::ProviderClient;
use socialauth_common::catalogue::Protocol;
use socialauth_common::crypto::Binding;
use socialauth_common::jobs::{JobError, JobResult, RequestTokenJob, RequestTokenResult};
use socialauth_common::now_ms;
use socialauth_common::store::NewOAuth1RequestToken;
use tracing::warn;

/// How long the user has to authorize a request token.
const REQUEST_TOKEN_TTL_MS: i64 = 10 * 60 * 1000;

pub async fn request_token(deps: &Deps, job: &RequestTokenJob) -> JobResult {
    match obtain(deps, job).await {
        Ok(result) => JobResult::RequestToken(result),
        Err(e) => {
            warn!(provider = %job.provider, error = %e, "request token failed");
            JobResult::Failed(e.to_job_error())
        }
    }
}

async fn obtain(deps: &Deps, job: &RequestTokenJob) -> Result<RequestTokenResult, WorkerError> {
    let provider = deps
        .catalogue
        .get(job.provider.as_str())
        .filter(|p| p.protocol == Protocol::OAuth1)
        .ok_or(JobError::InvalidProvider)?;
    let token = deps
        .providers
        .request_token(provider, &job.callback)
        .await?;
    let authorization_url = ProviderClient::oauth1_authorization_url(provider, &token.oauth_token)?;
    let sealed = deps.cipher.seal(
        token.oauth_token_secret.expose(),
        Binding::RequestToken {
            provider: provider.name.as_str(),
            oauth_token: &token.oauth_token,
        },
    );
    let now = now_ms();
    deps.store
        .insert_oauth1_request_token(&NewOAuth1RequestToken {
            oauth_token: token.oauth_token.clone(),
            provider: provider.name.as_str().to_owned(),
            token_secret_enc: sealed.data,
            token_key_id: sealed.key_id,
            redirect_uri: job.callback.clone(),
            created_at: now,
            expires_at: now.saturating_add(REQUEST_TOKEN_TTL_MS),
            user_id: job.user_id,
        })
        .await?;
    Ok(RequestTokenResult {
        oauth_token: token.oauth_token,
        oauth_token_secret: token.oauth_token_secret,
        oauth_callback_confirmed: token.callback_confirmed,
        authorization_url,
    })
}
