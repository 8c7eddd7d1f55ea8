//! All SQL lives here. `Store` is implemented for PostgreSQL and SQLite with
//! the same statements (both accept `$n` placeholders, `RETURNING` and
//! `ON CONFLICT`). Timestamps are milliseconds since the Unix epoch.
//!
//! Callers own the transaction: [`Store::begin`] gives a [`StoreTx`] whose
//! methods the worker's pipeline steps call, then `commit`.

mod auth_tokens;
mod claim_batch;
mod group_commit;
mod jobs;
mod login_batch;
mod login_flows;
mod logins;
mod migrations;
mod oauth_states;
mod social_accounts;
mod sql;
mod state_batch;
mod users;

use crate::jobs::{JobKind, JobResult};
use crate::redemption::FirstUse;
use crate::types::{SocialAccount, User, UserId};
use async_trait::async_trait;
use std::sync::Arc;
use uuid::Uuid;

pub use sql::{PgStore, SqliteStore};

/// Which unique constraint a write ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Constraint {
    UserUsername,
    UserEmail,
    UserReferralCode,
    SocialAccountIdentity,
    Other,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("unique constraint violated: {0:?}")]
    Conflict(Constraint),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(String),
    #[error("stored data could not be read: {0}")]
    Decode(String),
}

impl StoreError {
    /// Worth retrying after a pause (connection lost, pool timed out).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// A login state created by `GET /auth/o/{provider}/`. `Debug` leaves the
/// PKCE verifier and nonce out.
#[derive(Clone)]
pub struct NewOAuthState {
    /// SHA-256 hex of the state value (the value itself is not stored).
    pub state_hash: String,
    pub provider: String,
    pub redirect_uri: String,
    pub pkce_verifier: Option<String>,
    pub nonce: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A consumed login state. `expires_at` lets the caller tell an expired
/// state from an unknown one.
#[derive(Clone)]
pub struct OAuthState {
    pub provider: String,
    pub redirect_uri: String,
    pub pkce_verifier: Option<String>,
    pub nonce: Option<String>,
    pub expires_at: i64,
}

impl std::fmt::Debug for NewOAuthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewOAuthState")
            .field("provider", &self.provider)
            .field("redirect_uri", &self.redirect_uri)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for OAuthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthState")
            .field("provider", &self.provider)
            .field("redirect_uri", &self.redirect_uri)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Taking a login state for a job that came with a code.
#[derive(Debug, Clone, Copy)]
pub struct OAuthStateTake<'a> {
    /// SHA-256 hex of the state value.
    pub state_hash: &'a str,
    pub now: i64,
    /// The job the state is taken for.
    pub job_id: Uuid,
    /// SHA-256 hex of the code it came with.
    pub code_hash: &'a str,
}

/// A login state that was taken already: by whom, when, with which code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenOAuthState {
    pub provider: String,
    pub taken_at: i64,
    pub taken_by: Option<Uuid>,
    pub code_hash: Option<String>,
}

/// An OAuth1 request token's secret, sealed, kept between the two steps.
#[derive(Debug, Clone)]
pub struct NewOAuth1RequestToken {
    pub oauth_token: String,
    pub provider: String,
    pub token_secret_enc: String,
    pub token_key_id: String,
    pub redirect_uri: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A consumed request token (expired ones too: check `expires_at`).
#[derive(Debug, Clone)]
pub struct OAuth1RequestToken {
    pub provider: String,
    pub token_secret_enc: String,
    pub token_key_id: String,
    pub redirect_uri: String,
    pub expires_at: i64,
}

/// A login stopped for a missing email or a bad referral code: the
/// provider's answer, sealed, resumable with its `partial_token`.
#[derive(Debug, Clone)]
pub struct NewPartialLogin {
    /// SHA-256 hex of the partial token.
    pub token_hash: String,
    pub provider: String,
    pub data_enc: String,
    pub token_key_id: String,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone)]
pub struct PartialLogin {
    pub provider: String,
    pub data_enc: String,
    pub token_key_id: String,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub email: Option<String>,
    /// Lowercase email: unique.
    pub email_normalized: Option<String>,
    pub first_name: String,
    pub last_name: String,
    pub referral_code: String,
    pub referred_by: Option<UserId>,
    pub created_at: i64,
}

/// Encrypted provider tokens as stored.
#[derive(Debug, Clone, Default)]
pub struct SealedTokens {
    pub key_id: Option<String>,
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
    pub expires_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewSocialAccount {
    pub user_id: UserId,
    pub provider: String,
    pub uid: String,
    pub email: Option<String>,
    /// The profile as JSON text.
    pub extra_data: String,
    pub tokens: SealedTokens,
    pub created_at: i64,
}

/// Everything a login writes, as one unit: for a known identity, fresh
/// provider tokens on its link; for a new one (when `user` is given), the
/// user and the link; then the app token and the job's stored result.
#[derive(Debug)]
pub struct LoginWrite<'a> {
    /// The link to refresh or create (its `user_id` is ignored).
    pub account: &'a NewSocialAccount,
    /// The user to create for a new identity; `None`: do not create one.
    pub user: Option<&'a NewUser>,
    /// The referrer of a new user, by referral code; unknown: no user is
    /// created.
    pub referral_code: Option<&'a str>,
    pub token_hash: &'a str,
    pub token_expires_at: Option<i64>,
    pub job_id: Uuid,
    pub now: i64,
}

/// The user a login ended with. An inactive user comes back with nothing
/// written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedIn {
    pub user: User,
    pub is_new: bool,
}

/// A job's claim on an authorization code.
#[derive(Debug)]
pub struct CodeClaim<'a> {
    pub provider: &'a str,
    /// SHA-256 hex of the code.
    pub code_hash: &'a str,
    /// SHA-256 hex of what must match for a replay: the PKCE verifier and
    /// the redirect URI the request came with.
    pub request_hash: &'a str,
    pub job_id: Uuid,
    pub now: i64,
    pub expires_at: i64,
}

/// How a claim went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeClaimed {
    /// The code is this job's (claimed now, or before by the same job).
    Claimed,
    /// Another job holds it: who, since when, and whether with the same
    /// request hash.
    Held(FirstUse),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Pending,
    Succeeded,
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "pending" => Some(Self::Pending),
            "succeeded" => Some(Self::Succeeded),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct JobRecord {
    pub id: Uuid,
    pub kind: JobKind,
    pub status: JobStatus,
    /// Present once finished (stored without secrets).
    pub result: Option<JobResult>,
    pub attempts: i32,
    pub created_at: i64,
    pub updated_at: i64,
    /// Set when a poll handed out the token of a finished login.
    pub delivered_at: Option<i64>,
}

/// Operations inside one transaction; dropped without `commit` it rolls back.
#[async_trait]
pub trait StoreTx: Send {
    /// The user linked to `(provider, uid)` and the link's id.
    async fn find_user_by_social(
        &mut self,
        provider: &str,
        uid: &str,
    ) -> Result<Option<(User, i64)>, StoreError>;
    /// The user whose normalized email is `email_normalized`.
    async fn find_user_by_email(
        &mut self,
        email_normalized: &str,
    ) -> Result<Option<User>, StoreError>;
    /// The user owning `referral_code`.
    async fn find_user_by_referral_code(&mut self, code: &str) -> Result<Option<User>, StoreError>;
    /// `Conflict(UserUsername | UserEmail | UserReferralCode)` on duplicates.
    async fn insert_user(&mut self, user: &NewUser) -> Result<User, StoreError>;
    /// `Conflict(SocialAccountIdentity)` when `(provider, uid)` is taken.
    async fn insert_social_account(
        &mut self,
        account: &NewSocialAccount,
    ) -> Result<SocialAccount, StoreError>;
    /// Replaces the stored tokens of a link and clears `needs_reauth`.
    async fn update_social_account_tokens(
        &mut self,
        account_id: i64,
        tokens: &SealedTokens,
        now: i64,
    ) -> Result<(), StoreError>;
    async fn insert_auth_token(
        &mut self,
        token_hash: &str,
        user_id: UserId,
        created_at: i64,
        expires_at: Option<i64>,
    ) -> Result<(), StoreError>;
    /// Inserts or overwrites the job's row with a finished status and result.
    async fn upsert_job_result(
        &mut self,
        id: Uuid,
        kind: JobKind,
        status: JobStatus,
        result: &JobResult,
        attempts: i32,
        now: i64,
    ) -> Result<(), StoreError>;
    /// Consumes a partial login; false when another resume consumed it.
    async fn consume_partial_login(
        &mut self,
        token_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError>;
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `postgres` or `sqlite`.
    fn backend(&self) -> &'static str;
    /// Applies pending migrations.
    async fn migrate(&self) -> Result<(), StoreError>;
    /// A cheap round trip, for readiness.
    async fn ping(&self) -> Result<(), StoreError>;
    async fn begin(&self) -> Result<Box<dyn StoreTx>, StoreError>;

    /// A login in one unit (PostgreSQL: one statement). `None`: the
    /// identity is unknown and no user was created — `user` was `None`, or
    /// `referral_code` names nobody. Conflicts as `insert_user` /
    /// `insert_social_account` report them.
    async fn log_in(&self, login: &LoginWrite<'_>) -> Result<Option<LoggedIn>, StoreError> {
        let account = login.account;
        let mut tx = self.begin().await?;
        let (user, is_new) = match tx
            .find_user_by_social(&account.provider, &account.uid)
            .await?
        {
            Some((user, _)) if !user.is_active => {
                return Ok(Some(LoggedIn {
                    user,
                    is_new: false,
                }));
            }
            Some((user, link_id)) => {
                tx.update_social_account_tokens(link_id, &account.tokens, login.now)
                    .await?;
                (user, false)
            }
            None => {
                let Some(new_user) = login.user else {
                    return Ok(None);
                };
                let referred_by = match login.referral_code {
                    Some(code) => match tx.find_user_by_referral_code(code).await? {
                        Some(referrer) => Some(referrer.id),
                        None => return Ok(None),
                    },
                    None => None,
                };
                let user = tx
                    .insert_user(&NewUser {
                        referred_by,
                        ..new_user.clone()
                    })
                    .await?;
                tx.insert_social_account(&NewSocialAccount {
                    user_id: user.id,
                    ..account.clone()
                })
                .await?;
                (user, true)
            }
        };
        tx.insert_auth_token(login.token_hash, user.id, login.now, login.token_expires_at)
            .await?;
        tx.upsert_job_result(
            login.job_id,
            JobKind::Login,
            JobStatus::Succeeded,
            &login_result(is_new, &user),
            1,
            login.now,
        )
        .await?;
        tx.commit().await?;
        Ok(Some(LoggedIn { user, is_new }))
    }

    async fn insert_oauth_state(&self, state: &NewOAuthState) -> Result<(), StoreError>;
    /// Consumes the state in one statement (`… where consumed_at is null
    /// returning …`) for a job and its code: a second call returns `None`.
    /// Expired states are consumed too and returned, so the caller can say
    /// "expired".
    async fn take_oauth_state(
        &self,
        take: &OAuthStateTake<'_>,
    ) -> Result<Option<OAuthState>, StoreError>;
    /// A state that was taken: by which job, when, with which code.
    async fn find_taken_oauth_state(
        &self,
        state_hash: &str,
    ) -> Result<Option<TakenOAuthState>, StoreError>;

    /// The active or inactive user owning an unexpired app token.
    async fn find_user_by_token(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<User>, StoreError>;
    /// Returns whether a token was deleted.
    async fn delete_auth_token(&self, token_hash: &str) -> Result<bool, StoreError>;
    async fn insert_auth_token(
        &self,
        token_hash: &str,
        user_id: UserId,
        created_at: i64,
        expires_at: Option<i64>,
    ) -> Result<(), StoreError>;
    async fn find_user(&self, id: UserId) -> Result<Option<User>, StoreError>;
    /// Activates or deactivates a user; false when there is no such user.
    async fn update_user_active(&self, id: UserId, active: bool) -> Result<bool, StoreError>;
    async fn find_social_accounts(&self, user_id: UserId)
    -> Result<Vec<SocialAccount>, StoreError>;

    /// Records a job the api stopped waiting for; a row the worker already
    /// wrote is left as it is.
    async fn insert_pending_job(&self, id: Uuid, kind: JobKind, now: i64)
    -> Result<(), StoreError>;
    async fn find_job(&self, id: Uuid) -> Result<Option<JobRecord>, StoreError>;
    /// Marks a finished job's result as handed out; true the first time only.
    async fn take_job_delivery(&self, id: Uuid, now: i64) -> Result<bool, StoreError>;

    async fn insert_oauth1_request_token(
        &self,
        token: &NewOAuth1RequestToken,
    ) -> Result<(), StoreError>;
    /// Consumes a request token in one statement; `None` when unknown or used.
    async fn take_oauth1_request_token(
        &self,
        oauth_token: &str,
        now: i64,
    ) -> Result<Option<OAuth1RequestToken>, StoreError>;
    async fn insert_partial_login(&self, partial: &NewPartialLogin) -> Result<(), StoreError>;
    /// An unexpired, unconsumed partial login (not consumed by reading).
    async fn find_partial_login(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<PartialLogin>, StoreError>;
    /// Claims a code for a job before it is exchanged (providers revoke
    /// what a code gave when it is used twice, so a second exchange must
    /// not happen).
    async fn claim_login_code(&self, claim: &CodeClaim<'_>) -> Result<CodeClaimed, StoreError>;
    async fn find_user_by_referral_code(&self, code: &str) -> Result<Option<User>, StoreError>;
    /// Sets `referred_by` once: `None` when the user already has a referrer
    /// or would refer themself.
    async fn set_referred_by(
        &self,
        user_id: UserId,
        referrer: UserId,
    ) -> Result<Option<User>, StoreError>;
}

/// The stored result of a successful login (no token).
fn login_result(is_new: bool, user: &User) -> JobResult {
    JobResult::Login(crate::jobs::LoginResult {
        token: None,
        is_new,
        user: user.clone(),
        token_job: None,
    })
}

pub type SharedStore = Arc<dyn Store>;

/// How a store connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// The pool's size (at least one).
    pub max_connections: u32,
    /// PostgreSQL: how long a busy writer (of logins, code claims, login
    /// states) waits for more writes of its kind to make with the one at
    /// hand (`[database] login_batch_wait_ms`).
    pub login_batch_wait: std::time::Duration,
}

impl StoreOptions {
    /// A pool of `max_connections`, the other options at their defaults.
    pub fn with_pool(max_connections: u32) -> Self {
        Self {
            max_connections,
            login_batch_wait: std::time::Duration::from_millis(3),
        }
    }
}

/// Connects to `url` (`postgres://…` or `sqlite:…`) with a pool of
/// `max_connections`; SQLite files are created when missing.
pub async fn connect(url: &str, max_connections: u32) -> Result<SharedStore, StoreError> {
    connect_with(url, StoreOptions::with_pool(max_connections)).await
}

/// Connects to `url` with `options`.
pub async fn connect_with(url: &str, options: StoreOptions) -> Result<SharedStore, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(
            SqliteStore::connect(url, options.max_connections).await?,
        ))
    } else {
        Ok(Arc::new(PgStore::connect_with(url, options).await?))
    }
}
