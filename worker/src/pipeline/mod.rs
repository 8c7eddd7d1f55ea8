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
//! An association (a signed-in user linking another identity) runs step 1
//! and 2 as a login does, then its own decision in place of steps 3–6
//! ([`steps::association`]) and step 7; it issues no app token
//! ([`associate`]).
//!
//! [`run`] makes a login one store call, [`Store::log_in`]: the store reads
//! the facts the steps need, asks the steps for their decision
//! ([`steps::decide`], in Rust) and writes what they decided — on
//! PostgreSQL for the logins that come in together, one read statement,
//! one write statement, one commit. A write that lost a race (two first
//! logins of one identity, one email, a username taken) runs the steps
//! again on fresh facts; uniqueness is decided by the database's
//! constraints, never by "select, then insert".
//!
//! A login that stops at step 4 (no email) or 6 (unknown referral code) is
//! kept as a *partial login*: the provider's answer, sealed, resumable with
//! its `partial_token` without a second provider round trip.
//!
//! [`Store::log_in`]: socialauth_common::store::Store::log_in

mod association;
mod credentials;
mod partial;
pub mod steps;

use crate::deps::Deps;
use crate::error::WorkerError;
use crate::providers::ProviderLogin;
use socialauth_common::catalogue::ProviderConfig;
use socialauth_common::config::LinkingPolicy;
use socialauth_common::jobs::{JobError, LoginJob, LoginResult};
use socialauth_common::secret::Secret;
use socialauth_common::store::{Constraint, StoreError, Written};
use socialauth_common::types::ProviderName;
use std::sync::Arc;
use steps::{ChosenEmail, Decided};
use uuid::Uuid;

pub use association::associate;
pub use credentials::{Fetched, Obtained, fetch_profile};

/// Lost races (same identity, same email, same username) run the steps
/// again at most this many times.
const MAX_CONFLICT_ROUNDS: usize = 8;

/// What the provider step produced, plus what the request added; owned,
/// so the store can ask the steps to decide while it holds a batch.
pub struct LoginContext {
    pub job_id: Uuid,
    pub request_id: Option<String>,
    pub provider: ProviderName,
    pub login: ProviderLogin,
    /// Step 4's email: the provider's, else the request's (unverified).
    pub email: Option<ChosenEmail>,
    pub referral_code: Option<String>,
    /// Set when this login resumes a partial one: consumed on success.
    pub partial_token: Option<Secret>,
    /// The provider's linking policy (step 5).
    pub linking: LinkingPolicy,
    /// A token login: an existing link keeps its stored provider tokens
    /// ([`steps::prepare`]).
    pub from_client_sdk: bool,
}

/// Steps 2 and 4 need no database: the email to use and whether the
/// provider's domain rules allow it.
pub fn context(
    job_id: Uuid,
    request_id: Option<&str>,
    provider: &ProviderConfig,
    fetched: Fetched,
    job: &LoginJob,
) -> Result<LoginContext, WorkerError> {
    with_request(
        job_id,
        request_id,
        provider,
        fetched,
        job.email.as_deref(),
        job.referral_code.as_deref(),
    )
}

/// [`context`] for an association: the provider's own email only (none is
/// typed), no referral code; step 2 applies as to a login.
pub fn association_context(
    job_id: Uuid,
    request_id: Option<&str>,
    provider: &ProviderConfig,
    fetched: Fetched,
) -> Result<LoginContext, WorkerError> {
    with_request(job_id, request_id, provider, fetched, None, None)
}

fn with_request(
    job_id: Uuid,
    request_id: Option<&str>,
    provider: &ProviderConfig,
    fetched: Fetched,
    typed_email: Option<&str>,
    referral_code: Option<&str>,
) -> Result<LoginContext, WorkerError> {
    let email = steps::choose_email(&fetched.login.profile, typed_email);
    steps::check_allowed(provider, email.as_ref())?;
    Ok(LoginContext {
        job_id,
        request_id: request_id.map(str::to_owned),
        provider: provider.name.clone(),
        login: fetched.login,
        email,
        referral_code: referral_code.filter(|c| !c.is_empty()).map(str::to_owned),
        partial_token: fetched.partial_token,
        linking: provider.linking,
        from_client_sdk: fetched.from_client_sdk,
    })
}

/// Steps 3–8: read the facts, decide, write; again on a lost race. A stop
/// for a missing email or an unknown referral code keeps the login as a
/// partial one and names its token in the error.
pub async fn run(deps: &Deps, ctx: &Arc<LoginContext>) -> Result<LoginResult, WorkerError> {
    match decide_and_write(deps, ctx).await {
        Err(WorkerError::Job(e @ JobError::EmailAlreadyInUse)) => {
            // The refusal stands whether or not its record could be made.
            if let Err(audit) = refused_by_email(deps, ctx, &e).await {
                tracing::warn!(error = %audit, "could not record a refused link");
            }
            Err(e.into())
        }
        Err(WorkerError::Job(
            e @ (JobError::NoEmailProvided { .. } | JobError::InvalidReferralCode { .. }),
        )) => {
            let kept = partial::keep(deps, ctx).await?;
            Err(kept.into_error(e).into())
        }
        other => other,
    }
}

/// Step 5 refused to link the login to the owner of its email: an audit
/// event for that owner — when the provider verified the email, so that a
/// link was really asked for. An address someone only typed is recorded
/// nowhere: anyone can type anyone's.
async fn refused_by_email(
    deps: &Deps,
    ctx: &LoginContext,
    why: &JobError,
) -> Result<(), WorkerError> {
    let Some(email) = ctx.email.as_ref().filter(|e| e.verified) else {
        return Ok(());
    };
    let owner = {
        let mut tx = deps.store.begin().await?;
        tx.find_user_by_email(&email.normalized).await?
    };
    let detail = serde_json::json!({
        "uid": ctx.login.profile.uid,
        "email": email.email.as_str(),
        "email_verified": email.verified,
    });
    association::refused(deps, ctx, owner.map(|u| u.id), why, detail).await
}

/// One storage operation per round ([`Store::log_in`]): the store reads
/// the facts, asks [`steps::Deciding`] (which runs [`steps::decide`]) and
/// writes what it decided.
async fn decide_and_write(
    deps: &Deps,
    ctx: &Arc<LoginContext>,
) -> Result<LoginResult, WorkerError> {
    let prepared = Arc::new(steps::prepare(deps, ctx));
    for round in 0..MAX_CONFLICT_ROUNDS {
        let deciding = Arc::new(steps::Deciding::new(deps, ctx, &prepared, round));
        let written = match deps
            .store
            .log_in(&steps::facts_query(ctx), deciding.clone())
            .await
        {
            Ok(written) => written,
            // A concurrent login took the identity, the email, the
            // username or the referral code.
            Err(StoreError::Conflict(
                Constraint::SocialAccountIdentity
                | Constraint::UserEmail
                | Constraint::UserUsername
                | Constraint::UserReferralCode,
            )) => continue,
            Err(e) => return Err(e.into()),
        };
        match (deciding.outcome()?, written) {
            (Decided::Reclaim { owner, email }, _) => {
                steps::reclaim(deps, ctx, &owner, &email).await?;
            }
            (Decided::Write(result), Some(Written::Done(user_id))) => {
                return Ok(prepared.result(result, user_id));
            }
            (Decided::Write(_), Some(Written::PartialGone)) => {
                return Err(JobError::InvalidPartialToken.into());
            }
            // The link changed hands or its user was deactivated meanwhile.
            (Decided::Write(_), Some(Written::Lost) | None) => {}
        }
    }
    Err(WorkerError::Job(JobError::Internal))
}
