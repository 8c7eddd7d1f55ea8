//! The user pipeline, as ordered steps (like python-social-auth's), written
//! once and run by every way in — the djoser flow, `/social-auth` (OAuth2,
//! OIDC and OAuth 1.0a), the resume of a partial login:
//!
//! 1. profile — the provider's answer ([`fetch_profile`])
//! 2. allowed — [`steps::check_allowed`]
//! 3. existing social account — [`steps::existing_account`]
//! 4. email — [`steps::choose_email`] (a typed one is unverified)
//! 5. email policy — [`steps::email_policy`]
//! 6. create the user — [`steps::new_user`]
//! 7. link — [`steps::new_link`] (provider tokens sealed)
//! 8. app token — [`steps::app_token`]
//!
//! [`run`] reads the facts the steps need in one store call
//! ([`Store::find_login_facts`], batched on PostgreSQL), decides in Rust
//! ([`steps::decide`]) and writes the decision in one store call
//! ([`Store::write_login`], batched, one commit). A write that lost a race
//! (two first logins of one identity, one email, a username taken) runs
//! the steps again on fresh facts; uniqueness is decided by the database's
//! constraints, never by "select, then insert".
//!
//! A login that stops at step 4 (no email) or 6 (unknown referral code) is
//! kept as a *partial login*: the provider's answer, sealed, resumable with
//! its `partial_token` without a second provider round trip.
//!
//! [`Store::find_login_facts`]: socialauth_common::store::Store::find_login_facts
//! [`Store::write_login`]: socialauth_common::store::Store::write_login

mod credentials;
mod partial;
pub mod steps;

use crate::deps::Deps;
use crate::error::WorkerError;
use crate::providers::ProviderLogin;
use socialauth_common::catalogue::ProviderConfig;
use socialauth_common::jobs::{JobError, LoginJob, LoginResult};
use socialauth_common::secret::Secret;
use socialauth_common::store::{Constraint, StoreError, Written};
use steps::{ChosenEmail, Decision};
use uuid::Uuid;

pub use credentials::{Fetched, Obtained, fetch_profile};

/// Lost races (same identity, same email, same username) run the steps
/// again at most this many times.
const MAX_CONFLICT_ROUNDS: usize = 8;

/// What the provider step produced, plus what the request added.
pub struct LoginContext<'a> {
    pub job_id: Uuid,
    pub request_id: Option<&'a str>,
    pub provider: &'a ProviderConfig,
    pub login: &'a ProviderLogin,
    /// Step 4's email: the provider's, else the request's (unverified).
    pub email: Option<ChosenEmail>,
    pub referral_code: Option<&'a str>,
    /// Set when this login resumes a partial one: consumed on success.
    pub partial_token: Option<&'a Secret>,
}

/// Steps 2 and 4 need no database: the email to use and whether the
/// provider's domain rules allow it.
pub fn context<'a>(
    job_id: Uuid,
    request_id: Option<&'a str>,
    provider: &'a ProviderConfig,
    fetched: &'a Fetched,
    job: &'a LoginJob,
) -> Result<LoginContext<'a>, WorkerError> {
    let login = &fetched.login;
    let email = steps::choose_email(&login.profile, job.email.as_deref());
    steps::check_allowed(provider, email.as_ref())?;
    Ok(LoginContext {
        job_id,
        request_id,
        provider,
        login,
        email,
        referral_code: job.referral_code.as_deref().filter(|c| !c.is_empty()),
        partial_token: fetched.partial_token.as_ref(),
    })
}

/// Steps 3–8: read the facts, decide, write; again on a lost race. A stop
/// for a missing email or an unknown referral code keeps the login as a
/// partial one and names its token in the error.
pub async fn run(deps: &Deps, ctx: &LoginContext<'_>) -> Result<LoginResult, WorkerError> {
    match decide_and_write(deps, ctx).await {
        Err(WorkerError::Job(
            e @ (JobError::NoEmailProvided { .. } | JobError::InvalidReferralCode { .. }),
        )) => {
            let kept = partial::keep(deps, ctx).await?;
            Err(kept.into_error(e).into())
        }
        other => other,
    }
}

async fn decide_and_write(deps: &Deps, ctx: &LoginContext<'_>) -> Result<LoginResult, WorkerError> {
    for round in 0..MAX_CONFLICT_ROUNDS {
        let facts = deps
            .store
            .find_login_facts(&steps::facts_query(ctx))
            .await?;
        let change = match steps::decide(deps, ctx, &facts, round)? {
            Decision::Write(change) => change,
            Decision::Reclaim { owner, email } => {
                steps::reclaim(deps, ctx, &owner, &email).await?;
                continue;
            }
        };
        let planned = steps::plan(deps, ctx, change);
        match deps.store.write_login(&planned.write()).await {
            Ok(Written::Done(user_id)) => return Ok(planned.into_result(user_id)),
            Ok(Written::PartialGone) => return Err(JobError::InvalidPartialToken.into()),
            // The link changed hands, or a concurrent login took the
            // identity, the email, the username or the referral code.
            Ok(Written::Lost)
            | Err(StoreError::Conflict(
                Constraint::SocialAccountIdentity
                | Constraint::UserEmail
                | Constraint::UserUsername
                | Constraint::UserReferralCode,
            )) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(WorkerError::Job(JobError::Internal))
}
