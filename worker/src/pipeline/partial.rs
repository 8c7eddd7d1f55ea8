//! Partial logins: the provider's answer sealed with the token cipher,
//! 15 minutes, consumed by the resume that completes.

use super::LoginContext;
use crate::deps::Deps;
use crate::error::WorkerError;
use crate::providers::ProviderLogin;
use serde::{Deserialize, Serialize};
use socialauth_common::crypto::{Sealed, hash_token, random_token};
use socialauth_common::jobs::JobError;
use socialauth_common::now_ms;
use socialauth_common::secret::Secret;
use socialauth_common::store::{NewPartialLogin, PartialLogin};
use socialauth_common::types::{Profile, ProviderTokens};

/// How long a partial login can be resumed.
pub const PARTIAL_TTL_MS: i64 = 15 * 60 * 1000;

/// What is sealed: enough to finish without the provider.
#[derive(Serialize, Deserialize)]
struct Kept {
    profile: Profile,
    tokens: ProviderTokens,
    raw: serde_json::Value,
}

/// Keeps `ctx`'s provider answer and returns its partial token. A login
/// that is itself a resume keeps its token (its partial login is still
/// there: only a completed resume consumes it).
pub async fn keep(deps: &Deps, ctx: &LoginContext<'_>) -> Result<Secret, WorkerError> {
    if let Some(token) = ctx.partial_token {
        return Ok(token.clone());
    }
    let kept = Kept {
        profile: ctx.login.profile.clone(),
        tokens: ctx.login.tokens.clone(),
        raw: ctx.login.raw.clone(),
    };
    let json = serde_json::to_string(&kept).map_err(|_| JobError::Internal)?;
    let sealed = deps.cipher.encrypt(&json);
    let token = random_token(32);
    let now = now_ms();
    deps.store
        .insert_partial_login(&NewPartialLogin {
            token_hash: hash_token(&token),
            provider: ctx.provider.name.as_str().to_owned(),
            data_enc: sealed.data,
            token_key_id: sealed.key_id,
            created_at: now,
            expires_at: now.saturating_add(PARTIAL_TTL_MS),
        })
        .await?;
    Ok(Secret::new(token))
}

/// The provider answer of an unexpired, unconsumed partial login of this
/// provider.
pub async fn load(
    deps: &Deps,
    provider: &str,
    token: &Secret,
) -> Result<ProviderLogin, WorkerError> {
    let found: Option<PartialLogin> = deps
        .store
        .find_partial_login(&hash_token(token.expose()), now_ms())
        .await?;
    let partial = found
        .filter(|p| p.provider == provider)
        .ok_or(JobError::InvalidPartialToken)?;
    let json = deps
        .cipher
        .decrypt(&Sealed {
            key_id: partial.token_key_id,
            data: partial.data_enc,
        })
        .map_err(|_| JobError::InvalidPartialToken)?;
    let kept: Kept = serde_json::from_str(&json).map_err(|_| JobError::InvalidPartialToken)?;
    Ok(ProviderLogin {
        profile: kept.profile,
        tokens: kept.tokens,
        raw: kept.raw,
    })
}
