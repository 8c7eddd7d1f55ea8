//! The PostgreSQL and SQLite stores: one body ([`impl_store!`]), two
//! backends. The SQL text lives in one module per table and is the same for
//! both dialects; what differs is passed to the macro (the statement that
//! opens a transaction, the migrator).
//!
//! Every method is one statement, so one round trip: uniqueness is left to
//! the database's constraints ([`map_err`] turns their names into
//! [`Constraint`]s), never checked beforehand.

use super::claim_batch::{ClaimRow, CodeClaims};
use super::group_commit::{Batcher, write_together};
use super::login_batch::{LoginRow, Logins};
use super::state_batch::{StateInserts, StateTake, StateTakes};
use super::{
    CodeClaim, CodeClaimed, Constraint, JobRecord, JobStatus, LoggedIn, LoginWrite,
    NewOAuth1RequestToken, NewOAuthState, NewPartialLogin, NewSocialAccount, NewUser,
    OAuth1RequestToken, OAuthState, OAuthStateTake, PartialLogin, SealedTokens, Store, StoreError,
    StoreOptions, StoreTx, TakenOAuthState, auth_tokens, jobs, login_flows, migrations,
    oauth_states, social_accounts, users,
};
use crate::jobs::{JobKind, JobResult};
use crate::redemption::FirstUse;
use crate::types::{SocialAccount, User, UserId};
use async_trait::async_trait;
use sqlx::error::DatabaseError;
use sqlx::migrate::MigrateError;
use sqlx::postgres::{PgConnectOptions, PgDatabaseError, PgPool, PgPoolOptions, PgRow, Postgres};
use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqliteError, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Transaction};
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

/// How long a SQLite writer waits for the write lock before `Unavailable`.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// PostgreSQL, the production store.
pub struct PgStore {
    pool: PgPool,
    logins: Batcher<Logins>,
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
            // the table's size. A `SET` rather than a startup parameter,
            // which connection poolers such as PgBouncer refuse.
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::query("SET enable_seqscan = off")
                        .execute(conn)
                        .await?;
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
            logins: Batcher::start(pool.clone(), wait),
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

    /// Logins written together, as the login queue writes a batch: one
    /// statement, or, if the server refuses it, each login alone. Answers
    /// in their order. The identities and job ids must be distinct.
    pub async fn log_in_together(
        &self,
        logins: &[LoginWrite<'_>],
    ) -> Vec<Result<Option<LoggedIn>, StoreError>> {
        let rows: Vec<LoginRow> = logins.iter().map(LoginRow::new).collect();
        write_together::<Logins>(&self.pool, &rows.iter().collect::<Vec<_>>()).await
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

/// Reads a column of a row of either backend.
pub(super) trait SqlRow {
    fn int(&self, column: &str) -> Result<i64, StoreError>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError>;
    fn int32(&self, column: &str) -> Result<i32, StoreError>;
    fn text(&self, column: &str) -> Result<String, StoreError>;
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError>;
    fn flag(&self, column: &str) -> Result<bool, StoreError>;
}

macro_rules! impl_sql_row {
    ($($row:ty),*) => {$(
        impl SqlRow for $row {
            fn int(&self, column: &str) -> Result<i64, StoreError> {
                self.try_get(column).map_err(map_err)
            }
            fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
                self.try_get(column).map_err(map_err)
            }
            fn int32(&self, column: &str) -> Result<i32, StoreError> {
                self.try_get(column).map_err(map_err)
            }
            fn text(&self, column: &str) -> Result<String, StoreError> {
                self.try_get(column).map_err(map_err)
            }
            fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
                self.try_get(column).map_err(map_err)
            }
            fn flag(&self, column: &str) -> Result<bool, StoreError> {
                self.try_get(column).map_err(map_err)
            }
        }
    )*};
}

impl_sql_row!(PgRow, SqliteRow);

/// The one place a database error becomes a [`StoreError`].
pub(super) fn map_err(err: sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::Database(db) => from_database_error(db.as_ref()),
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(err.to_string()),
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. } => StoreError::Decode(err.to_string()),
        other => StoreError::Database(other.to_string()),
    }
}

fn from_database_error(db: &dyn DatabaseError) -> StoreError {
    if db.is_unique_violation() {
        // PostgreSQL names the constraint; SQLite names the columns.
        let name = db
            .constraint()
            .or_else(|| db.message().strip_prefix("UNIQUE constraint failed: "))
            .unwrap_or_default();
        return StoreError::Conflict(constraint_named(name));
    }
    if is_transient(db) {
        StoreError::Unavailable(db.to_string())
    } else {
        StoreError::Database(db.to_string())
    }
}

/// The unique constraints callers act on, by PostgreSQL constraint name
/// (see migrations/postgres) or SQLite column list.
fn constraint_named(name: &str) -> Constraint {
    match name {
        "users_username_key" | "users.username" => Constraint::UserUsername,
        "users_email_key" | "users.email_normalized" => Constraint::UserEmail,
        "users_referral_code_key" | "users.referral_code" => Constraint::UserReferralCode,
        "social_accounts_provider_uid_key" | "social_accounts.provider, social_accounts.uid" => {
            Constraint::SocialAccountIdentity
        }
        _ => Constraint::Other,
    }
}

/// Errors that go away when the same work is tried again later.
fn is_transient(db: &dyn DatabaseError) -> bool {
    if let Some(pg) = db.try_downcast_ref::<PgDatabaseError>() {
        let code = pg.code();
        // Connection exceptions; serialization failure, deadlock; too many
        // connections; server shutting down or starting up.
        code.starts_with("08")
            || matches!(
                code,
                "40001" | "40P01" | "53300" | "57P01" | "57P02" | "57P03"
            )
    } else if db.try_downcast_ref::<SqliteError>().is_some() {
        // SQLITE_BUSY and SQLITE_LOCKED, with their extended codes.
        db.code()
            .and_then(|code| code.parse::<i32>().ok())
            .is_some_and(|code| matches!(code & 0xff, 5 | 6))
    } else {
        false
    }
}

fn map_migrate_err(err: MigrateError) -> StoreError {
    match err {
        MigrateError::Execute(e) => map_err(e),
        MigrateError::ExecuteMigration(e, version) => match map_err(e) {
            StoreError::Database(msg) => {
                StoreError::Database(format!("migration {version}: {msg}"))
            }
            other => other,
        },
        other => StoreError::Database(other.to_string()),
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
                    .fetch_one(&mut *self.0)
                    .await
                    .map_err(map_err)?;
                social_accounts::from_row(&row)
            }

            async fn update_social_account_tokens(
                &mut self,
                account_id: i64,
                tokens: &SealedTokens,
                now: i64,
            ) -> Result<(), StoreError> {
                sqlx::query(social_accounts::UPDATE_TOKENS)
                    .bind(account_id)
                    .bind(tokens.key_id.as_deref())
                    .bind(tokens.access_token.as_deref())
                    .bind(tokens.refresh_token.as_deref())
                    .bind(tokens.expires_at)
                    .bind(now)
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

        impl $store {
            /// Inserts one login state: [`oauth_states::INSERT`].
            pub(super) async fn insert_state_alone(
                pool: &sqlx::Pool<$db>,
                state: &NewOAuthState,
            ) -> Result<(), StoreError> {
                sqlx::query(oauth_states::INSERT)
                    .bind(&state.state_hash)
                    .bind(&state.provider)
                    .bind(&state.redirect_uri)
                    .bind(state.pkce_verifier.as_deref())
                    .bind(state.nonce.as_deref())
                    .bind(state.created_at)
                    .bind(state.expires_at)
                    .execute(pool)
                    .await
                    .map_err(map_err)?;
                Ok(())
            }

            /// Takes one login state: [`oauth_states::TAKE`].
            pub(super) async fn take_state_alone(
                pool: &sqlx::Pool<$db>,
                take: &OAuthStateTake<'_>,
            ) -> Result<Option<OAuthState>, StoreError> {
                let row = sqlx::query(oauth_states::TAKE)
                    .bind(take.state_hash)
                    .bind(take.now)
                    .bind(take.job_id.to_string())
                    .bind(take.code_hash)
                    .fetch_optional(pool)
                    .await
                    .map_err(map_err)?;
                row.as_ref().map(oauth_states::from_row).transpose()
            }

            /// Claims one code: [`login_flows::CLAIM_LOGIN_CODE`], then, when
            /// it was already claimed, who holds it.
            pub(super) async fn claim_code_alone(
                pool: &sqlx::Pool<$db>,
                c: &CodeClaim<'_>,
            ) -> Result<CodeClaimed, StoreError> {
                let inserted = sqlx::query(login_flows::CLAIM_LOGIN_CODE)
                    .bind(c.provider)
                    .bind(c.code_hash)
                    .bind(c.job_id.to_string())
                    .bind(c.request_hash)
                    .bind(c.now)
                    .bind(c.expires_at)
                    .fetch_optional(pool)
                    .await
                    .map_err(map_err)?;
                if inserted.is_some() {
                    return Ok(CodeClaimed::Claimed);
                }
                let row = sqlx::query(login_flows::FIND_LOGIN_CODE)
                    .bind(c.provider)
                    .bind(c.code_hash)
                    .fetch_optional(pool)
                    .await
                    .map_err(map_err)?;
                let Some(row) = row else {
                    return Ok(CodeClaimed::Claimed);
                };
                let raw = row.text("job_id")?;
                let holder = Uuid::parse_str(&raw).map_err(|e| StoreError::Decode(e.to_string()))?;
                Ok(if holder == c.job_id {
                    CodeClaimed::Claimed
                } else {
                    CodeClaimed::Held(FirstUse {
                        job_id: holder,
                        at: row.int("created_at")?,
                        same_request: row.text("request_hash")? == c.request_hash,
                    })
                })
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
    migrator: migrations::postgres,
    overrides: {
        async fn log_in(&self, l: &LoginWrite<'_>) -> Result<Option<LoggedIn>, StoreError> {
            self.logins.write(LoginRow::new(l)).await
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
    migrator: migrations::sqlite,
    overrides: {
        async fn claim_login_code(&self, c: &CodeClaim<'_>) -> Result<CodeClaimed, StoreError> {
            Self::claim_code_alone(&self.pool, c).await
        }

        async fn insert_oauth_state(&self, state: &NewOAuthState) -> Result<(), StoreError> {
            Self::insert_state_alone(&self.pool, state).await
        }

        async fn take_oauth_state(
            &self,
            take: &OAuthStateTake<'_>,
        ) -> Result<Option<OAuthState>, StoreError> {
            Self::take_state_alone(&self.pool, take).await
        }
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_and_sqlite_constraint_names_map_alike() {
        let pairs = [
            ("users_username_key", "users.username"),
            ("users_email_key", "users.email_normalized"),
            ("users_referral_code_key", "users.referral_code"),
            (
                "social_accounts_provider_uid_key",
                "social_accounts.provider, social_accounts.uid",
            ),
        ];
        for (pg, sqlite) in pairs {
            assert_ne!(constraint_named(pg), Constraint::Other, "{pg}");
            assert_eq!(constraint_named(pg), constraint_named(sqlite), "{pg}");
        }
        assert_eq!(constraint_named("auth_tokens_pkey"), Constraint::Other);
    }

    #[test]
    fn pool_failures_are_unavailable() {
        assert!(map_err(sqlx::Error::PoolTimedOut).is_transient());
        assert!(map_err(sqlx::Error::PoolClosed).is_transient());
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(map_err(sqlx::Error::Io(io)).is_transient());
        assert!(!map_err(sqlx::Error::RowNotFound).is_transient());
    }
}
