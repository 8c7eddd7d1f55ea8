//! Step 1 by credential kind: an authorization code (claimed first: the
//! same code posted again gets the first login's outcome and never reaches
//! the provider twice — providers revoke what a reused code gave), an
//! OAuth 1.0a verifier (its request token checked server-side), a partial
//! token (no provider call at all), or a token a client-side SDK obtained
//! (token login: an access token or an id_token, checked to be this app's,
//! then claimed like a code before it is used — it is single-use here).

use super::partial;
use crate::deps::Deps;
use crate::error::WorkerError;
use crate::providers::ProviderLogin;
use socialauth_common::catalogue::ProviderConfig;
use socialauth_common::crypto::{Binding, Sealed, hash_token};
use socialauth_common::jobs::{JobError, LoginCredential, SuppliedName};
use socialauth_common::now_ms;
use socialauth_common::redemption::{CODE_MEMORY_MS, retry_of};
use socialauth_common::secret::Secret;
use socialauth_common::store::{CodeClaim, CodeClaimed};
use socialauth_common::types::{Profile, UserId};
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// A provider answer to run the pipeline on.
pub struct Fetched {
    pub login: ProviderLogin,
    /// The partial login this one resumes.
    pub partial_token: Option<Secret>,
    /// A client-side SDK's token (token login): what it brings is the app's
    /// token, not one this service obtained and can refresh.
    pub from_client_sdk: bool,
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
        LoginCredential::AccessToken { access_token } => {
            // Checked to be this app's first (a read at the provider), then
            // claimed, then used.
            let facts = deps
                .providers
                .check_access_token(provider, access_token)
                .await?
                .ok_or(JobError::AccessTokenNotAccepted)?;
            if !facts.is_bound {
                tracing::debug!("no access-token check: accepted on its userinfo answer alone");
            }
            let now = now_ms();
            let remembered_until = match facts.expires_at {
                Some(at) => at
                    .saturating_add(TOKEN_CLOCK_SKEW_MS)
                    .max(now.saturating_add(CODE_MEMORY_MS)),
                None => now.saturating_add(UNBOUNDED_TOKEN_MEMORY_MS),
            };
            let claim = TokenClaim {
                credential: &format!("access_token\n{}", access_token.expose()),
                request: "access_token",
                remembered_until,
            };
            if let Some(first) = claim_token(deps, name, job_id, &claim).await? {
                return Ok(Obtained::Replay(first));
            }
            match deps
                .providers
                .access_token_login(provider, access_token, &facts)
                .await
            {
                Ok(login) => login,
                // Reading the profile failed at the provider's end: nothing
                // was spent with the token, so the claim is given back and
                // the client may send it again (an SDK keeps handing out the
                // same token for its whole life).
                Err(e) if e.is_retryable() => {
                    let hash = hash_token(claim.credential);
                    deps.store.release_login_code(name, &hash, job_id).await?;
                    return Err(e.into());
                }
                Err(e) => return Err(e.into()),
            }
        }
        LoginCredential::IdToken {
            id_token,
            nonce,
            name: supplied,
        } => {
            let mut login = deps
                .providers
                .id_token_login(provider, id_token, nonce.as_ref())
                .await?;
            // Accepted only while its `iat` is at most the maximum age
            // old: remembered that long after now, it cannot come back.
            let max_age_ms = provider
                .token_login
                .id_token_max_age_secs
                .saturating_mul(1000);
            let remembered_until = now_ms().saturating_add(
                max_age_ms
                    .saturating_add(2 * TOKEN_CLOCK_SKEW_MS)
                    .max(CODE_MEMORY_MS),
            );
            let nonce = nonce.as_ref().map_or("", |n| n.expose().as_str());
            let claim = TokenClaim {
                credential: &format!("id_token\n{}", id_token.expose()),
                request: &format!("id_token\n{nonce}"),
                remembered_until,
            };
            if let Some(first) = claim_token(deps, name, job_id, &claim).await? {
                return Ok(Obtained::Replay(first));
            }
            if let Some(supplied) = supplied {
                fill_name(&mut login.profile, supplied);
            }
            login
        }
        LoginCredential::Retry { first_job } => return Ok(Obtained::Replay(*first_job)),
        LoginCredential::Partial { partial_token } => {
            let login = partial::load(deps, name, partial_token).await?;
            return Ok(Obtained::Fresh(Box::new(Fetched {
                login,
                partial_token: Some(partial_token.clone()),
                from_client_sdk: false,
            })));
        }
    };
    let from_client_sdk = matches!(
        credential,
        LoginCredential::AccessToken { .. } | LoginCredential::IdToken { .. }
    );
    Ok(Obtained::Fresh(Box::new(Fetched {
        login,
        partial_token: None,
        from_client_sdk,
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
    let verifier = pkce_verifier.map_or("", |v| v.expose().as_str());
    claim(
        deps,
        provider,
        job_id,
        &hash_token(code.expose()),
        &hash_token(&format!("{verifier}\n{redirect_uri}")),
        now,
        now.saturating_add(CODE_MEMORY_MS),
    )
    .await
}

/// How far a provider's clock may differ from ours, for how long a token
/// is remembered.
const TOKEN_CLOCK_SKEW_MS: i64 = 60 * 1000;

/// How long an access token whose expiry nobody told us is remembered.
const UNBOUNDED_TOKEN_MEMORY_MS: i64 = 30 * 24 * 60 * 60 * 1000;

/// A client-side token's claim: what identifies the credential (kind and
/// token), what makes a retry the same request, and until when it is
/// remembered (past the time the token could be accepted again).
struct TokenClaim<'a> {
    credential: &'a str,
    request: &'a str,
    remembered_until: i64,
}

/// Claims a client-side token for this job, like a code: `Some`, the job
/// whose outcome answers this retry; the same token posted again after the
/// retry window (or with another nonce) is refused.
async fn claim_token(
    deps: &Deps,
    provider: &str,
    job_id: Uuid,
    c: &TokenClaim<'_>,
) -> Result<Option<Uuid>, WorkerError> {
    claim(
        deps,
        provider,
        job_id,
        &hash_token(c.credential),
        &hash_token(c.request),
        now_ms(),
        c.remembered_until,
    )
    .await
}

/// The one claim of a credential's hash (codes and tokens alike).
async fn claim(
    deps: &Deps,
    provider: &str,
    job_id: Uuid,
    code_hash: &str,
    request_hash: &str,
    now: i64,
    expires_at: i64,
) -> Result<Option<Uuid>, WorkerError> {
    let claim = CodeClaim {
        provider,
        code_hash,
        request_hash,
        job_id,
        now,
        expires_at,
    };
    match deps.store.claim_login_code(&claim).await? {
        CodeClaimed::Claimed => Ok(None),
        CodeClaimed::Held(first) => retry_of(first, now, deps.policy.retry_window_ms)
            .map(Some)
            .ok_or_else(|| JobError::InvalidCredentials.into()),
    }
}

/// The name the client sent with an id_token (Apple's first sign-in):
/// used only when the id_token has no name at all; it is cosmetic.
pub(super) fn fill_name(profile: &mut Profile, supplied: &SuppliedName) {
    if profile.first_name.is_some() || profile.last_name.is_some() || profile.name.is_some() {
        return;
    }
    let clean = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.chars().take(150).collect::<String>())
    };
    profile.first_name = clean(&supplied.first_name);
    profile.last_name = clean(&supplied.last_name);
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
    let binding = Binding::RequestToken {
        provider,
        oauth_token,
    };
    let sealed = Sealed {
        key_id: stored.token_key_id,
        data: stored.token_secret_enc,
    };
    let secret = deps
        .cipher
        .open(&sealed, binding)
        .map_err(|_| JobError::InvalidCredentials)?;
    if let Some(echoed) = echoed
        && !bool::from(echoed.expose().as_bytes().ct_eq(secret.as_bytes()))
    {
        return Err(JobError::InvalidCredentials.into());
    }
    Ok(Secret::new(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_supplied_name_fills_only_a_profile_without_one() {
        let supplied = SuppliedName {
            first_name: Some(" Ann ".into()),
            last_name: Some(String::new()),
        };
        let mut bare = Profile::default();
        fill_name(&mut bare, &supplied);
        assert_eq!(bare.first_name.as_deref(), Some("Ann"));
        assert_eq!(bare.last_name, None);
        let mut named = Profile {
            name: Some("Zoë Ñandú".into()),
            ..Profile::default()
        };
        fill_name(&mut named, &supplied);
        assert_eq!(named.first_name, None);
        let mut last_only = Profile {
            last_name: Some("Roe".into()),
            ..Profile::default()
        };
        fill_name(&mut last_only, &supplied);
        assert_eq!(last_only.first_name, None);
    }
}
