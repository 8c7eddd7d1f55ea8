//! Association: a signed-in user links another provider identity. Step 1
//! and 2 ran as for a login; [`steps::association`] decides in place of
//! steps 3–6, step 7 makes the link ([`steps::new_link`]), and no app
//! token is issued. Uniqueness of the identity is the database's
//! constraint: a link made meanwhile by someone else runs the decision
//! again on fresh facts.

use super::steps::{self, Association};
use super::{LoginContext, MAX_CONFLICT_ROUNDS};
use crate::deps::Deps;
use crate::error::WorkerError;
use serde_json::json;
use socialauth_common::jobs::{AssociationResult, JobError, JobKind, JobResult};
use socialauth_common::now_ms;
use socialauth_common::store::{Constraint, FactsQuery, JobStatus, NewSocialAccount, StoreError};
use socialauth_common::types::UserId;

/// Links the identity of `ctx` to `user_id`, or says why not. The job's
/// result is stored with the link; a refusal is an audit event.
pub async fn associate(
    deps: &Deps,
    ctx: &LoginContext,
    user_id: UserId,
) -> Result<AssociationResult, WorkerError> {
    let link = NewSocialAccount {
        user_id,
        ..steps::new_link(deps, ctx, now_ms())
    };
    // Only the identity's link matters: no email owner, no referrer.
    let query = FactsQuery {
        provider: ctx.provider.as_str(),
        uid: &ctx.login.profile.uid,
        email_normalized: None,
        referral_code: None,
    };
    for _ in 0..MAX_CONFLICT_ROUNDS {
        let facts = deps.store.find_login_facts(&query).await?;
        let done = match steps::association(user_id, &facts) {
            Ok(Association::Link) => write_link(deps, ctx, &link).await,
            Ok(Association::Already { account_id }) => {
                renew_existing(deps, ctx, &link, account_id).await
            }
            Err(e) => {
                let holder = facts.account.as_ref().map(|a| a.user.id.0);
                let detail = json!({"uid": ctx.login.profile.uid, "holder_id": holder});
                refused(deps, ctx, Some(user_id), &e, detail).await?;
                return Err(e.into());
            }
        };
        match done {
            Ok(Some(result)) => return Ok(result),
            // The link was removed meanwhile, or someone linked the
            // identity first: decide again.
            Ok(None)
            | Err(WorkerError::Store(StoreError::Conflict(Constraint::SocialAccountIdentity))) => {}
            Err(e) => return Err(e),
        }
    }
    Err(JobError::Internal.into())
}

/// The new link, the job's result and its audit event, in one
/// transaction, while the user is active.
async fn write_link(
    deps: &Deps,
    ctx: &LoginContext,
    link: &NewSocialAccount,
) -> Result<Option<AssociationResult>, WorkerError> {
    let mut tx = deps.store.begin().await?;
    if !tx.lock_active_user(link.user_id).await? {
        return Err(JobError::InactiveUser.into());
    }
    let account = tx.insert_social_account(link).await?;
    let event = steps::audit_event(
        ctx,
        "account_linked",
        Some(link.user_id),
        "linked",
        json!({"uid": ctx.login.profile.uid, "account_id": account.id}),
    );
    let result = AssociationResult {
        account,
        created: true,
    };
    tx.upsert_job_result(
        ctx.job_id,
        JobKind::Login,
        JobStatus::Succeeded,
        &JobResult::Associated(result.clone()),
        1,
        event.at,
    )
    .await?;
    tx.insert_audit_event(&event).await?;
    tx.commit().await?;
    Ok(Some(result))
}

/// The user's link to this identity, given the tokens this association
/// brought (linking again is how a user reconnects a link that
/// `needs_reauth`); `None`: the link was removed meanwhile.
async fn renew_existing(
    deps: &Deps,
    ctx: &LoginContext,
    link: &NewSocialAccount,
    account_id: i64,
) -> Result<Option<AssociationResult>, WorkerError> {
    let user_id = link.user_id;
    let mut tx = deps.store.begin().await?;
    if !tx.lock_active_user(user_id).await? {
        return Err(JobError::InactiveUser.into());
    }
    let renewed = tx
        .update_social_account_tokens(account_id, user_id, &link.tokens, now_ms())
        .await?;
    let account = tx
        .find_stored_accounts(user_id)
        .await?
        .into_iter()
        .find(|s| s.account.id == account_id)
        .map(|s| s.account);
    let (true, Some(account)) = (renewed, account) else {
        return Ok(None);
    };
    let result = AssociationResult {
        account,
        created: false,
    };
    tx.upsert_job_result(
        ctx.job_id,
        JobKind::Login,
        JobStatus::Succeeded,
        &JobResult::Associated(result.clone()),
        1,
        now_ms(),
    )
    .await?;
    tx.commit().await?;
    Ok(Some(result))
}

/// A refused link — an association's, or a login's that found its email
/// owned (`email_already_in_use`) — as an audit event: the user it was
/// refused for, why (the error's code), and `detail`.
pub(super) async fn refused(
    deps: &Deps,
    ctx: &LoginContext,
    user_id: Option<UserId>,
    why: &JobError,
    mut detail: serde_json::Value,
) -> Result<(), WorkerError> {
    let reason = serde_json::to_value(why)
        .ok()
        .and_then(|v| v.get("error").cloned())
        .unwrap_or_default();
    if let Some(map) = detail.as_object_mut() {
        map.insert("reason".into(), reason);
    }
    let event = steps::audit_event(ctx, "link_refused", user_id, "refused", detail);
    let mut tx = deps.store.begin().await?;
    tx.insert_audit_event(&event).await?;
    tx.commit().await?;
    Ok(())
}
