//! All SQL lives here. `Store` is implemented for PostgreSQL and SQLite with
//! the same statements (both accept `$n` placeholders, `RETURNING` and
//! `ON CONFLICT`). Timestamps are milliseconds since the Unix epoch.
//!
//! Callers own the transaction: [`Store::begin`] gives a [`StoreTx`] whose
//! methods the worker's pipeline steps call, then `commit`.

mod audit;
mod auth_tokens;
mod base;
mod campaigns;
mod claim_batch;
mod group_commit;
mod jobs;
mod login_batch;
mod login_flows;
mod logins;
mod migrations;
mod oauth_states;
mod provider_health;
mod purge;
mod reencryption;
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

pub use provider_health::ProviderHealth;
pub use purge::Purge;
pub use sql::{PG_BATCH_STATEMENTS, PG_SESSION_SETTINGS, PgStore, SqliteStore};

/// Which unique constraint a write ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Constraint {
    UserUsername,
    UserEmail,
    UserReferralCode,
    SocialAccountIdentity,
    /// A re-encryption is running already (one at a time).
    RunningReencryption,
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
    /// The signed-in user an association state was issued to (`None`: a
    /// login's).
    pub user_id: Option<UserId>,
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
    pub user_id: Option<UserId>,
}

impl std::fmt::Debug for NewOAuthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewOAuthState")
            .field("provider", &self.provider)
            .field("redirect_uri", &self.redirect_uri)
            .field("expires_at", &self.expires_at)
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for OAuthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthState")
            .field("provider", &self.provider)
            .field("redirect_uri", &self.redirect_uri)
            .field("expires_at", &self.expires_at)
            .field("user_id", &self.user_id)
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
    /// The user an association's state was issued to.
    pub user_id: Option<UserId>,
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
    /// The signed-in user an association's request token was obtained for.
    pub user_id: Option<UserId>,
}

/// A consumed request token (expired ones too: check `expires_at`).
#[derive(Debug, Clone)]
pub struct OAuth1RequestToken {
    pub provider: String,
    pub token_secret_enc: String,
    pub token_key_id: String,
    pub redirect_uri: String,
    pub expires_at: i64,
    pub user_id: Option<UserId>,
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
    /// Whether a provider verified `email`.
    pub email_verified: bool,
    pub first_name: String,
    pub last_name: String,
    pub referral_code: String,
    pub referred_by: Option<UserId>,
    pub created_at: i64,
}

impl NewUser {
    /// The user this becomes once written with `id` (active).
    pub fn created(&self, id: UserId) -> User {
        User {
            id,
            username: self.username.clone(),
            email: self.email.clone(),
            email_verified: self.email_verified,
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            is_active: true,
            referral_code: self.referral_code.clone(),
            referred_by: self.referred_by,
            created_at: self.created_at,
        }
    }
}

/// Encrypted provider tokens as stored.
#[derive(Debug, Clone, Default)]
pub struct SealedTokens {
    pub key_id: Option<String>,
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
    /// OAuth 1.0a: the access token's secret.
    pub token_secret: Option<String>,
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

/// A link as stored, with its sealed provider tokens.
#[derive(Debug, Clone)]
pub struct StoredAccount {
    pub account: SocialAccount,
    pub tokens: SealedTokens,
}

/// A refresh campaign as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Campaign {
    pub id: Uuid,
    /// As asked (`None`: every provider whose tokens are refreshed).
    pub provider: Option<String>,
    /// The providers it covers, in planning order.
    pub providers: Vec<String>,
    pub expiring_within_secs: i64,
    /// Accounts whose access tokens expire before this (ms) are covered.
    pub expiring_before: i64,
    pub rate_per_second: Option<f64>,
    pub status: CampaignStatus,
    /// Where planning goes on from.
    pub plan: PlanState,
    /// Every account it covers has been planned.
    pub planned: bool,
    pub pages: i64,
    /// Pages known to be published (those after may not be).
    pub published_pages: i64,
    /// Accounts planned.
    pub total: i64,
    pub counts: CampaignCounts,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

impl Campaign {
    /// Accounts planned and not yet handled.
    pub fn remaining(&self) -> i64 {
        self.total.saturating_sub(self.counts.handled()).max(0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CampaignStatus {
    Running,
    Done,
    Cancelled,
}

impl CampaignStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Done => "done",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "running" => Some(Self::Running),
            "done" => Some(Self::Done),
            "cancelled" => Some(Self::Cancelled),
            _ => None,
        }
    }
}

/// Planning's place: the provider (an index into the campaign's
/// providers) and the last account id planned of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanState {
    pub provider_index: i64,
    pub cursor: i64,
}

/// How the items handled so far came out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CampaignCounts {
    pub refreshed: i64,
    pub failed: i64,
    pub needs_reauth: i64,
    pub skipped: i64,
}

impl CampaignCounts {
    pub fn handled(&self) -> i64 {
        self.refreshed + self.failed + self.needs_reauth + self.skipped
    }
}

/// How one account of a campaign came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemOutcome {
    /// Refreshed at the provider by the campaign.
    Refreshed,
    /// The provider could not be reached or answered with an error.
    Failed,
    /// The provider refused the refresh token: the link needs its user.
    NeedsReauth,
    /// Nothing to do: refreshed meanwhile by someone else, removed, or no
    /// longer refreshable.
    Skipped,
}

impl ItemOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Refreshed => "refreshed",
            Self::Failed => "failed",
            Self::NeedsReauth => "needs_reauth",
            Self::Skipped => "skipped",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "refreshed" => Some(Self::Refreshed),
            "failed" => Some(Self::Failed),
            "needs_reauth" => Some(Self::NeedsReauth),
            "skipped" => Some(Self::Skipped),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewCampaign {
    pub id: Uuid,
    pub provider: Option<String>,
    pub providers: Vec<String>,
    pub expiring_within_secs: i64,
    pub expiring_before: i64,
    pub rate_per_second: Option<f64>,
    pub created_at: i64,
}

/// One planning step: the accounts it adds (each with its page), the pages
/// it opens (with their providers), from which state to which.
#[derive(Debug, Clone)]
pub struct PlanStep {
    pub from: PlanState,
    pub to: PlanState,
    /// Every account is planned after this step.
    pub planned: bool,
    pub items: Vec<(i64, i64)>,
    pub pages: Vec<(i64, String)>,
}

/// An account of a campaign, handled: its outcome and, when refreshed, its
/// new tokens. Whatever its outcome, a lease the handler holds on it is
/// given back. `Debug` says whether it carries tokens, not even their
/// ciphertext.
#[derive(Clone)]
pub struct CampaignItem {
    pub account_id: i64,
    pub outcome: ItemOutcome,
    pub tokens: Option<SealedTokens>,
}

impl std::fmt::Debug for CampaignItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CampaignItem")
            .field("account_id", &self.account_id)
            .field("outcome", &self.outcome)
            .field("tokens", &self.tokens.is_some())
            .finish()
    }
}

/// A re-encryption's status: running, done or cancelled, as a campaign's.
pub type ReencryptionStatus = CampaignStatus;

/// A re-encryption as stored: every link's sealed tokens moved to
/// `key_id` and the current format, page by page in link id order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reencryption {
    pub id: Uuid,
    /// The key every token moves to.
    pub key_id: String,
    pub status: ReencryptionStatus,
    /// Links due when a worker first took it (`None` until then).
    pub total: Option<i64>,
    /// The last link id handled.
    pub after_id: i64,
    /// Links sealed again.
    pub moved: i64,
    /// Links rewritten meanwhile (by a refresh or a sign-in), left as they
    /// were written.
    pub changed: i64,
    /// Links whose tokens could not be opened, left as they were.
    pub failed: i64,
    /// Links still due when it finished.
    pub remaining_at_end: Option<i64>,
    pub lease_owner: Option<Uuid>,
    pub lease_until: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

impl Reencryption {
    /// Links handled.
    pub fn done(&self) -> i64 {
        self.moved + self.changed + self.failed
    }

    /// Links still due: once done, as counted at its end; before, the
    /// total less those handled (`None` until the total is counted).
    pub fn remaining(&self) -> Option<i64> {
        match (self.status, self.remaining_at_end) {
            (ReencryptionStatus::Done, Some(left)) => Some(left),
            _ => self.total.map(|t| t.saturating_sub(self.done()).max(0)),
        }
    }
}

/// A link's tokens sealed again: as they were read (the write holds only
/// while they still are) and as they are to be. `Debug` shows neither's
/// ciphertext.
#[derive(Clone)]
pub struct Resealed {
    pub account_id: i64,
    pub old: SealedTokens,
    pub new: SealedTokens,
}

impl std::fmt::Debug for Resealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resealed")
            .field("account_id", &self.account_id)
            .field("old_key_id", &self.old.key_id)
            .field("new_key_id", &self.new.key_id)
            .finish_non_exhaustive()
    }
}

/// A page of a re-encryption, written in one transaction by the owner of
/// its lease.
#[derive(Debug, Clone, Copy)]
pub struct ReencryptionPage<'a> {
    pub id: Uuid,
    pub owner: Uuid,
    /// Where the page starts: the run's `after_id` as read.
    pub from: i64,
    /// Where it ends: its last link id.
    pub to: i64,
    pub items: &'a [Resealed],
    /// Links of the page whose tokens could not be opened.
    pub failed: i64,
    pub now: i64,
    /// The lease held on until then.
    pub lease_until: i64,
}

/// How many links have their tokens under a key in a format (`v1`, `v2`:
/// [`crate::crypto::SealFormat`]; `v1` when any of a link's columns is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedCount {
    pub key_id: String,
    pub format: String,
    pub links: i64,
}

/// What the pipeline asks the store before it decides a login.
#[derive(Debug, Clone, Copy)]
pub struct FactsQuery<'a> {
    pub provider: &'a str,
    pub uid: &'a str,
    /// The email the login would use, normalized.
    pub email_normalized: Option<&'a str>,
    pub referral_code: Option<&'a str>,
}

/// A link and its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedUser {
    pub account_id: i64,
    pub user: User,
}

/// What the store knows of a login, as [`FactsQuery`] asked. The email's
/// owner and the referrer matter only to an identity without a link: they
/// may be left out (`None`) when it has one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoginFacts {
    /// The identity's link and user.
    pub account: Option<LinkedUser>,
    /// The user whose email the login's is (an unlinked identity's).
    pub email_owner: Option<User>,
    /// The owner of the referral code (an unlinked identity's).
    pub referrer: Option<UserId>,
    /// For an identity without a link: an id the store set aside for the
    /// user the login may create (PostgreSQL); `None` where the store
    /// assigns it when the user is written (SQLite).
    pub new_user_id: Option<UserId>,
}

/// What a login changes, as the pipeline decided.
#[derive(Debug, Clone, Copy)]
pub enum LoginChange<'a> {
    /// A known identity: fresh provider tokens on its link, while the link
    /// is still the user's.
    Existing { account_id: i64 },
    /// A new user and its link.
    Create { user: &'a NewUser },
    /// A new link to an existing user.
    Link,
}

/// Everything a login writes, as one unit: the change, the app token, the
/// job's stored result, the resumed partial login consumed, and an audit
/// event.
#[derive(Debug)]
pub struct LoginWrite<'a> {
    pub change: LoginChange<'a>,
    /// The user: the linked or linking one, or the new user's id from
    /// [`LoginFacts::new_user_id`]; `None` for a new user whose id the
    /// store assigns.
    pub user_id: Option<UserId>,
    /// The link to refresh or create (its `user_id` is ignored); its
    /// tokens are written in every case — for a known link, tokens without
    /// a key id (none at all) leave the stored ones as they are.
    pub account: &'a NewSocialAccount,
    pub token_hash: &'a str,
    pub token_expires_at: Option<i64>,
    pub job_id: Uuid,
    /// The job's stored result (no secrets); a new user's id the store
    /// assigns is put into it.
    pub result: &'a JobResult,
    /// SHA-256 hex of the partial token of the login this one resumes.
    pub partial_hash: Option<&'a str>,
    pub audit: Option<&'a NewAuditEvent>,
    pub now: i64,
}

/// The pipeline's decision on a login, which [`Store::log_in`] calls
/// between reading the login's facts and writing: the rule is the
/// caller's; the store only reads, asks and writes.
pub trait DecideLogin: Send + Sync + 'static {
    /// The login to write on these facts, or `None` to write nothing (the
    /// decider keeps why). Called once per reading of the facts: a write
    /// made again alone (its batch refused) reads and asks again.
    fn decide(&self, facts: &LoginFacts) -> Option<Box<dyn PlannedLogin>>;

    /// About how many bytes its write takes (a batch's bound).
    fn size_hint(&self) -> usize;
}

/// A login decided on, ready to write.
pub trait PlannedLogin: Send {
    fn write(&self) -> LoginWrite<'_>;
}

/// How a login write went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Written; the user's id.
    Done(UserId),
    /// The partial login it resumes was consumed (or is gone): nothing
    /// was written.
    PartialGone,
    /// What it relied on no longer holds (the link is gone or another
    /// user's): nothing was written.
    Lost,
}

/// An event of the audit log, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub id: i64,
    pub at: i64,
    pub kind: String,
    pub user_id: Option<UserId>,
    pub provider: Option<String>,
    pub outcome: String,
    /// A JSON object.
    pub detail: String,
    pub request_id: Option<String>,
}

/// Which audit events to list: newest first, older than `before` (the
/// cursor: an event's id), by user and provider when given.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery<'a> {
    pub user_id: Option<UserId>,
    pub provider: Option<&'a str>,
    pub before: Option<i64>,
    pub limit: u32,
}

/// An event of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEvent {
    /// `automatic_link`, `email_reclaimed`, …
    pub kind: &'static str,
    pub user_id: Option<UserId>,
    pub provider: Option<String>,
    pub outcome: &'static str,
    /// A JSON object, never a secret.
    pub detail: String,
    pub request_id: Option<String>,
    pub at: i64,
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
    /// Replaces the stored tokens of a link while it is `user_id`'s and
    /// clears `needs_reauth`; false when it is not (gone, or another's).
    async fn update_social_account_tokens(
        &mut self,
        account_id: i64,
        user_id: UserId,
        tokens: &SealedTokens,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Clears `user_id`'s email while it is `email_normalized` and was
    /// not verified; false when it is not.
    async fn take_unverified_email(
        &mut self,
        user_id: UserId,
        email_normalized: &str,
    ) -> Result<bool, StoreError>;
    async fn insert_audit_event(&mut self, event: &NewAuditEvent) -> Result<(), StoreError>;
    /// Whether `user_id` is a user and active.
    async fn is_active_user(&mut self, user_id: UserId) -> Result<bool, StoreError>;
    /// [`StoreTx::is_active_user`], holding the user until the transaction
    /// ends: changes to one user's links made under it are made one at a
    /// time.
    async fn lock_active_user(&mut self, user_id: UserId) -> Result<bool, StoreError>;
    /// The user's links with their sealed tokens, oldest first.
    async fn find_stored_accounts(
        &mut self,
        user_id: UserId,
    ) -> Result<Vec<StoredAccount>, StoreError>;
    /// Removes a link of the user; false when it is not there.
    async fn delete_social_account(
        &mut self,
        account_id: i64,
        user_id: UserId,
    ) -> Result<bool, StoreError>;
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

    /// The facts of a login, alone ([`Store::log_in`] reads them together
    /// with other logins').
    async fn find_login_facts(&self, query: &FactsQuery<'_>) -> Result<LoginFacts, StoreError>;

    /// A login's writes in one transaction (PostgreSQL: one statement,
    /// [`Store::log_in`]'s write for one login). Conflicts as `insert_user` /
    /// `insert_social_account` report them, with nothing written.
    async fn write_login(&self, login: &LoginWrite<'_>) -> Result<Written, StoreError> {
        write_in_transaction(self.begin().await?, login).await
    }

    /// A login as one storage operation: its facts read, `decider` asked,
    /// and what it decided written — on PostgreSQL with the other logins
    /// that come in together: one statement reads their facts, one writes
    /// their decisions, one commit. `None`: the decider wrote nothing.
    async fn log_in(
        &self,
        query: &FactsQuery<'_>,
        decider: Arc<dyn DecideLogin>,
    ) -> Result<Option<Written>, StoreError> {
        let facts = self.find_login_facts(query).await?;
        match decider.decide(&facts) {
            Some(plan) => self.write_login(&plan.write()).await.map(Some),
            None => Ok(None),
        }
    }

    /// Takes `email_normalized` from `user_id`, who only typed it, and
    /// records `event`; false (nothing written) when the user no longer
    /// has it unverified.
    async fn reclaim_email(
        &self,
        user_id: UserId,
        email_normalized: &str,
        event: &NewAuditEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        if !tx.take_unverified_email(user_id, email_normalized).await? {
            return Ok(false);
        }
        tx.insert_audit_event(event).await?;
        tx.commit().await?;
        Ok(true)
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
    /// Gives back a state that job `job_id` took, when that job never
    /// reached the queue; false when it was not taken by that job.
    async fn release_oauth_state(&self, state_hash: &str, job_id: Uuid)
    -> Result<bool, StoreError>;
    /// A state not taken yet (expired or not), read without taking it.
    async fn find_open_oauth_state(
        &self,
        state_hash: &str,
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
    /// The links whose access tokens expire in `[from, to)` and that a
    /// scheduled refresh may take at `now` (a refresh token, usable,
    /// nobody refreshing them), the soonest first, at most `limit`.
    async fn find_refresh_due(
        &self,
        from: i64,
        to: i64,
        now: i64,
        limit: u32,
    ) -> Result<Vec<i64>, StoreError>;
    /// One link with its sealed tokens.
    async fn find_stored_account(
        &self,
        account_id: i64,
    ) -> Result<Option<StoredAccount>, StoreError>;
    /// Takes the link's refresh lease for `owner` until `until`, when
    /// nobody holds it at `now`: the link as it is under the lease; `None`
    /// when another job holds it (or there is no such link).
    async fn take_refresh_lease(
        &self,
        account_id: i64,
        owner: Uuid,
        now: i64,
        until: i64,
    ) -> Result<Option<StoredAccount>, StoreError>;
    /// A refresh's new tokens, written while `owner` holds the lease, which
    /// it gives back (and the link is usable again); false when it no
    /// longer held it.
    async fn finish_refresh(
        &self,
        account_id: i64,
        owner: Uuid,
        tokens: &SealedTokens,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Gives the lease back without new tokens; `needs_reauth`: the
    /// provider refused the grant.
    async fn end_refresh(
        &self,
        account_id: i64,
        owner: Uuid,
        needs_reauth: bool,
    ) -> Result<bool, StoreError>;
    async fn insert_campaign(&self, campaign: &NewCampaign) -> Result<Campaign, StoreError>;
    async fn find_campaign(&self, id: Uuid) -> Result<Option<Campaign>, StoreError>;
    /// The newest campaigns first, at most `limit`.
    async fn list_campaigns(&self, limit: u32) -> Result<Vec<Campaign>, StoreError>;
    /// Running campaigns with nothing written after `written_before`, the
    /// longest stalled first, at most `limit`.
    async fn find_stalled_campaigns(
        &self,
        written_before: i64,
        limit: u32,
    ) -> Result<Vec<Campaign>, StoreError>;
    /// Stops a running campaign; false when it is not running (or unknown).
    async fn cancel_campaign(&self, id: Uuid, now: i64) -> Result<bool, StoreError>;
    /// Moves a running campaign's `updated_at` from `seen_updated_at` to
    /// `now` (a page's heartbeat; taking on a stalled campaign's revival):
    /// true for one caller only; false when it was written since, or
    /// ended.
    async fn touch_campaign(
        &self,
        id: Uuid,
        seen_updated_at: i64,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// The next accounts a campaign may cover: of `provider`, after the
    /// account id `after`, with a refresh token, usable, the access token
    /// expiring before `expiring_before`; at most `limit`, in id order.
    async fn find_plan_candidates(
        &self,
        provider: &str,
        after: i64,
        expiring_before: i64,
        limit: u32,
    ) -> Result<Vec<i64>, StoreError>;
    /// Records a planning step in one transaction (its items, its pages,
    /// the campaign's total and place); false, and nothing written, when
    /// the campaign is no longer at `step.from` (another planner made the
    /// step) or no longer running.
    async fn add_plan_step(&self, id: Uuid, step: &PlanStep, now: i64) -> Result<bool, StoreError>;
    /// Pages `from` ≤ page < `to` of a campaign, with their providers.
    async fn find_campaign_pages(
        &self,
        id: Uuid,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, String)>, StoreError>;
    /// The pages of a campaign with an item not yet handled.
    async fn find_unfinished_pages(&self, id: Uuid) -> Result<Vec<(i64, String)>, StoreError>;
    /// Every page before `pages` is published.
    async fn mark_pages_published(&self, id: Uuid, pages: i64) -> Result<(), StoreError>;
    /// The accounts of a page not yet handled.
    async fn find_page_items(&self, id: Uuid, page: i64) -> Result<Vec<i64>, StoreError>;
    /// Takes the refresh leases of the links among `account_ids` that
    /// nobody holds at `now` — or that `owner` holds already (the call
    /// made again after its answer was lost) — for `owner` until `until`:
    /// those links, with their tokens as they are under the lease.
    async fn take_refresh_leases(
        &self,
        account_ids: &[i64],
        owner: Uuid,
        now: i64,
        until: i64,
    ) -> Result<Vec<StoredAccount>, StoreError>;
    /// Handled items of a campaign, in one transaction: refreshed tokens
    /// stored and leases `owner` holds given back (a refused grant marks
    /// its link `needs_reauth`); new tokens that cannot be stored (`owner`
    /// no longer holds the lease) make the item `failed`; each item's
    /// outcome written once — an item already written keeps its outcome
    /// and is not counted again — and the campaign's counts raised by the
    /// outcomes written now.
    async fn finish_campaign_items(
        &self,
        id: Uuid,
        owner: Uuid,
        items: &[CampaignItem],
        now: i64,
    ) -> Result<CampaignCounts, StoreError>;
    /// Records a re-encryption to key `key_id`, running;
    /// `Conflict(RunningReencryption)` when one is running already.
    async fn insert_reencryption(
        &self,
        id: Uuid,
        key_id: &str,
        now: i64,
    ) -> Result<Reencryption, StoreError>;
    async fn find_reencryption(&self, id: Uuid) -> Result<Option<Reencryption>, StoreError>;
    /// The newest first, at most `limit`.
    async fn list_reencryptions(&self, limit: u32) -> Result<Vec<Reencryption>, StoreError>;
    /// Stops a running re-encryption; false when it is not running.
    async fn cancel_reencryption(&self, id: Uuid, now: i64) -> Result<bool, StoreError>;
    /// Takes the running re-encryption to key `key_id` for `owner` until
    /// `until`, when nobody holds it at `now` (or `owner` does): one taker
    /// of many gets it.
    async fn take_reencryption(
        &self,
        key_id: &str,
        owner: Uuid,
        now: i64,
        until: i64,
    ) -> Result<Option<Reencryption>, StoreError>;
    /// Sets the total of a re-encryption `owner` holds, once; false when
    /// it was set already or `owner` no longer holds it.
    async fn set_reencryption_total(
        &self,
        id: Uuid,
        owner: Uuid,
        total: i64,
    ) -> Result<bool, StoreError>;
    /// Gives back the lease `owner` holds (a stopping worker).
    async fn release_reencryption(&self, id: Uuid, owner: Uuid) -> Result<(), StoreError>;
    /// The links due for a move to key `key_id` (another key, or a column
    /// in an older format) after link id `after`, with their sealed
    /// tokens, in id order, at most `limit`.
    async fn find_reencryption_due(
        &self,
        key_id: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredAccount>, StoreError>;
    /// A page of a re-encryption, in one transaction: each link's tokens
    /// replaced only while they are still as read (a refresh or a sign-in
    /// that wrote meanwhile keeps what it wrote), the run's place moved
    /// from `page.from` to `page.to` and its counts raised (moved: written,
    /// changed: not written, failed as given). The links written; `None`,
    /// and nothing written, when `page.owner` no longer holds the running
    /// re-encryption at `page.from`.
    async fn write_reencryption_page(
        &self,
        page: &ReencryptionPage<'_>,
    ) -> Result<Option<Vec<i64>>, StoreError>;
    /// Ends a re-encryption `owner` holds as done, `remaining` links still
    /// due; false when it no longer held it.
    async fn finish_reencryption(
        &self,
        id: Uuid,
        owner: Uuid,
        remaining: i64,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Links with sealed tokens, by key id and format.
    async fn count_sealed_tokens(&self) -> Result<Vec<SealedCount>, StoreError>;
    /// Reserves `span_us` of the rate budget `key` (shared by every
    /// process): the time (µs) the reservation starts, the budget's next
    /// free time or `now_us` when it is idle.
    async fn reserve_rate(&self, key: &str, span_us: i64, now_us: i64) -> Result<i64, StoreError>;
    /// Audit events as `query` asks, newest first.
    async fn find_audit_events(
        &self,
        query: &AuditQuery<'_>,
    ) -> Result<Vec<AuditEvent>, StoreError>;

    /// Records a job the api stopped waiting for (answered with 202); a row
    /// the worker already wrote keeps its outcome.
    async fn insert_pending_job(&self, id: Uuid, kind: JobKind, now: i64)
    -> Result<(), StoreError>;
    async fn find_job(&self, id: Uuid) -> Result<Option<JobRecord>, StoreError>;
    /// Deletes at most `limit` rows of `what` older than `before` (its
    /// expiry, or last write for jobs); returns how many.
    async fn purge(&self, what: Purge, before: i64, limit: i64) -> Result<u64, StoreError>;
    /// Records `provider`'s breaker as a worker saw it change: open until
    /// `open_until` (ms), or closed (`None`).
    async fn put_provider_health(
        &self,
        provider: &str,
        open_until: Option<i64>,
        now: i64,
    ) -> Result<(), StoreError>;
    /// Every provider's last recorded breaker state.
    async fn list_provider_health(&self) -> Result<Vec<ProviderHealth>, StoreError>;
    /// Counts one more redelivery of job `id` (the broker handed it out
    /// again); returns how many there have been.
    async fn count_redelivery(&self, id: Uuid, now: i64) -> Result<i64, StoreError>;
    /// Marks a finished job's result as handed out; true the first time
    /// only, and only for a job answered with 202.
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
    /// Gives back the claim `job_id` holds on a credential (a token whose
    /// use failed before anything was spent with it); false when it holds
    /// none.
    async fn release_login_code(
        &self,
        provider: &str,
        code_hash: &str,
        job_id: Uuid,
    ) -> Result<bool, StoreError>;
    async fn find_user_by_referral_code(&self, code: &str) -> Result<Option<User>, StoreError>;
    /// Sets `referred_by` once: `None` when the user already has a referrer
    /// or would refer themself.
    async fn set_referred_by(
        &self,
        user_id: UserId,
        referrer: UserId,
    ) -> Result<Option<User>, StoreError>;
}

/// A login's writes as statements of one transaction: what
/// [`Store::write_login`] does where they are not made together.
async fn write_in_transaction(
    mut tx: Box<dyn StoreTx>,
    login: &LoginWrite<'_>,
) -> Result<Written, StoreError> {
    if let Some(hash) = login.partial_hash
        && !tx.consume_partial_login(hash, login.now).await?
    {
        return Ok(Written::PartialGone);
    }
    let account = login.account;
    let user_id = match (login.change, login.user_id) {
        (LoginChange::Existing { account_id }, Some(user_id)) => {
            if !tx
                .update_social_account_tokens(account_id, user_id, &account.tokens, login.now)
                .await?
            {
                return Ok(Written::Lost);
            }
            user_id
        }
        (LoginChange::Create { user }, _) => {
            // This store assigns the id.
            let created = tx.insert_user(user).await?;
            tx.insert_social_account(&NewSocialAccount {
                user_id: created.id,
                ..account.clone()
            })
            .await?;
            created.id
        }
        (LoginChange::Link, Some(user_id)) => {
            if !tx.is_active_user(user_id).await? {
                return Ok(Written::Lost);
            }
            tx.insert_social_account(&NewSocialAccount {
                user_id,
                ..account.clone()
            })
            .await?;
            user_id
        }
        (LoginChange::Existing { .. } | LoginChange::Link, None) => return Ok(Written::Lost),
    };
    tx.insert_auth_token(login.token_hash, user_id, login.now, login.token_expires_at)
        .await?;
    tx.upsert_job_result(
        login.job_id,
        JobKind::Login,
        JobStatus::Succeeded,
        &with_user_id(login.result, user_id),
        1,
        login.now,
    )
    .await?;
    if let Some(event) = login.audit {
        tx.insert_audit_event(&NewAuditEvent {
            user_id: Some(user_id),
            ..event.clone()
        })
        .await?;
    }
    tx.commit().await?;
    Ok(Written::Done(user_id))
}

/// `result` naming `user_id` as its user (a login result's user is given
/// its id once the store assigned it).
fn with_user_id(result: &JobResult, user_id: UserId) -> JobResult {
    match result {
        JobResult::Login(login) if login.user.id != user_id => {
            let mut login = login.clone();
            login.user.id = user_id;
            JobResult::Login(login)
        }
        other => other.clone(),
    }
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
