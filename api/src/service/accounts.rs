//! A signed-in user's links: association (linking another provider
//! through the djoser flow, its state bound to the user), the list, and
//! disconnect (the rule: [`socialauth_common::disconnect`]; the tokens are
//! revoked at the provider by a worker, best effort).

use crate::error::{ApiError, Flow};
use crate::extract::AuthUser;
use crate::service::flows::{check_iss, parse_email, provider};
use crate::service::jobs::{Submitted, submit_envelope};
use crate::service::redirect_flow::{self, CallbackForm, take_state};
use crate::service::required::Required;
use crate::service::views::SocialAccountView;
use crate::state::AppState;
use serde_json::json;
use socialauth_common::catalogue::Protocol;
use socialauth_common::disconnect::{self, Refused};
use socialauth_common::jobs::{
    AssociateJob, AssociationResult, Job, JobEnvelope, JobError, JobResult, LoginCredential,
    RevokeJob,
};
use socialauth_common::now_ms;
use socialauth_common::store::{NewAuditEvent, StoredAccount};
use socialauth_common::types::ProviderName;
use tracing::warn;
use uuid::Uuid;

/// `GET /auth/associate/{provider}/`: the djoser flow's authorization URL,
/// its state (or OAuth 1.0a request token) bound to the signed-in user.
pub async fn authorization_url(
    state: &AppState,
    auth: &AuthUser,
    provider_name: &str,
    raw_redirect_uri: Option<&str>,
    request_id: Option<String>,
) -> Result<String, ApiError> {
    redirect_flow::authorization_url(
        state,
        provider_name,
        raw_redirect_uri,
        request_id,
        Some(auth.user.id),
    )
    .await
}

/// An association's fate: the link, or a job to poll.
pub enum Associated {
    Done(AssociationResult),
    Accepted(Uuid),
}

/// `POST /auth/associate/{provider}/`: the provider's answer, for the user
/// the state was issued to only (another user's state is `invalid_state`,
/// a login's too); the worker links the identity or says why not.
pub async fn associate(
    state: &AppState,
    auth: &AuthUser,
    provider_name: &str,
    form: CallbackForm,
    request_id: Option<String>,
) -> Result<Associated, ApiError> {
    let provider = provider(state, provider_name)?;
    crate::service::providers::ensure_available(state, &provider, Flow::Djoser).await?;
    // Nothing but the provider's answer is taken: an email or a referral
    // code means nothing to a user who exists already.
    parse_email(form.email.as_deref())?;
    if provider.protocol != Protocol::OAuth1 {
        check_iss(&provider, form.iss.as_deref())?;
    }
    let job_id = Uuid::new_v4();
    let state_hash = form
        .state
        .as_ref()
        .map(|s| socialauth_common::crypto::hash_token(s.expose()));
    let credential = if provider.protocol == Protocol::OAuth1 {
        let mut need = Required::default();
        let token = need.field("oauth_token", form.oauth_token);
        let verifier = need.field("oauth_verifier", form.oauth_verifier);
        let (oauth_token, oauth_verifier) = need.check(|| Some((token?, verifier?)))?;
        LoginCredential::OAuth1 {
            oauth_token,
            oauth_token_secret: None,
            oauth_verifier,
        }
    } else {
        take_state(
            state,
            &provider,
            form.code,
            form.state,
            job_id,
            Some(auth.user.id),
        )
        .await?
    };
    let took = redirect_flow::took_state(&credential);
    let job = Job::Associate(AssociateJob {
        provider: provider.name.clone(),
        user_id: auth.user.id,
        credential,
    });
    let submitted = submit_envelope(state, JobEnvelope::with_id(job_id, job, request_id)).await;
    if took && let Err(error) = &submitted {
        redirect_flow::give_back_unsent(state, state_hash.as_deref(), job_id, error).await;
    }
    match submitted? {
        Submitted::Accepted(id) => Ok(Associated::Accepted(id)),
        Submitted::Done(_, JobResult::Associated(done)) => Ok(Associated::Done(done)),
        Submitted::Done(_, JobResult::Failed(e)) => Err(ApiError::Job(e, Flow::Djoser)),
        Submitted::Done(..) => Err(ApiError::Job(JobError::Internal, Flow::Djoser)),
    }
}

/// `GET /auth/social-accounts/`.
pub async fn list(state: &AppState, auth: &AuthUser) -> Result<Vec<SocialAccountView>, ApiError> {
    let accounts = state.store.find_social_accounts(auth.user.id).await?;
    Ok(accounts.iter().map(SocialAccountView::from).collect())
}

/// `DELETE /auth/disconnect/{provider}/[{association_id}/]`: removes the
/// links the rule allows, with their stored tokens, in one transaction
/// under the user's lock; each removal and each refusal is an audit
/// event. Then each removed link's tokens go to a worker to be revoked at
/// the provider (best effort: the link is gone whatever the provider
/// says). A provider no longer configured can still be disconnected.
pub async fn disconnect(
    state: &AppState,
    auth: &AuthUser,
    provider: &str,
    association_id: Option<&str>,
    request_id: Option<String>,
) -> Result<(), ApiError> {
    let provider = ProviderName::parse(provider).ok_or(ApiError::NotFound)?;
    let association_id = association_id
        .map(|raw| raw.parse::<i64>().map_err(|_| ApiError::NotFound))
        .transpose()?;
    let user_id = auth.user.id;
    let event = |kind, outcome, detail: serde_json::Value| NewAuditEvent {
        kind,
        user_id: Some(user_id),
        provider: Some(provider.as_str().to_owned()),
        outcome,
        detail: detail.to_string(),
        request_id: request_id.clone(),
        at: now_ms(),
    };
    let mut tx = state.store.begin().await?;
    if !tx.lock_active_user(user_id).await? {
        return Err(ApiError::InvalidToken);
    }
    let stored = tx.find_stored_accounts(user_id).await?;
    let links: Vec<_> = stored.iter().map(|s| s.account.clone()).collect();
    let removed: Vec<StoredAccount> =
        match disconnect::links_to_remove(&links, provider.as_str(), association_id, |p| {
            state.catalogue.get(p).is_some()
        }) {
            Ok(removed) => removed
                .iter()
                .filter_map(|l| stored.iter().find(|s| s.account.id == l.id).cloned())
                .collect(),
            Err(Refused::NotFound) => return Err(ApiError::NotFound),
            Err(Refused::LastLogin) => {
                drop(tx);
                let mut tx = state.store.begin().await?;
                tx.insert_audit_event(&event(
                "disconnect_refused",
                "refused",
                json!({"reason": "cannot_disconnect_last_login", "association_id": association_id}),
            ))
            .await?;
                tx.commit().await?;
                return Err(ApiError::Conflict("cannot_disconnect_last_login"));
            }
        };
    for link in &removed {
        let account = &link.account;
        tx.delete_social_account(account.id, user_id).await?;
        tx.insert_audit_event(&event(
            "disconnected",
            "done",
            json!({"uid": account.uid, "association_id": account.id}),
        ))
        .await?;
    }
    tx.commit().await?;
    metrics::counter!("socialauth_disconnects_total", "provider" => provider.as_str().to_owned())
        .increment(removed.len() as u64);
    for link in removed {
        revoke_later(state, &provider, link, request_id.clone()).await;
    }
    Ok(())
}

/// Hands a removed link's sealed tokens to a worker to revoke; nobody
/// waits for the outcome (`socialauth_token_revocations_total`).
async fn revoke_later(
    state: &AppState,
    provider: &ProviderName,
    link: StoredAccount,
    request_id: Option<String>,
) {
    let tokens = link.tokens;
    if tokens.access_token.is_none() && tokens.refresh_token.is_none() {
        return;
    }
    let job = Job::Revoke(RevokeJob {
        provider: provider.clone(),
        user_id: link.account.user_id,
        account_id: link.account.id,
        uid: Some(link.account.uid.clone()),
        key_id: tokens.key_id,
        access_token_enc: tokens.access_token,
        refresh_token_enc: tokens.refresh_token,
    });
    if let Err(e) = state.queue.submit(&JobEnvelope::new(job, request_id)).await {
        warn!(error = %e, account_id = link.account.id, "could not queue a token revocation");
    }
}

/// A link's provider access token and its expiry.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ProviderAccessToken {
    #[schema(value_type = String)]
    pub access_token: socialauth_common::secret::Secret,
    /// Milliseconds since the epoch; absent when the provider named none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// `POST /auth/social-accounts/{id}/refresh` (`force`) and `GET
/// /auth/social-accounts/{id}/token`: a worker refreshes the link's tokens
/// when it must (one refresh per link at a time) and answers with the
/// access token. `user`: the link must be theirs (`None`: the operator).
pub async fn provider_token(
    state: &AppState,
    user: Option<socialauth_common::types::UserId>,
    raw_id: &str,
    force: bool,
    request_id: Option<String>,
) -> Result<ProviderAccessToken, ApiError> {
    let account_id = raw_id.parse::<i64>().map_err(|_| ApiError::NotFound)?;
    let job = Job::Refresh(socialauth_common::jobs::RefreshJob {
        account_id,
        user_id: user,
        force,
        min_validity_secs: state.settings.refresh.min_validity_secs,
        skip_if_busy: false,
    });
    match crate::service::jobs::submit(state, job, request_id).await? {
        Submitted::Done(_, JobResult::Refreshed(done)) => Ok(ProviderAccessToken {
            access_token: done
                .access_token
                .ok_or(ApiError::Job(JobError::Internal, Flow::Djoser))?,
            expires_at: done.expires_at,
        }),
        Submitted::Done(_, JobResult::Failed(e)) => Err(ApiError::Job(e, Flow::Djoser)),
        // Not answered in time: the provider is slow; the refresh, if it
        // happens, is stored for the next call.
        Submitted::Accepted(_) => Err(ApiError::Job(JobError::ProviderUnavailable, Flow::Djoser)),
        Submitted::Done(..) => Err(ApiError::Job(JobError::Internal, Flow::Djoser)),
    }
}
