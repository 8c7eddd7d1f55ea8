//! The PostgreSQL and SQLite stores: one body ([`impl_store!`]), two
//! backends. The SQL text lives in one module per table and is the same for
//! both dialects; what differs is passed to the macro (the statement that
//! opens a transaction, the migrator).
//!
//! Every method is one statement, so one round trip: uniqueness is left to
//! the database's constraints ([`map_err`] turns their names into
//! [`super::Constraint`]s), never checked beforehand.

use super::base::{map_err, map_migrate_err};
use super::claim_batch::{ClaimRow, CodeClaims};
use super::group_commit::{Batcher, Together, write_together};
use super::login_batch::{FactReads, FactsRow, LogInRow, LogIns, LoginWrites, WriteRow};
use super::state_batch::{StateInserts, StateTake, StateTakes};
use super::{
    AuditEvent, AuditQuery, Campaign, CampaignCounts, CampaignItem, CodeClaim, CodeClaimed,
    DecideLogin, FactsQuery, ItemOutcome, JobRecord, JobStatus, LinkedUser, LoginFacts, LoginWrite,
    NewAuditEvent, NewCampaign, NewOAuth1RequestToken, NewOAuthState, NewPartialLogin,
    NewSocialAccount, NewUser, OAuth1RequestToken, OAuthState, OAuthStateTake, PartialLogin,
    PlanStep, SealedTokens, Store, StoreError, StoreOptions, StoreTx, StoredAccount,
    TakenOAuthState, UserId, Written, audit, auth_tokens, campaigns, jobs, login_flows, migrations,
    oauth_states, provider_health, social_accounts, users, write_in_transaction,
};
use super::{Reencryption, ReencryptionPage, Resealed, SealedCount, reencryption};
use crate::jobs::{JobKind, JobResult};
use crate::types::{SocialAccount, User};
use async_trait::async_trait;
use sqlx::Transaction;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, Postgres};
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// How long a SQLite writer waits for the write lock before `Unavailable`.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// What every PostgreSQL session of the store runs first (see
/// [`PgStore::connect_with`]).
pub const PG_SESSION_SETTINGS: &str = "SET enable_seqscan = off";

/// The PostgreSQL store's statements over arrays (its batches), by name:
/// each must read the rows of its batch through index conditions whatever
/// the tables' statistics, since their plans are made once per session.
pub const PG_BATCH_STATEMENTS: [(&str, &str); 11] = [
    ("login facts", super::logins::FIND_FACTS_PG),
    ("login writes", super::logins::WRITE_LOGINS_PG),
    ("plain login writes", super::logins::WRITE_PLAIN_LOGINS_PG),
    ("code claims", super::login_flows::CLAIM_LOGIN_CODES_PG),
    ("login state inserts", super::oauth_states::INSERT_MANY_PG),
    ("login state takes", super::oauth_states::TAKE_MANY_PG),
    ("campaign leases", super::campaigns::TAKE_LEASES_PG),
    ("campaign tokens", super::campaigns::STORE_REFRESHED_PG),
    ("campaign lease ends", super::campaigns::END_LEASES_PG),
    ("campaign outcomes", super::campaigns::RECORD_OUTCOMES_PG),
    ("re-encryption writes", super::reencryption::RESEAL_MANY_PG),
];

/// PostgreSQL, the production store.
pub struct PgStore {
    pool: PgPool,
    /// The pipeline's logins: read, decided and written together.
    log_ins: Batcher<LogIns>,
    claims: Batcher<CodeClaims>,
    states_in: Batcher<StateInserts>,
    states_out: Batcher<StateTakes>,
}

/// A SQLite file (or `sqlite::memory:`), the embedded default.
pub struct SqliteStore {
    pool: SqlitePool,
}

impl PgStore {
    /// Opens a pool of `max_connections` (at least one) to `url`.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        Self::connect_with(url, StoreOptions::with_pool(max_connections)).await
    }

    /// Opens a pool to `url` as `store` says.
    pub async fn connect_with(url: &str, store: StoreOptions) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(map_err)?;
        let pool = PgPoolOptions::new()
            .max_connections(store.max_connections.max(1))
            // Every statement of the store finds its rows through an index.
            // A prepared statement keeps the generic plan made at its sixth
            // run: made while a table is young (a fresh database, the first
            // minutes of a signup burst), that plan would scan the whole
            // table, and keep doing so as the table grows. Without
            // sequential scans the planner keeps to the indexes whatever
            // the table's size (a test checks the batch statements' plans:
            // `PG_BATCH_STATEMENTS`). A `SET` rather than a startup
            // parameter, which connection poolers such as PgBouncer refuse.
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::raw_sql(PG_SESSION_SETTINGS).execute(conn).await?;
                    Ok(())
                })
            })
            // No ping before each call (one round trip per method). A
            // connection that died while idle fails its call with
            // `Unavailable`, which callers retry, and is then replaced.
            .test_before_acquire(false)
            // Fail fast (and visibly) when the server is unreachable.
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(map_err)?;
        let wait = store.login_batch_wait;
        Ok(Self {
            // A login's read and its write share one batch and one wait:
            // measured, reads made at once came in batches so small that
            // PostgreSQL spent half as much again per login.
            log_ins: Batcher::start(pool.clone(), wait),
            claims: Batcher::start(pool.clone(), wait),
            states_in: Batcher::start(pool.clone(), wait),
            states_out: Batcher::start(pool.clone(), wait),
            pool,
        })
    }

    /// Closes the pool: connections in use are closed when they come back,
    /// idle ones at once. Later calls fail as `Unavailable`.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Login writes made together, as the login writer makes a batch: one
    /// statement, or, if the server refuses it, each alone. Answers in
    /// their order. The identities, job ids and partial logins must be
    /// distinct, and each write must name its user (a new user's id set
    /// aside by [`Store::find_login_facts`]).
    pub async fn write_logins_together(
        &self,
        logins: &[LoginWrite<'_>],
    ) -> Vec<Result<Written, StoreError>> {
        let mut rows = Vec::with_capacity(logins.len());
        for login in logins {
            match WriteRow::new(login) {
                Ok(Some(row)) => rows.push(row),
                Ok(None) => {
                    let e = StoreError::Database("a write without its user's id".into());
                    return logins.iter().map(|_| Err(e.clone())).collect();
                }
                Err(e) => return logins.iter().map(|_| Err(e.clone())).collect(),
            }
        }
        write_together::<LoginWrites>(&self.pool, &rows.iter().collect::<Vec<_>>()).await
    }

    /// Login facts read together, as the facts reader makes a batch.
    pub async fn find_login_facts_together(
        &self,
        queries: &[FactsQuery<'_>],
    ) -> Vec<Result<LoginFacts, StoreError>> {
        let rows: Vec<FactsRow> = queries.iter().map(FactsRow::new).collect();
        write_together::<FactReads>(&self.pool, &rows.iter().collect::<Vec<_>>()).await
    }

    /// Code claims made together, as the claim queue makes a batch. Answers
    /// in their order. The codes must be distinct.
    pub async fn claim_codes_together(
        &self,
        claims: &[CodeClaim<'_>],
    ) -> Vec<Result<CodeClaimed, StoreError>> {
        let rows: Vec<ClaimRow> = claims.iter().map(ClaimRow::new).collect();
        write_together::<CodeClaims>(&self.pool, &rows.iter().collect::<Vec<_>>()).await
    }
}

impl SqliteStore {
    /// A login's facts, one lookup each: the identity's link and
    /// user, the email's owner, the referrer.
    async fn find_facts_alone(
        pool: &SqlitePool,
        q: &FactsQuery<'_>,
    ) -> Result<LoginFacts, StoreError> {
        // One read transaction (deferred: no write lock), so the three
        // lookups see one state of the database, as PostgreSQL's one
        // statement does: a first login committing in between must not
        // show its user without its link.
        let mut tx = pool.begin().await.map_err(map_err)?;
        let account = sqlx::query(users::FIND_BY_SOCIAL)
            .bind(q.provider)
            .bind(q.uid)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?
            .as_ref()
            .map(users::with_link_from_row)
            .transpose()?
            .map(|(user, account_id)| LinkedUser { account_id, user });
        // The owner and the referrer matter to an unlinked identity only.
        let unlinked = account.is_none();
        let email_owner = match q.email_normalized.filter(|_| unlinked) {
            Some(email) => sqlx::query(users::FIND_BY_EMAIL)
                .bind(email)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?
                .as_ref()
                .map(users::from_row)
                .transpose()?,
            None => None,
        };
        let referrer = match q.referral_code.filter(|_| unlinked) {
            Some(code) => sqlx::query(users::FIND_BY_REFERRAL_CODE)
                .bind(code)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?
                .as_ref()
                .map(users::from_row)
                .transpose()?
                .map(|u| u.id),
            None => None,
        };
        tx.rollback().await.map_err(map_err)?;
        Ok(LoginFacts {
            account,
            email_owner,
            referrer,
            new_user_id: None,
        })
    }

    /// Opens `url`, creating the file when missing, with a pool of
    /// `max_connections`; an in-memory database gets one connection, which
    /// is kept open for the life of the pool (the database dies with it).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let options = SqliteConnectOptions::from_str(url)
            .map_err(map_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(SQLITE_BUSY_TIMEOUT);
        let pool = if in_memory {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(max_connections.max(1))
        };
        let pool = pool.connect_with(options).await.map_err(map_err)?;
        Ok(Self { pool })
    }
}

impl PgStore {
    async fn insert_items(
        tx: &mut Transaction<'static, Postgres>,
        id: &str,
        items: &[(i64, i64)],
    ) -> Result<(), StoreError> {
        if items.is_empty() {
            return Ok(());
        }
        sqlx::query(campaigns::INSERT_ITEMS_PG)
            .bind(id)
            .bind(items.iter().map(|i| i.0).collect::<Vec<_>>())
            .bind(items.iter().map(|i| i.1).collect::<Vec<_>>())
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn take_leases(
        pool: &PgPool,
        ids: &[i64],
        owner: &str,
        now: i64,
        until: i64,
    ) -> Result<Vec<StoredAccount>, StoreError> {
        let rows = sqlx::query(campaigns::TAKE_LEASES_PG)
            .bind(ids)
            .bind(now)
            .bind(until)
            .bind(owner)
            .fetch_all(pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(social_accounts::stored_from_row).collect()
    }

    async fn settle_leases(
        tx: &mut Transaction<'static, Postgres>,
        owner: &str,
        items: &[CampaignItem],
        now: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let mut stored = Vec::new();
        let (refreshed, others): (Vec<&CampaignItem>, Vec<&CampaignItem>) =
            items.iter().partition(|i| i.tokens.is_some());
        if !refreshed.is_empty() {
            let tokens = |f: fn(&SealedTokens) -> Option<String>| {
                refreshed
                    .iter()
                    .map(|i| i.tokens.as_ref().and_then(f))
                    .collect::<Vec<_>>()
            };
            stored = sqlx::query_scalar(campaigns::STORE_REFRESHED_PG)
                .bind(refreshed.iter().map(|i| i.account_id).collect::<Vec<_>>())
                .bind(tokens(|t| t.key_id.clone()))
                .bind(tokens(|t| t.access_token.clone()))
                .bind(tokens(|t| t.refresh_token.clone()))
                .bind(
                    refreshed
                        .iter()
                        .map(|i| i.tokens.as_ref().and_then(|t| t.expires_at))
                        .collect::<Vec<_>>(),
                )
                .bind(owner)
                .bind(now)
                .bind(tokens(|t| t.token_secret.clone()))
                .fetch_all(&mut **tx)
                .await
                .map_err(map_err)?;
        }
        if !others.is_empty() {
            sqlx::query(campaigns::END_LEASES_PG)
                .bind(others.iter().map(|i| i.account_id).collect::<Vec<_>>())
                .bind(
                    others
                        .iter()
                        .map(|i| i.outcome == ItemOutcome::NeedsReauth)
                        .collect::<Vec<_>>(),
                )
                .bind(owner)
                .execute(&mut **tx)
                .await
                .map_err(map_err)?;
        }
        Ok(stored)
    }

    async fn record_outcomes(
        tx: &mut Transaction<'static, Postgres>,
        id: &str,
        items: &[CampaignItem],
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(campaigns::RECORD_OUTCOMES_PG)
            .bind(id)
            .bind(items.iter().map(|i| i.account_id).collect::<Vec<_>>())
            .bind(items.iter().map(|i| i.outcome.as_str()).collect::<Vec<_>>())
            .fetch_all(&mut **tx)
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|r| super::base::SqlRow::text(r, "outcome"))
            .collect()
    }
}

impl SqliteStore {
    async fn insert_items(
        tx: &mut Transaction<'static, Sqlite>,
        id: &str,
        items: &[(i64, i64)],
    ) -> Result<(), StoreError> {
        for (account_id, page) in items {
            sqlx::query(campaigns::INSERT_ITEM)
                .bind(id)
                .bind(account_id)
                .bind(page)
                .execute(&mut **tx)
                .await
                .map_err(map_err)?;
        }
        Ok(())
    }

    async fn take_leases(
        pool: &SqlitePool,
        ids: &[i64],
        owner: &str,
        now: i64,
        until: i64,
    ) -> Result<Vec<StoredAccount>, StoreError> {
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)?;
        let mut taken = Vec::with_capacity(ids.len());
        for id in ids {
            let row = sqlx::query(campaigns::TAKE_LEASE_AGAIN)
                .bind(id)
                .bind(now)
                .bind(until)
                .bind(owner)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
            if let Some(row) = row {
                taken.push(social_accounts::stored_from_row(&row)?);
            }
        }
        tx.commit().await.map_err(map_err)?;
        Ok(taken)
    }

    async fn settle_leases(
        tx: &mut Transaction<'static, Sqlite>,
        owner: &str,
        items: &[CampaignItem],
        now: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let mut stored = Vec::new();
        for item in items {
            match &item.tokens {
                Some(tokens) => {
                    let row = sqlx::query(social_accounts::FINISH_REFRESH)
                        .bind(item.account_id)
                        .bind(owner)
                        .bind(tokens.key_id.as_deref())
                        .bind(tokens.access_token.as_deref())
                        .bind(tokens.refresh_token.as_deref())
                        .bind(tokens.expires_at)
                        .bind(now)
                        .bind(tokens.token_secret.as_deref())
                        .fetch_optional(&mut **tx)
                        .await
                        .map_err(map_err)?;
                    if row.is_some() {
                        stored.push(item.account_id);
                    }
                }
                None => {
                    sqlx::query(social_accounts::END_REFRESH)
                        .bind(item.account_id)
                        .bind(owner)
                        .bind(item.outcome == ItemOutcome::NeedsReauth)
                        .execute(&mut **tx)
                        .await
                        .map_err(map_err)?;
                }
            }
        }
        Ok(stored)
    }

    async fn record_outcomes(
        tx: &mut Transaction<'static, Sqlite>,
        id: &str,
        items: &[CampaignItem],
    ) -> Result<Vec<String>, StoreError> {
        let mut written = Vec::with_capacity(items.len());
        for item in items {
            let row = sqlx::query(campaigns::RECORD_OUTCOME)
                .bind(id)
                .bind(item.account_id)
                .bind(item.outcome.as_str())
                .fetch_optional(&mut **tx)
                .await
                .map_err(map_err)?;
            if let Some(row) = row {
                written.push(super::base::SqlRow::text(&row, "outcome")?);
            }
        }
        Ok(written)
    }
}

impl PgStore {
    /// [`reencryption::RESEAL_MANY_PG`]: the links written.
    async fn reseal(
        tx: &mut Transaction<'static, Postgres>,
        items: &[Resealed],
    ) -> Result<Vec<i64>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let column = |f: fn(&Resealed) -> Option<String>| items.iter().map(f).collect::<Vec<_>>();
        let rows = sqlx::query(reencryption::RESEAL_MANY_PG)
            .bind(items.iter().map(|i| i.account_id).collect::<Vec<_>>())
            .bind(column(|i| i.old.key_id.clone()))
            .bind(column(|i| i.old.access_token.clone()))
            .bind(column(|i| i.old.refresh_token.clone()))
            .bind(column(|i| i.old.token_secret.clone()))
            .bind(column(|i| i.new.key_id.clone()))
            .bind(column(|i| i.new.access_token.clone()))
            .bind(column(|i| i.new.refresh_token.clone()))
            .bind(column(|i| i.new.token_secret.clone()))
            .fetch_all(&mut **tx)
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|r| super::base::SqlRow::int(r, "id"))
            .collect()
    }
}

impl SqliteStore {
    /// [`reencryption::RESEAL`] for each link: the links written.
    async fn reseal(
        tx: &mut Transaction<'static, Sqlite>,
        items: &[Resealed],
    ) -> Result<Vec<i64>, StoreError> {
        let mut written = Vec::with_capacity(items.len());
        for item in items {
            let row = sqlx::query(reencryption::RESEAL)
                .bind(item.account_id)
                .bind(item.old.key_id.as_deref())
                .bind(item.old.access_token.as_deref())
                .bind(item.old.refresh_token.as_deref())
                .bind(item.old.token_secret.as_deref())
                .bind(item.new.key_id.as_deref())
                .bind(item.new.access_token.as_deref())
                .bind(item.new.refresh_token.as_deref())
                .bind(item.new.token_secret.as_deref())
                .fetch_optional(&mut **tx)
                .await
                .map_err(map_err)?;
            if row.is_some() {
                written.push(item.account_id);
            }
        }
        Ok(written)
    }
}

/// Implements [`Store`] for `$store` and [`StoreTx`] for `$tx`, a new
/// wrapper of `Transaction<'static, $db>`.
macro_rules! impl_store {
    (
        store: $store:ident,
        tx: $tx:ident,
        db: $db:ty,
        backend: $backend:literal,
        begin: $begin:literal,
        // Holds a user for the rest of a transaction ([`StoreTx::lock_active_user`]).
        lock_user: $lock_user:expr,
        migrator: $migrator:path,
        // Backend-specific overrides of `Store`'s default methods.
        overrides: { $($overrides:item)* } $(,)?
    ) => {
        /// An open transaction; dropped without `commit` it rolls back.
        struct $tx(Transaction<'static, $db>);

        #[async_trait]
        impl StoreTx for $tx {
            async fn find_user_by_social(
                &mut self,
                provider: &str,
                uid: &str,
            ) -> Result<Option<(User, i64)>, StoreError> {
                let row = sqlx::query(users::FIND_BY_SOCIAL)
                    .bind(provider)
                    .bind(uid)
                    .fetch_optional(&mut *self.0)
                    .await
                    .map_err(map_err)?;
                row.as_ref().map(users::with_link_from_row).transpose()
            }

            async fn find_user_by_email(
                &mut self,
                email_normalized: &str,
            ) -> Result<Option<User>, StoreError> {
                let row = sqlx::query(users::FIND_BY_EMAIL)
                    .bind(email_normalized)
                    .fetch_optional(&mut *self.0)
                    .await
                    .map_err(map_err)?;
                row.as_ref().map(users::from_row).transpose()
            }

            async fn find_user_by_referral_code(
                &mut self,
                code: &str,
            ) -> Result<Option<User>, StoreError> {
                let row = sqlx::query(users::FIND_BY_REFERRAL_CODE)
                    .bind(code)
                    .fetch_optional(&mut *self.0)
                    .await
                    .map_err(map_err)?;
                row.as_ref().map(users::from_row).transpose()
            }

            async fn insert_user(&mut self, user: &NewUser) -> Result<User, StoreError> {
                let row = sqlx::query(users::INSERT)
                    .bind(&user.username)
                    .bind(user.email.as_deref())
                    .bind(user.email_normalized.as_deref())
                    .bind(user.email_verified)
                    .bind(&user.first_name)
                    .bind(&user.last_name)
                    .bind(&user.referral_code)
                    .bind(user.referred_by.map(|id| id.0))
                    .bind(user.created_at)
                    .fetch_one(&mut *self.0)
                    .await
                    .map_err(map_err)?;
                users::from_row(&row)
            }

            async fn insert_social_account(
                &mut self,
                account: &NewSocialAccount,
            ) -> Result<SocialAccount, StoreError> {
                let tokens = &account.tokens;
                let row = sqlx::query(social_accounts::INSERT)
                    .bind(account.user_id.0)
                    .bind(&account.provider)
                    .bind(&account.uid)
                    .bind(account.email.as_deref())
                    .bind(&account.extra_data)
                    .bind(tokens.key_id.as_deref())
                    .bind(tokens.access_token.as_deref())
                    .bind(tokens.refresh_token.as_deref())
                    .bind(tokens.expires_at)
                    .bind(account.created_at)
                    .bind(tokens.token_secret.as_deref())
                    .fetch_one(&mut *self.0)
                    .await
                    .map_err(map_err)?;
                social_accounts::from_row(&row)
            }

            async fn update_social_account_tokens(
                &mut self,
                account_id: i64,
                user_id: UserId,
                tokens: &SealedTokens,
                now: i64,
            ) -> Result<bool, StoreError> {
                let row = sqlx::query(social_accounts::UPDATE_TOKENS)
                    .bind(account_id)
                    .bind(tokens.key_id.as_deref())
                    .bind(tokens.access_token.as_deref())
                    .bind(tokens.refresh_token.as_deref())
                    .bind(tokens.expires_at)
                    .bind(now)
                    .bind(user_id.0)
                    .bind(tokens.token_secret.as_deref())
                    .fetch_optional(&mut *self.0)
                    .await
                    .map_err(map_err)?;
                Ok(row.is_some())
            }

            async fn take_unverified_email(
                &mut self,
                user_id: UserId,
                email_normalized: &str,
            ) -> Result<bool, StoreError> {
                let row = sqlx::query(users::TAKE_UNVERIFIED_EMAIL)
                    .bind(user_id.0)
                    .bind(email_normalized)
                    .fetch_optional(&mut *self.0)
                    .await
                    .map_err(map_err)?;
                Ok(row.is_some())
            }

            async fn is_active_user(&mut self, user_id: UserId) -> Result<bool, StoreError> {
                let row = sqlx::query(users::FIND_ACTIVE)
                    .bind(user_id.0)
                    .fetch_optional(&mut *self.0)
                    .await
                    .map_err(map_err)?;
                Ok(row.is_some())
            }

            async fn lock_active_user(&mut self, user_id: UserId) -> Result<bool, StoreError> {
                let row = sqlx::query($lock_user)
                    .bind(user_id.0)
                    .fetch_optional(&mut *self.0)
                    .await
                    .map_err(map_err)?;
                Ok(row.is_some())
            }

            async fn find_stored_accounts(
                &mut self,
                user_id: UserId,
            ) -> Result<Vec<StoredAccount>, StoreError> {
                let rows = sqlx::query(social_accounts::FIND_WITH_TOKENS_BY_USER)
                    .bind(user_id.0)
                    .fetch_all(&mut *self.0)
                    .await
                    .map_err(map_err)?;
                rows.iter().map(social_accounts::stored_from_row).collect()
            }

            async fn delete_social_account(
                &mut self,
                account_id: i64,
                user_id: UserId,
            ) -> Result<bool, StoreError> {
                let row = sqlx::query(social_accounts::DELETE)
                    .bind(account_id)
                    .bind(user_id.0)
                    .fetch_optional(&mut *self.0)
                    .await
                    .map_err(map_err)?;
                Ok(row.is_some())
            }

            async fn insert_audit_event(
                &mut self,
                event: &NewAuditEvent,
            ) -> Result<(), StoreError> {
                sqlx::query(audit::INSERT)
                    .bind(event.at)
                    .bind(event.kind)
                    .bind(event.user_id.map(|u| u.0))
                    .bind(event.provider.as_deref())
                    .bind(event.outcome)
                    .bind(&event.detail)
                    .bind(event.request_id.as_deref())
                    .execute(&mut *self.0)
                    .await
                    .map_err(map_err)?;
                Ok(())
            }

            async fn insert_auth_token(
                &mut self,
                token_hash: &str,
                user_id: UserId,
                created_at: i64,
                expires_at: Option<i64>,
            ) -> Result<(), StoreError> {
                sqlx::query(auth_tokens::INSERT)
                    .bind(token_hash)
                    .bind(user_id.0)
                    .bind(created_at)
                    .bind(expires_at)
                    .execute(&mut *self.0)
                    .await
                    .map_err(map_err)?;
                Ok(())
            }

            async fn upsert_job_result(
                &mut self,
                id: Uuid,
                kind: JobKind,
                status: JobStatus,
                result: &JobResult,
                attempts: i32,
                now: i64,
            ) -> Result<(), StoreError> {
                sqlx::query(jobs::UPSERT_RESULT)
                    .bind(id.to_string())
                    .bind(kind.as_str())
                    .bind(status.as_str())
                    .bind(jobs::encode_result(result)?)
                    .bind(attempts)
                    .bind(now)
                    .execute(&mut *self.0)
                    .await
                    .map_err(map_err)?;
                Ok(())
            }

            async fn consume_partial_login(
                &mut self,
                token_hash: &str,
                now: i64,
            ) -> Result<bool, StoreError> {
                let row = sqlx::query(login_flows::CONSUME_PARTIAL)
                    .bind(token_hash)
                    .bind(now)
                    .fetch_optional(&mut *self.0)
                    .await
                    .map_err(map_err)?;
                Ok(row.is_some())
            }

            async fn commit(self: Box<Self>) -> Result<(), StoreError> {
                self.0.commit().await.map_err(map_err)
            }
        }

        #[async_trait]
        impl Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            $($overrides)*

            async fn migrate(&self) -> Result<(), StoreError> {
                $migrator().run(&self.pool).await.map_err(map_migrate_err)
            }

            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1")
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(())
            }

            async fn begin(&self) -> Result<Box<dyn StoreTx>, StoreError> {
                let tx = self.pool.begin_with($begin).await.map_err(map_err)?;
                Ok(Box::new($tx(tx)))
            }

            async fn release_oauth_state(
                &self,
                state_hash: &str,
                job_id: Uuid,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(oauth_states::RELEASE)
                    .bind(state_hash)
                    .bind(job_id.to_string())
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(done.rows_affected() == 1)
            }

            async fn find_open_oauth_state(
                &self,
                state_hash: &str,
            ) -> Result<Option<OAuthState>, StoreError> {
                let row = sqlx::query(oauth_states::FIND_OPEN)
                    .bind(state_hash)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                row.as_ref().map(oauth_states::from_row).transpose()
            }

            async fn find_taken_oauth_state(
                &self,
                state_hash: &str,
            ) -> Result<Option<TakenOAuthState>, StoreError> {
                let row = sqlx::query(oauth_states::FIND_TAKEN)
                    .bind(state_hash)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                row.as_ref().map(oauth_states::taken_from_row).transpose()
            }

            async fn find_user_by_token(
                &self,
                token_hash: &str,
                now: i64,
            ) -> Result<Option<User>, StoreError> {
                let row = sqlx::query(users::FIND_BY_TOKEN)
                    .bind(token_hash)
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                row.as_ref().map(users::from_row).transpose()
            }

            async fn delete_auth_token(&self, token_hash: &str) -> Result<bool, StoreError> {
                let done = sqlx::query(auth_tokens::DELETE)
                    .bind(token_hash)
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(done.rows_affected() > 0)
            }

            async fn insert_auth_token(
                &self,
                token_hash: &str,
                user_id: UserId,
                created_at: i64,
                expires_at: Option<i64>,
            ) -> Result<(), StoreError> {
                sqlx::query(auth_tokens::INSERT)
                    .bind(token_hash)
                    .bind(user_id.0)
                    .bind(created_at)
                    .bind(expires_at)
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(())
            }

            async fn find_user(&self, id: UserId) -> Result<Option<User>, StoreError> {
                let row = sqlx::query(users::FIND_BY_ID)
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                row.as_ref().map(users::from_row).transpose()
            }

            async fn update_user_active(&self, id: UserId, active: bool) -> Result<bool, StoreError> {
                let row = sqlx::query(users::UPDATE_ACTIVE)
                    .bind(id.0)
                    .bind(active)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(row.is_some())
            }

            async fn find_social_accounts(
                &self,
                user_id: UserId,
            ) -> Result<Vec<SocialAccount>, StoreError> {
                let rows = sqlx::query(social_accounts::FIND_BY_USER)
                    .bind(user_id.0)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                rows.iter().map(social_accounts::from_row).collect()
            }

            async fn release_login_code(
                &self,
                provider: &str,
                code_hash: &str,
                job_id: Uuid,
            ) -> Result<bool, StoreError> {
                let row = sqlx::query(login_flows::RELEASE_LOGIN_CODE)
                    .bind(provider)
                    .bind(code_hash)
                    .bind(job_id.to_string())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(row.is_some())
            }

            async fn find_refresh_due(
                &self,
                from: i64,
                to: i64,
                now: i64,
                limit: u32,
            ) -> Result<Vec<i64>, StoreError> {
                let rows = sqlx::query(social_accounts::FIND_REFRESH_DUE)
                    .bind(from)
                    .bind(to)
                    .bind(now)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                rows.iter().map(|r| super::base::SqlRow::int(r, "id")).collect()
            }

            async fn insert_campaign(&self, c: &NewCampaign) -> Result<Campaign, StoreError> {
                let providers = serde_json::to_string(&c.providers)
                    .map_err(|e| StoreError::Database(e.to_string()))?;
                let row = sqlx::query(campaigns::INSERT)
                    .bind(c.id.to_string())
                    .bind(c.provider.as_deref())
                    .bind(providers)
                    .bind(c.expiring_within_secs)
                    .bind(c.expiring_before)
                    .bind(c.rate_per_second)
                    .bind(c.created_at)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(map_err)?;
                campaigns::from_row(&row)
            }

            async fn find_campaign(&self, id: Uuid) -> Result<Option<Campaign>, StoreError> {
                let row = sqlx::query(campaigns::FIND)
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                row.as_ref().map(campaigns::from_row).transpose()
            }

            async fn list_campaigns(&self, limit: u32) -> Result<Vec<Campaign>, StoreError> {
                let rows = sqlx::query(campaigns::LIST)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                rows.iter().map(campaigns::from_row).collect()
            }

            async fn find_stalled_campaigns(
                &self,
                written_before: i64,
                limit: u32,
            ) -> Result<Vec<Campaign>, StoreError> {
                let rows = sqlx::query(campaigns::FIND_STALLED)
                    .bind(written_before)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                rows.iter().map(campaigns::from_row).collect()
            }

            async fn cancel_campaign(&self, id: Uuid, now: i64) -> Result<bool, StoreError> {
                let row = sqlx::query(campaigns::CANCEL)
                    .bind(id.to_string())
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(row.is_some())
            }

            async fn touch_campaign(
                &self,
                id: Uuid,
                seen_updated_at: i64,
                now: i64,
            ) -> Result<bool, StoreError> {
                let row = sqlx::query(campaigns::TOUCH)
                    .bind(id.to_string())
                    .bind(seen_updated_at)
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(row.is_some())
            }

            async fn find_plan_candidates(
                &self,
                provider: &str,
                after: i64,
                expiring_before: i64,
                limit: u32,
            ) -> Result<Vec<i64>, StoreError> {
                let rows = sqlx::query(campaigns::PLAN_CANDIDATES)
                    .bind(provider)
                    .bind(after)
                    .bind(expiring_before)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                rows.iter().map(|r| super::base::SqlRow::int(r, "id")).collect()
            }

            async fn add_plan_step(
                &self,
                id: Uuid,
                step: &PlanStep,
                now: i64,
            ) -> Result<bool, StoreError> {
                let id = id.to_string();
                let mut tx = self.pool.begin_with($begin).await.map_err(map_err)?;
                let advanced = sqlx::query(campaigns::ADVANCE_PLAN)
                    .bind(&id)
                    .bind(step.from.provider_index)
                    .bind(step.from.cursor)
                    .bind(step.to.provider_index)
                    .bind(step.to.cursor)
                    .bind(step.planned)
                    .bind(step.pages.len() as i64)
                    .bind(step.items.len() as i64)
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err)?;
                if advanced.is_none() {
                    tx.rollback().await.map_err(map_err)?;
                    return Ok(false);
                }
                for (page, provider) in &step.pages {
                    sqlx::query(campaigns::INSERT_PAGE)
                        .bind(&id)
                        .bind(page)
                        .bind(provider)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                }
                Self::insert_items(&mut tx, &id, &step.items).await?;
                tx.commit().await.map_err(map_err)?;
                Ok(true)
            }

            async fn find_campaign_pages(
                &self,
                id: Uuid,
                from: i64,
                to: i64,
            ) -> Result<Vec<(i64, String)>, StoreError> {
                let rows = sqlx::query(campaigns::FIND_PAGES)
                    .bind(id.to_string())
                    .bind(from)
                    .bind(to)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                rows.iter()
                    .map(|r| Ok((super::base::SqlRow::int(r, "page")?, super::base::SqlRow::text(r, "provider")?)))
                    .collect()
            }

            async fn find_unfinished_pages(
                &self,
                id: Uuid,
            ) -> Result<Vec<(i64, String)>, StoreError> {
                let rows = sqlx::query(campaigns::FIND_UNFINISHED_PAGES)
                    .bind(id.to_string())
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                rows.iter()
                    .map(|r| Ok((super::base::SqlRow::int(r, "page")?, super::base::SqlRow::text(r, "provider")?)))
                    .collect()
            }

            async fn mark_pages_published(&self, id: Uuid, pages: i64) -> Result<(), StoreError> {
                sqlx::query(campaigns::MARK_PUBLISHED)
                    .bind(id.to_string())
                    .bind(pages)
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(())
            }

            async fn find_page_items(&self, id: Uuid, page: i64) -> Result<Vec<i64>, StoreError> {
                let rows = sqlx::query(campaigns::FIND_PAGE_ITEMS)
                    .bind(id.to_string())
                    .bind(page)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                rows.iter().map(|r| super::base::SqlRow::int(r, "account_id")).collect()
            }

            async fn take_refresh_leases(
                &self,
                account_ids: &[i64],
                owner: Uuid,
                now: i64,
                until: i64,
            ) -> Result<Vec<StoredAccount>, StoreError> {
                if account_ids.is_empty() {
                    return Ok(Vec::new());
                }
                Self::take_leases(&self.pool, account_ids, &owner.to_string(), now, until).await
            }

            async fn finish_campaign_items(
                &self,
                id: Uuid,
                owner: Uuid,
                items: &[CampaignItem],
                now: i64,
            ) -> Result<CampaignCounts, StoreError> {
                if items.is_empty() {
                    return Ok(CampaignCounts::default());
                }
                let id = id.to_string();
                let owner = owner.to_string();
                // Rows locked in one order by every writer: two writers of
                // the same accounts never deadlock.
                let mut items = items.to_vec();
                items.sort_by_key(|i| i.account_id);
                let mut tx = self.pool.begin_with($begin).await.map_err(map_err)?;
                let stored = Self::settle_leases(&mut tx, &owner, &items, now).await?;
                // New tokens that could not be stored (the lease was lost
                // meanwhile) are no refresh of the campaign's.
                for item in &mut items {
                    if item.tokens.is_some() && !stored.contains(&item.account_id) {
                        item.outcome = ItemOutcome::Failed;
                    }
                }
                let written = Self::record_outcomes(&mut tx, &id, &items).await?;
                let counts = campaigns::count(written);
                if counts.handled() > 0 {
                    sqlx::query(campaigns::ADD_COUNTS)
                        .bind(&id)
                        .bind(counts.refreshed)
                        .bind(counts.failed)
                        .bind(counts.needs_reauth)
                        .bind(counts.skipped)
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                }
                tx.commit().await.map_err(map_err)?;
                Ok(counts)
            }

            async fn insert_reencryption(
                &self,
                id: Uuid,
                key_id: &str,
                now: i64,
            ) -> Result<Reencryption, StoreError> {
                let row = sqlx::query(reencryption::INSERT)
                    .bind(id.to_string())
                    .bind(key_id)
                    .bind(now)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(map_err)?;
                reencryption::from_row(&row)
            }

            async fn find_reencryption(&self, id: Uuid) -> Result<Option<Reencryption>, StoreError> {
                let row = sqlx::query(reencryption::FIND)
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                row.as_ref().map(reencryption::from_row).transpose()
            }

            async fn list_reencryptions(&self, limit: u32) -> Result<Vec<Reencryption>, StoreError> {
                let rows = sqlx::query(reencryption::LIST)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                rows.iter().map(reencryption::from_row).collect()
            }

            async fn cancel_reencryption(&self, id: Uuid, now: i64) -> Result<bool, StoreError> {
                let row = sqlx::query(reencryption::CANCEL)
                    .bind(id.to_string())
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(row.is_some())
            }

            async fn take_reencryption(
                &self,
                key_id: &str,
                owner: Uuid,
                now: i64,
                until: i64,
            ) -> Result<Option<Reencryption>, StoreError> {
                let row = sqlx::query(reencryption::TAKE)
                    .bind(owner.to_string())
                    .bind(now)
                    .bind(until)
                    .bind(key_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                row.as_ref().map(reencryption::from_row).transpose()
            }

            async fn set_reencryption_total(
                &self,
                id: Uuid,
                owner: Uuid,
                total: i64,
            ) -> Result<bool, StoreError> {
                let row = sqlx::query(reencryption::SET_TOTAL)
                    .bind(id.to_string())
                    .bind(owner.to_string())
                    .bind(total)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(row.is_some())
            }

            async fn release_reencryption(&self, id: Uuid, owner: Uuid) -> Result<(), StoreError> {
                sqlx::query(reencryption::RELEASE)
                    .bind(id.to_string())
                    .bind(owner.to_string())
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(())
            }

            async fn find_reencryption_due(
                &self,
                key_id: &str,
                after: i64,
                limit: u32,
            ) -> Result<Vec<StoredAccount>, StoreError> {
                let rows = sqlx::query(reencryption::PAGE)
                    .bind(after)
                    .bind(key_id)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                rows.iter().map(social_accounts::stored_from_row).collect()
            }

            async fn write_reencryption_page(
                &self,
                page: &ReencryptionPage<'_>,
            ) -> Result<Option<Vec<i64>>, StoreError> {
                // Rows locked in one order by every writer.
                let mut items = page.items.to_vec();
                items.sort_by_key(|i| i.account_id);
                let mut tx = self.pool.begin_with($begin).await.map_err(map_err)?;
                let written = Self::reseal(&mut tx, &items).await?;
                let moved = written.len() as i64;
                let changed = items.len() as i64 - moved;
                let advanced = sqlx::query(reencryption::ADVANCE)
                    .bind(page.id.to_string())
                    .bind(page.owner.to_string())
                    .bind(page.from)
                    .bind(page.to)
                    .bind(moved)
                    .bind(changed)
                    .bind(page.failed)
                    .bind(page.now)
                    .bind(page.lease_until)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err)?;
                if advanced.is_none() {
                    tx.rollback().await.map_err(map_err)?;
                    return Ok(None);
                }
                tx.commit().await.map_err(map_err)?;
                Ok(Some(written))
            }

            async fn finish_reencryption(
                &self,
                id: Uuid,
                owner: Uuid,
                remaining: i64,
                now: i64,
            ) -> Result<bool, StoreError> {
                let row = sqlx::query(reencryption::FINISH)
                    .bind(id.to_string())
                    .bind(owner.to_string())
                    .bind(remaining)
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(row.is_some())
            }

            async fn count_sealed_tokens(&self) -> Result<Vec<SealedCount>, StoreError> {
                let rows = sqlx::query(reencryption::COUNT_SEALED)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                rows.iter().map(reencryption::count_from_row).collect()
            }

            async fn reserve_rate(
                &self,
                key: &str,
                span_us: i64,
                now_us: i64,
            ) -> Result<i64, StoreError> {
                let row = sqlx::query(campaigns::RESERVE_RATE)
                    .bind(key)
                    .bind(now_us)
                    .bind(span_us)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(map_err)?;
                super::base::SqlRow::int(&row, "start_us")
            }

            async fn find_stored_account(
                &self,
                account_id: i64,
            ) -> Result<Option<StoredAccount>, StoreError> {
                let row = sqlx::query(social_accounts::FIND_WITH_TOKENS)
                    .bind(account_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                row.as_ref().map(social_accounts::stored_from_row).transpose()
            }

            async fn take_refresh_lease(
                &self,
                account_id: i64,
                owner: Uuid,
                now: i64,
                until: i64,
            ) -> Result<Option<StoredAccount>, StoreError> {
                let row = sqlx::query(social_accounts::TAKE_REFRESH_LEASE)
                    .bind(account_id)
                    .bind(now)
                    .bind(until)
                    .bind(owner.to_string())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                row.as_ref().map(social_accounts::stored_from_row).transpose()
            }

            async fn finish_refresh(
                &self,
                account_id: i64,
                owner: Uuid,
                tokens: &SealedTokens,
                now: i64,
            ) -> Result<bool, StoreError> {
                let row = sqlx::query(social_accounts::FINISH_REFRESH)
                    .bind(account_id)
                    .bind(owner.to_string())
                    .bind(tokens.key_id.as_deref())
                    .bind(tokens.access_token.as_deref())
                    .bind(tokens.refresh_token.as_deref())
                    .bind(tokens.expires_at)
                    .bind(now)
                    .bind(tokens.token_secret.as_deref())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(row.is_some())
            }

            async fn end_refresh(
                &self,
                account_id: i64,
                owner: Uuid,
                needs_reauth: bool,
            ) -> Result<bool, StoreError> {
                let row = sqlx::query(social_accounts::END_REFRESH)
                    .bind(account_id)
                    .bind(owner.to_string())
                    .bind(needs_reauth)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(row.is_some())
            }

            async fn find_audit_events(
                &self,
                q: &AuditQuery<'_>,
            ) -> Result<Vec<AuditEvent>, StoreError> {
                let rows = sqlx::query(audit::FIND)
                    .bind(q.user_id.map(|u| u.0))
                    .bind(q.provider)
                    .bind(q.before)
                    .bind(i64::from(q.limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                rows.iter().map(audit::from_row).collect()
            }

            async fn insert_pending_job(
                &self,
                id: Uuid,
                kind: JobKind,
                now: i64,
            ) -> Result<(), StoreError> {
                sqlx::query(jobs::INSERT_PENDING)
                    .bind(id.to_string())
                    .bind(kind.as_str())
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(())
            }

            async fn find_job(&self, id: Uuid) -> Result<Option<JobRecord>, StoreError> {
                let row = sqlx::query(jobs::FIND)
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                row.as_ref().map(jobs::from_row).transpose()
            }

            async fn purge(
                &self,
                what: super::Purge,
                before: i64,
                limit: i64,
            ) -> Result<u64, StoreError> {
                let done = sqlx::query(what.statement())
                    .bind(before)
                    .bind(limit)
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(done.rows_affected())
            }

            async fn put_provider_health(
                &self,
                provider: &str,
                open_until: Option<i64>,
                now: i64,
            ) -> Result<(), StoreError> {
                sqlx::query(provider_health::PUT)
                    .bind(provider)
                    .bind(open_until)
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(())
            }

            async fn list_provider_health(
                &self,
            ) -> Result<Vec<super::ProviderHealth>, StoreError> {
                use super::base::SqlRow;
                let rows = sqlx::query(provider_health::LIST)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(map_err)?;
                rows.iter()
                    .map(|row| {
                        Ok(super::ProviderHealth {
                            provider: row.text("provider")?,
                            open_until: row.opt_int("open_until")?,
                            updated_at: row.int("updated_at")?,
                        })
                    })
                    .collect()
            }

            async fn count_redelivery(&self, id: Uuid, now: i64) -> Result<i64, StoreError> {
                let row = sqlx::query(jobs::COUNT_REDELIVERY)
                    .bind(id.to_string())
                    .bind(now)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(map_err)?;
                super::base::SqlRow::int(&row, "redeliveries")
            }

            async fn take_job_delivery(&self, id: Uuid, now: i64) -> Result<bool, StoreError> {
                let row = sqlx::query(jobs::TAKE_DELIVERY)
                    .bind(id.to_string())
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(row.is_some())
            }

            async fn insert_oauth1_request_token(
                &self,
                t: &NewOAuth1RequestToken,
            ) -> Result<(), StoreError> {
                sqlx::query(login_flows::INSERT_REQUEST_TOKEN)
                    .bind(&t.oauth_token)
                    .bind(&t.provider)
                    .bind(&t.token_secret_enc)
                    .bind(&t.token_key_id)
                    .bind(&t.redirect_uri)
                    .bind(t.created_at)
                    .bind(t.expires_at)
                    .bind(t.user_id.map(|u| u.0))
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(())
            }

            async fn take_oauth1_request_token(
                &self,
                oauth_token: &str,
                now: i64,
            ) -> Result<Option<OAuth1RequestToken>, StoreError> {
                let row = sqlx::query(login_flows::TAKE_REQUEST_TOKEN)
                    .bind(oauth_token)
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                row.as_ref()
                    .map(login_flows::request_token_from_row)
                    .transpose()
            }

            async fn insert_partial_login(&self, p: &NewPartialLogin) -> Result<(), StoreError> {
                sqlx::query(login_flows::INSERT_PARTIAL)
                    .bind(&p.token_hash)
                    .bind(&p.provider)
                    .bind(&p.data_enc)
                    .bind(&p.token_key_id)
                    .bind(p.created_at)
                    .bind(p.expires_at)
                    .execute(&self.pool)
                    .await
                    .map_err(map_err)?;
                Ok(())
            }

            async fn find_partial_login(
                &self,
                token_hash: &str,
                now: i64,
            ) -> Result<Option<PartialLogin>, StoreError> {
                let row = sqlx::query(login_flows::FIND_PARTIAL)
                    .bind(token_hash)
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                row.as_ref().map(login_flows::partial_from_row).transpose()
            }

            async fn find_user_by_referral_code(
                &self,
                code: &str,
            ) -> Result<Option<User>, StoreError> {
                let row = sqlx::query(users::FIND_BY_REFERRAL_CODE)
                    .bind(code)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                row.as_ref().map(users::from_row).transpose()
            }

            async fn set_referred_by(
                &self,
                user_id: UserId,
                referrer: UserId,
            ) -> Result<Option<User>, StoreError> {
                let row = sqlx::query(users::SET_REFERRED_BY)
                    .bind(user_id.0)
                    .bind(referrer.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(map_err)?;
                row.as_ref().map(users::from_row).transpose()
            }
        }
    };
}

impl_store! {
    store: PgStore,
    tx: PgTx,
    db: Postgres,
    backend: "postgres",
    begin: "BEGIN",
    lock_user: users::LOCK_ACTIVE_PG,
    migrator: migrations::postgres,
    overrides: {
        async fn find_login_facts(&self, q: &FactsQuery<'_>) -> Result<LoginFacts, StoreError> {
            FactReads::write_one(&self.pool, &FactsRow::new(q)).await
        }

        async fn log_in(
            &self,
            q: &FactsQuery<'_>,
            decider: Arc<dyn DecideLogin>,
        ) -> Result<Option<Written>, StoreError> {
            self.log_ins.write(LogInRow::new(q, decider)).await
        }

        async fn write_login(&self, l: &LoginWrite<'_>) -> Result<Written, StoreError> {
            match WriteRow::new(l)? {
                Some(row) => LoginWrites::write_one(&self.pool, &row).await,
                None => write_in_transaction(self.begin().await?, l).await,
            }
        }

        async fn claim_login_code(&self, c: &CodeClaim<'_>) -> Result<CodeClaimed, StoreError> {
            self.claims.write(ClaimRow::new(c)).await
        }

        async fn insert_oauth_state(&self, state: &NewOAuthState) -> Result<(), StoreError> {
            self.states_in.write(state.clone()).await
        }

        async fn take_oauth_state(
            &self,
            take: &OAuthStateTake<'_>,
        ) -> Result<Option<OAuthState>, StoreError> {
            self.states_out.write(StateTake::new(take)).await
        }
    },
}

// `BEGIN IMMEDIATE` takes SQLite's write lock up front, so concurrent
// writers queue on `busy_timeout` instead of failing when a read
// transaction cannot be upgraded.
impl_store! {
    store: SqliteStore,
    tx: SqliteTx,
    db: Sqlite,
    backend: "sqlite",
    begin: "BEGIN IMMEDIATE",
    lock_user: users::FIND_ACTIVE,
    migrator: migrations::sqlite,
    overrides: {
        async fn find_login_facts(&self, q: &FactsQuery<'_>) -> Result<LoginFacts, StoreError> {
            Self::find_facts_alone(&self.pool, q).await
        }

        async fn claim_login_code(&self, c: &CodeClaim<'_>) -> Result<CodeClaimed, StoreError> {
            login_flows::sqlite::claim_code_alone(&self.pool, c).await
        }

        async fn insert_oauth_state(&self, state: &NewOAuthState) -> Result<(), StoreError> {
            oauth_states::sqlite::insert_alone(&self.pool, state).await
        }

        async fn take_oauth_state(
            &self,
            take: &OAuthStateTake<'_>,
        ) -> Result<Option<OAuthState>, StoreError> {
            oauth_states::sqlite::take_alone(&self.pool, take).await
        }
    },
}
