//! Partial logins: the provider's answer sealed with the token cipher,
//! 15 minutes, consumed by the resume that completes.

use super::LoginContext;
use crate::deps::Deps;
use crate::error::WorkerError;
use crate::providers::ProviderLogin;
use serde::{Deserialize, Serialize};
use socialauth_common::crypto::{Binding, Sealed, hash_token};
use socialauth_common::jobs::JobError;
use socialauth_common::now_ms;
use socialauth_common::secret::Secret;
use socialauth_common::store::{NewPartialLogin, PartialLogin};
use socialauth_common::types::{Profile, ProviderTokens};

/// How long a partial login can be resumed.
pub const PARTIAL_TTL_MS: i64 = 15 * 60 * 1000;

/// What is sealed: enough to finish without the provider.
#[derive(Serialize, Deserialize)]
struct Answer {
    profile: Profile,
    tokens: ProviderTokens,
    raw: serde_json::Value,
}

/// A kept partial login: its token, and the job it derives from (`None`
/// for a resume: the client holds the token already).
pub struct Kept {
    token: Secret,
    job: Option<uuid::Uuid>,
}

impl Kept {
    /// `e` (a resumable error) naming this partial login.
    pub fn into_error(self, e: JobError) -> JobError {
        let e = match e {
            JobError::NoEmailProvided { .. } => JobError::NoEmailProvided {
                partial_token: None,
                partial_job: self.job,
            },
            JobError::InvalidReferralCode { .. } => JobError::InvalidReferralCode {
                partial_token: None,
                partial_job: self.job,
            },
            other => other,
        };
        e.with_partial_token(self.token)
    }
}

/// Keeps `ctx`'s provider answer and returns its partial token, derived
/// from the job ([`socialauth_common::crypto::JobSecrets`]). A login that
/// is itself a resume keeps its token (its partial login is still there:
/// only a completed resume consumes it).
pub async fn keep(deps: &Deps, ctx: &LoginContext) -> Result<Kept, WorkerError> {
    if let Some(token) = &ctx.partial_token {
        return Ok(Kept {
            token: token.clone(),
            job: None,
        });
    }
    let answer = Answer {
        profile: ctx.login.profile.clone(),
        tokens: ctx.login.tokens.clone(),
        raw: ctx.login.raw.clone(),
    };
    let json = serde_json::to_string(&answer).map_err(|_| JobError::Internal)?;
    let issued = deps.secrets.partial_token(ctx.job_id);
    let sealed = deps.cipher.seal(
        &json,
        Binding::PartialLogin {
            provider: ctx.provider.as_str(),
            token_hash: &issued.hash,
        },
    );
    let now = now_ms();
    deps.store
        .insert_partial_login(&NewPartialLogin {
            token_hash: issued.hash,
            provider: ctx.provider.as_str().to_owned(),
            data_enc: sealed.data,
            token_key_id: sealed.key_id,
            created_at: now,
            expires_at: now.saturating_add(PARTIAL_TTL_MS),
        })
        .await?;
    Ok(Kept {
        token: issued.token,
        job: Some(ctx.job_id),
    })
}

/// The provider answer of an unexpired, unconsumed partial login of this
/// provider.
pub async fn load(
    deps: &Deps,
    provider: &str,
    token: &Secret,
) -> Result<ProviderLogin, WorkerError> {
    let token_hash = hash_token(token.expose());
    let found: Option<PartialLogin> = deps.store.find_partial_login(&token_hash, now_ms()).await?;
    let partial = found
        .filter(|p| p.provider == provider)
        .ok_or(JobError::InvalidPartialToken)?;
    let sealed = Sealed {
        key_id: partial.token_key_id,
        data: partial.data_enc,
    };
    let binding = Binding::PartialLogin {
        provider,
        token_hash: &token_hash,
    };
    let json = deps
        .cipher
        .open(&sealed, binding)
        .map_err(|_| JobError::InvalidPartialToken)?;
    let answer: Answer = serde_json::from_str(&json).map_err(|_| JobError::InvalidPartialToken)?;
    Ok(ProviderLogin {
        profile: answer.profile,
        tokens: answer.tokens,
        raw: answer.raw,
    })
}
