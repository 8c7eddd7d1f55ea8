//! Step 1 by credential kind: an authorization code (claimed first: the
//! same code posted again gets the first login's outcome and never reaches
//! the provider twice — providers revoke what a reused code gave), an
//! OAuth 1.0a verifier (its request token checked server-side), or a
//! partial token (no provider call at all).

use super::partial;
use crate::deps::Deps;
use crate::error::WorkerError;
use crate::providers::ProviderLogin;
use socialauth_common::catalogue::ProviderConfig;
use socialauth_common::crypto::{Sealed, hash_token};
use socialauth_common::jobs::{JobError, LoginCredential};
use socialauth_common::now_ms;
use socialauth_common::redemption::{CODE_MEMORY_MS, retry_of};
use socialauth_common::secret::Secret;
use socialauth_common::store::{CodeClaim, CodeClaimed};
use socialauth_common::types::UserId;
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// A provider answer to run the pipeline on.
pub struct Fetched {
    pub login: ProviderLogin,
    /// The partial login this one resumes.
    pub partial_token: Option<Secret>,
}

/// Step 1's outcome.
pub enum Obtained {
    Fresh(Box<Fetched>),
    /// Another job (this id) used the code first: its outcome is the answer.
    Replay(Uuid),
}

/// Step 1: the provider's answer → profile and tokens. Makes provider HTTP
/// calls; no transaction is open while it runs. `bound_to`: the signed-in
/// user of an association (`None` for a login), whom an OAuth 1.0a request
/// token must have been obtained for.
pub async fn fetch_profile(
    deps: &Deps,
    provider: &ProviderConfig,
    job_id: Uuid,
    credential: &LoginCredential,
    bound_to: Option<UserId>,
) -> Result<Obtained, WorkerError> {
    let name = provider.name.as_str();
    let login = match credential {
        LoginCredential::AuthorizationCode {
            code,
            redirect_uri,
            pkce_verifier,
            nonce,
            state_consumed,
        } => {
            if !state_consumed
                && let Some(first) = claim_code(
                    deps,
                    name,
                    job_id,
                    code,
                    redirect_uri,
                    pkce_verifier.as_ref(),
                )
                .await?
            {
                return Ok(Obtained::Replay(first));
            }
            deps.providers
                .exchange_code(
                    provider,
                    code,
                    redirect_uri,
                    pkce_verifier.as_ref(),
                    nonce.as_ref(),
                )
                .await?
        }
        LoginCredential::OAuth1 {
            oauth_token,
            oauth_token_secret,
            oauth_verifier,
        } => {
            let secret = request_token_secret(
                deps,
                name,
                oauth_token,
                oauth_token_secret.as_ref(),
                bound_to,
            )
            .await?;
            deps.providers
                .exchange_verifier(provider, oauth_token, &secret, oauth_verifier)
                .await?
        }
        LoginCredential::Retry { first_job } => return Ok(Obtained::Replay(*first_job)),
        LoginCredential::Partial { partial_token } => {
            let login = partial::load(deps, name, partial_token).await?;
            return Ok(Obtained::Fresh(Box::new(Fetched {
                login,
                partial_token: Some(partial_token.clone()),
            })));
        }
    };
    Ok(Obtained::Fresh(Box::new(Fetched {
        login,
        partial_token: None,
    })))
}

/// Claims an authorization code for this job before its exchange. `Some`:
/// the job whose outcome answers this retry ([`retry_of`]). Another
/// request with the same code (another verifier or redirect URI: a
/// captured code), or the same one after the retry window, is refused.
async fn claim_code(
    deps: &Deps,
    provider: &str,
    job_id: Uuid,
    code: &Secret,
    redirect_uri: &str,
    pkce_verifier: Option<&Secret>,
) -> Result<Option<Uuid>, WorkerError> {
    let now = now_ms();
    let code_hash = hash_token(code.expose());
    let verifier = pkce_verifier.map_or("", |v| v.expose().as_str());
    let request_hash = hash_token(&format!("{verifier}\n{redirect_uri}"));
    let claim = CodeClaim {
        provider,
        code_hash: &code_hash,
        request_hash: &request_hash,
        job_id,
        now,
        expires_at: now.saturating_add(CODE_MEMORY_MS),
    };
    match deps.store.claim_login_code(&claim).await? {
        CodeClaimed::Claimed => Ok(None),
        CodeClaimed::Held(first) => retry_of(first, now, deps.policy.retry_window_ms)
            .map(Some)
            .ok_or_else(|| JobError::InvalidCredentials.into()),
    }
}

/// Consumes the request token of step 1 and returns its secret. Unknown,
/// used, expired, another provider's, obtained for another user (or for an
/// association when this is a login, and the reverse), or a secret echoed
/// by the client that does not match: the provider's answer is refused.
async fn request_token_secret(
    deps: &Deps,
    provider: &str,
    oauth_token: &str,
    echoed: Option<&Secret>,
    bound_to: Option<UserId>,
) -> Result<Secret, WorkerError> {
    let now = now_ms();
    let stored = deps
        .store
        .take_oauth1_request_token(oauth_token, now)
        .await?
        .filter(|t| t.provider == provider && t.expires_at > now && t.user_id == bound_to)
        .ok_or(JobError::InvalidCredentials)?;
    let secret = deps
        .cipher
        .decrypt(&Sealed {
            key_id: stored.token_key_id,
            data: stored.token_secret_enc,
        })
        .map_err(|_| JobError::InvalidCredentials)?;
    if let Some(echoed) = echoed
        && !bool::from(echoed.expose().as_bytes().ct_eq(secret.as_bytes()))
    {
        return Err(JobError::InvalidCredentials.into());
    }
    Ok(Secret::new(secret))
}
