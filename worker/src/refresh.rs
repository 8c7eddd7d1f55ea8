//! A link's provider access token, refreshed first when it must be: one
//! refresh per link at a time across every api and worker process — the
//! refresher holds the link's lease in the database, the others wait for
//! its outcome and hand out the token it stored. A provider's
//! `invalid_grant` is checked against a fresh read (another refresher, or
//! a sign-in, may have replaced the refresh token meanwhile) before the
//! link is marked `needs_reauth`.

use crate::deps::Deps;
use crate::error::WorkerError;
use crate::providers::ProviderError;
use backon::Retryable;
use socialauth_common::crypto::{Binding, Sealed, TokenColumn};
use socialauth_common::jobs::{JobError, JobResult, RefreshJob, RefreshResult};
use socialauth_common::now_ms;
use socialauth_common::secret::Secret;
use socialauth_common::store::{SealedTokens, StoreError, StoredAccount};
use socialauth_common::types::SocialAccount;
use std::time::Duration;
use tracing::warn;
use uuid::Uuid;

/// How often a waiting refresher looks at the link again.
const WAIT_STEP: Duration = Duration::from_millis(50);

pub async fn handle(deps: &Deps, job_id: Uuid, job: &RefreshJob) -> JobResult {
    let (outcome, result) = match fresh_token(deps, job_id, job).await {
        Ok(done) => (
            if done.refreshed {
                "refreshed"
            } else {
                "not_needed"
            },
            JobResult::Refreshed(done),
        ),
        Err(e) => {
            let e = e.to_job_error();
            let outcome = match e {
                JobError::NeedsReauth => "needs_reauth",
                JobError::ProviderUnavailable | JobError::Internal => "failed",
                _ => "refused",
            };
            (outcome, JobResult::Failed(e))
        }
    };
    metrics::counter!("socialauth_refreshes_total", "outcome" => outcome).increment(1);
    result
}

/// How a scheduled refresh looks for links, from the settings.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Links whose tokens expire within this long are refreshed.
    pub window_ms: i64,
    pub interval: Duration,
    pub batch: u32,
}

impl Schedule {
    /// `None`: scheduled refresh is off (`schedule_window_secs = 0`).
    pub fn from_settings(s: &socialauth_common::config::RefreshSettings) -> Option<Self> {
        (s.schedule_window_secs > 0).then(|| Self {
            window_ms: s.schedule_window_secs.saturating_mul(1000),
            interval: Duration::from_millis(s.schedule_interval_ms.max(100)),
            batch: s.schedule_batch.max(1),
        })
    }
}

/// Scheduled refresh, until `stop`: every interval (plus up to half of it
/// again, at random, so that workers spread out) the links whose access
/// tokens expire within the window are refreshed through the same rule and
/// lease as on demand ([`handle`]); one another process is refreshing is
/// left to it. Links expired for longer than the window are left to the
/// next on-demand call (one whose provider keeps refusing would otherwise
/// be tried forever).
pub async fn schedule(
    deps: std::sync::Arc<Deps>,
    every: Schedule,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let jitter = every.interval.mul_f64(rand::random::<f64>() / 2.0);
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            () = tokio::time::sleep(every.interval + jitter) => {}
        }
        let now = now_ms();
        let due = deps
            .store
            .find_refresh_due(
                now.saturating_sub(every.window_ms),
                now.saturating_add(every.window_ms),
                now,
                every.batch,
            )
            .await;
        let due = match due {
            Ok(due) => due,
            Err(e) => {
                warn!(error = %e, "could not look for links due for a refresh");
                continue;
            }
        };
        for account_id in due {
            if *stop.borrow() {
                return;
            }
            let job = RefreshJob {
                account_id,
                user_id: None,
                force: false,
                min_validity_secs: every.window_ms / 1000,
                skip_if_busy: true,
            };
            handle(&deps, Uuid::new_v4(), &job).await;
        }
    }
}

/// What to do with a link, as it is now.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Hand out its access token.
    Hand,
    /// Refresh it at the provider.
    Refresh,
    Refuse(JobError),
}

/// The refresh rule. A link that needs its user is refused; an access
/// token valid for at least `min_validity_ms` (or with no known expiry) is
/// handed out unless a refresh is forced; otherwise a link without a
/// refresh token, or of a provider whose tokens are not refreshed
/// (`can_refresh` false: its `refresh_tokens = false`, or it is no longer
/// configured), cannot be helped (`refresh_not_supported`), and any other
/// is refreshed.
pub fn next_step(
    stored: &StoredAccount,
    now: i64,
    force: bool,
    min_validity_ms: i64,
    can_refresh: bool,
) -> Step {
    let tokens = &stored.tokens;
    if stored.account.needs_reauth {
        return Step::Refuse(JobError::NeedsReauth);
    }
    let fresh_enough = tokens.access_token.is_some()
        && tokens
            .expires_at
            .is_none_or(|at| at.saturating_sub(now) >= min_validity_ms);
    if fresh_enough && !force {
        return Step::Hand;
    }
    if tokens.refresh_token.is_none() || !can_refresh {
        return Step::Refuse(JobError::RefreshNotSupported);
    }
    Step::Refresh
}

/// How a refresh under the lease went.
enum Leased {
    Done(RefreshResult),
    /// The refresh token changed while we held the lease: look again.
    Replaced,
}

async fn fresh_token(
    deps: &Deps,
    job_id: Uuid,
    job: &RefreshJob,
) -> Result<RefreshResult, WorkerError> {
    let min_validity_ms = job.min_validity_secs.max(0).saturating_mul(1000);
    let read = || async {
        deps.store
            .find_stored_account(job.account_id)
            .await?
            .filter(|s| job.user_id.is_none_or(|u| s.account.user_id == u))
            .ok_or(WorkerError::Job(JobError::SocialAccountNotFound))
    };
    let first = read().await?;
    let can_refresh = deps.catalogue.refreshes(&first.account.provider);
    // A forced refresh that another refresher made meanwhile is done.
    let seen = first.tokens.access_token.clone();
    let deadline = now_ms().saturating_add(deps.policy.refresh_lease_ms);
    let mut stored = first;
    loop {
        let force = job.force && stored.tokens.access_token == seen;
        match next_step(&stored, now_ms(), force, min_validity_ms, can_refresh) {
            Step::Hand => return hand(deps, &stored, false),
            Step::Refuse(e) => return Err(e.into()),
            Step::Refresh => {}
        }
        let now = now_ms();
        let until = now.saturating_add(deps.policy.refresh_lease_ms);
        match deps
            .store
            .take_refresh_lease(job.account_id, job_id, now, until)
            .await?
        {
            Some(leased) => {
                let force = job.force && leased.tokens.access_token == seen;
                if next_step(&leased, now, force, min_validity_ms, can_refresh) != Step::Refresh {
                    // Refreshed between our look and the lease.
                    deps.store
                        .end_refresh(job.account_id, job_id, false)
                        .await?;
                    stored = leased;
                    continue;
                }
                match refresh_under_lease(deps, job_id, &leased).await? {
                    Leased::Done(done) => return Ok(done),
                    Leased::Replaced => {}
                }
            }
            None if job.skip_if_busy => {
                return Ok(RefreshResult {
                    access_token: None,
                    expires_at: stored.tokens.expires_at,
                    refreshed: false,
                });
            }
            None if now_ms() > deadline => {
                return Err(JobError::ProviderUnavailable.into());
            }
            None => tokio::time::sleep(WAIT_STEP).await,
        }
        stored = read().await?;
    }
}

/// The grant at the provider while this job holds the link's lease; the
/// lease is given back in every case.
async fn refresh_under_lease(
    deps: &Deps,
    job_id: Uuid,
    leased: &StoredAccount,
) -> Result<Leased, WorkerError> {
    let account_id = leased.account.id;
    // After a grant the new tokens are only in memory: their write waits
    // out a database restart rather than lose them.
    let end = |needs_reauth| async move {
        (|| deps.store.end_refresh(account_id, job_id, needs_reauth))
            .retry(crate::dispatch::backoff(deps))
            .when(StoreError::is_transient)
            .await
    };
    let granted = match grant(deps, leased).await {
        Ok(granted) => granted,
        Err(e) => {
            end(false).await?;
            return Err(e);
        }
    };
    match granted {
        Grant::Tokens { sealed, result } => {
            let finish = || {
                deps.store
                    .finish_refresh(account_id, job_id, &sealed, now_ms())
            };
            if !finish
                .retry(crate::dispatch::backoff(deps))
                .when(StoreError::is_transient)
                .await?
            {
                warn!(
                    account_id,
                    "a refresh's tokens were not stored by this write: its lease was lost (or an earlier attempt whose answer was lost stored them)"
                );
            }
            Ok(Leased::Done(result))
        }
        Grant::Replaced => {
            end(false).await?;
            Ok(Leased::Replaced)
        }
        Grant::Refused => {
            end(true).await?;
            Err(JobError::NeedsReauth.into())
        }
        Grant::Failed(e) => {
            end(false).await?;
            Err(e)
        }
    }
}

/// What the provider made of a leased link's refresh token.
pub(crate) enum Grant {
    /// New tokens, sealed to be stored (the caller gets the access token).
    Tokens {
        sealed: SealedTokens,
        result: RefreshResult,
    },
    /// The provider refused a refresh token that someone else (another
    /// refresher, a sign-in) had replaced meanwhile: the link is fine.
    Replaced,
    /// The provider refused the link's refresh token: its user must sign
    /// in again.
    Refused,
    /// No grant: the provider is not configured, the token cannot be
    /// opened, or the provider failed.
    Failed(WorkerError),
}

/// The refresh grant at the provider for a link the caller holds the lease
/// of; nothing is stored. A refused grant is checked against a fresh read
/// of the link (`Err`: that read failed).
pub(crate) async fn grant(deps: &Deps, leased: &StoredAccount) -> Result<Grant, WorkerError> {
    let account_id = leased.account.id;
    let Some(provider) = deps.catalogue.get(&leased.account.provider) else {
        return Ok(Grant::Failed(JobError::InvalidProvider.into()));
    };
    let Some(refresh_token) = open(deps, leased, TokenColumn::RefreshToken) else {
        return Ok(Grant::Failed(JobError::RefreshNotSupported.into()));
    };
    match deps.providers.refresh(provider, &refresh_token).await {
        Ok(fresh) => {
            let now = now_ms();
            // A provider that does not rotate keeps the old refresh token
            // valid; one that names no lifetime gets the configured one.
            let refresh = fresh.refresh_token.as_ref().unwrap_or(&refresh_token);
            let lifetime = provider
                .refresh
                .default_expires_in_secs
                .map_or(deps.policy.default_expires_in_ms, |s| {
                    s.saturating_mul(1000)
                });
            let expires_at = fresh
                .expires_at
                .unwrap_or_else(|| now.saturating_add(lifetime));
            let seal = |value: &Secret, column| {
                let binding = binding(&leased.account, column);
                deps.cipher.seal(value.expose(), binding).data
            };
            let sealed = SealedTokens {
                key_id: Some(deps.cipher.current_key_id().to_owned()),
                access_token: Some(seal(&fresh.access_token, TokenColumn::AccessToken)),
                refresh_token: Some(seal(refresh, TokenColumn::RefreshToken)),
                token_secret: None,
                expires_at: Some(expires_at),
            };
            Ok(Grant::Tokens {
                sealed,
                result: RefreshResult {
                    access_token: Some(fresh.access_token),
                    expires_at: Some(expires_at),
                    refreshed: true,
                },
            })
        }
        Err(ProviderError::Refused(reason)) => {
            // Spent by someone else (a sign-in stored new tokens while we
            // held the lease)? Then the link is fine.
            // Compared opened: a re-encryption rewrites the ciphertext of
            // the same token.
            let now = deps.store.find_stored_account(account_id).await?;
            let replaced = now.as_ref().is_some_and(|s| {
                open(deps, s, TokenColumn::RefreshToken).map(|t| t.expose().to_owned())
                    != Some(refresh_token.expose().to_owned())
            });
            if replaced {
                return Ok(Grant::Replaced);
            }
            warn!(account_id, %reason, "the provider refused a refresh token");
            Ok(Grant::Refused)
        }
        Err(e) => Ok(Grant::Failed(WorkerError::from(e))),
    }
}

/// The link's access token, opened.
fn hand(
    deps: &Deps,
    stored: &StoredAccount,
    refreshed: bool,
) -> Result<RefreshResult, WorkerError> {
    let access =
        open(deps, stored, TokenColumn::AccessToken).ok_or(JobError::RefreshNotSupported)?;
    Ok(RefreshResult {
        access_token: Some(access),
        expires_at: stored.tokens.expires_at,
        refreshed,
    })
}

/// One of a link's sealed tokens, opened with the key its row names.
fn open(deps: &Deps, stored: &StoredAccount, column: TokenColumn) -> Option<Secret> {
    let tokens = &stored.tokens;
    let data = match column {
        TokenColumn::AccessToken => tokens.access_token.as_ref(),
        TokenColumn::RefreshToken => tokens.refresh_token.as_ref(),
        TokenColumn::TokenSecret => tokens.token_secret.as_ref(),
    }?;
    let sealed = Sealed {
        key_id: tokens.key_id.clone()?,
        data: data.clone(),
    };
    deps.cipher
        .open(&sealed, binding(&stored.account, column))
        .ok()
        .map(Secret::new)
}

/// Where a link's token is stored: its identity and the column.
fn binding(account: &SocialAccount, column: TokenColumn) -> Binding<'_> {
    Binding::Account {
        provider: &account.provider,
        uid: &account.uid,
        column,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use socialauth_common::types::UserId;

    fn link(
        access: bool,
        refresh: bool,
        expires_at: Option<i64>,
        needs_reauth: bool,
    ) -> StoredAccount {
        StoredAccount {
            account: SocialAccount {
                id: 1,
                user_id: UserId(1),
                provider: "corp".into(),
                uid: "u".into(),
                email: None,
                expires_at,
                needs_reauth,
                created_at: 0,
                last_login_at: 0,
            },
            tokens: SealedTokens {
                key_id: Some("k1".into()),
                access_token: access.then(|| "a".into()),
                refresh_token: refresh.then(|| "r".into()),
                token_secret: None,
                expires_at,
            },
        }
    }

    #[test]
    fn a_link_is_refreshed_only_when_it_must_and_can_be() {
        let now = 1_000_000;
        let margin = 60_000;
        // Valid for long enough, or for an unknown time: handed out.
        assert_eq!(
            next_step(
                &link(true, true, Some(now + margin), false),
                now,
                false,
                margin,
                true
            ),
            Step::Hand
        );
        assert_eq!(
            next_step(&link(true, false, None, false), now, false, margin, true),
            Step::Hand
        );
        // Too close to its expiry, or forced: refreshed.
        assert_eq!(
            next_step(
                &link(true, true, Some(now + margin - 1), false),
                now,
                false,
                margin,
                true
            ),
            Step::Refresh
        );
        assert_eq!(
            next_step(
                &link(true, true, Some(now + margin), false),
                now,
                true,
                margin,
                true
            ),
            Step::Refresh
        );
        assert_eq!(
            next_step(&link(false, true, None, false), now, false, margin, true),
            Step::Refresh
        );
        // Nothing to refresh with.
        assert_eq!(
            next_step(
                &link(true, false, Some(now), false),
                now,
                false,
                margin,
                true
            ),
            Step::Refuse(JobError::RefreshNotSupported)
        );
        assert_eq!(
            next_step(&link(true, false, None, false), now, true, margin, true),
            Step::Refuse(JobError::RefreshNotSupported)
        );
        // A provider whose tokens are not refreshed.
        assert_eq!(
            next_step(
                &link(true, true, Some(now), false),
                now,
                false,
                margin,
                false
            ),
            Step::Refuse(JobError::RefreshNotSupported)
        );
        assert_eq!(
            next_step(&link(true, true, None, false), now, false, margin, false),
            Step::Hand
        );
        // A link whose grant was refused waits for its user.
        assert_eq!(
            next_step(
                &link(true, true, Some(now + margin), true),
                now,
                false,
                margin,
                true
            ),
            Step::Refuse(JobError::NeedsReauth)
        );
    }
}
