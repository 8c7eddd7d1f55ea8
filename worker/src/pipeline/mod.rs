//! The user pipeline, as ordered steps (like python-social-auth's):
//! 1 profile → 2 allowed → 3 existing account → 4 email → 5 email policy →
//! 6 create user → 7 link → 8 app token. Steps 3–8 run in one transaction;
//! uniqueness is decided by constraints, never by "select then insert".
//!
//! A login that stops at step 4 (no email) or 6 (unknown referral code) is
//! kept as a *partial login*: the provider's answer, sealed, resumable with
//! its `partial_token` without a second provider round trip.

mod credentials;
mod partial;
mod steps;

use crate::deps::Deps;
use crate::error::WorkerError;
use crate::providers::ProviderLogin;
use socialauth_common::catalogue::ProviderConfig;
use socialauth_common::jobs::{JobError, LoginJob, LoginResult};
use socialauth_common::secret::Secret;
use socialauth_common::types::Email;
use uuid::Uuid;

pub use credentials::{Fetched, Obtained, fetch_profile};

/// Conflicting concurrent writes (same identity, same username) restart the
/// transaction at most this many times.
const MAX_CONFLICT_ROUNDS: usize = 8;

/// What the provider step produced, plus what the request added.
pub struct LoginContext<'a> {
    pub job_id: Uuid,
    pub provider: &'a ProviderConfig,
    pub login: &'a ProviderLogin,
    /// The provider's email if it gave one, else the request's.
    pub email: Option<Email>,
    /// True when `email` is the provider's and the provider verified it.
    pub email_verified_by_provider: bool,
    pub referral_code: Option<&'a str>,
    /// Set when this login resumes a partial one: consumed on success.
    pub partial_token: Option<&'a Secret>,
}

/// Steps 2 and 4 need no database: the email to use and whether the
/// provider's domain rules allow it.
pub fn context<'a>(
    job_id: Uuid,
    provider: &'a ProviderConfig,
    fetched: &'a Fetched,
    job: &'a LoginJob,
) -> Result<LoginContext<'a>, WorkerError> {
    let login = &fetched.login;
    let provider_email = login.profile.email.as_deref().and_then(Email::parse);
    let email_verified_by_provider = provider_email.is_some() && login.profile.email_verified;
    let email = provider_email.or_else(|| job.email.as_deref().and_then(Email::parse));
    steps::check_allowed(provider, email.as_ref())?;
    Ok(LoginContext {
        job_id,
        provider,
        login,
        email,
        email_verified_by_provider,
        referral_code: job.referral_code.as_deref().filter(|c| !c.is_empty()),
        partial_token: fetched.partial_token.as_ref(),
    })
}

/// Steps 3–8 in one transaction, restarted on a lost race. A stop for a
/// missing email or an unknown referral code keeps the login as a partial
/// one and names its token in the error.
pub async fn persist(deps: &Deps, ctx: &LoginContext<'_>) -> Result<LoginResult, WorkerError> {
    for round in 0..MAX_CONFLICT_ROUNDS {
        match steps::attempt(deps, ctx, round).await {
            Ok(Some(done)) => return Ok(done),
            Ok(None) => continue,
            Err(WorkerError::Job(
                e @ (JobError::NoEmailProvided { .. } | JobError::InvalidReferralCode { .. }),
            )) => {
                let kept = partial::keep(deps, ctx).await?;
                return Err(kept.into_error(e).into());
            }
            Err(e) => return Err(e),
        }
    }
    Err(WorkerError::Job(JobError::Internal))
}
