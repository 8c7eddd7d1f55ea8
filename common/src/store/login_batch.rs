//! Logins written together on PostgreSQL ([`super::group_commit`]): a
//! batch is one statement, [`LOG_IN_BATCH_PG`]: one round trip and one
//! commit — one WAL flush — for the lot instead of one each. A lone login
//! is written as [`LOG_IN_PG`].
//!
//! A batch holds distinct identities and job ids; a login that clashes
//! with one already taken waits for the next batch. If the batch statement
//! is refused by the server (a unique violation, a deadlock), nothing of it
//! was written and each of its logins is run again alone, so each gets the
//! answer `LOG_IN_PG` gives it: a failure in one login never decides
//! another's. A lost connection fails them all, as it fails a single
//! login, and their callers try again.

use super::group_commit::{Together, column, unless_refused};
use super::logins::{LOG_IN_BATCH_PG, LOG_IN_PG};
use super::sql::{SqlRow, map_err};
use super::{LoggedIn, LoginWrite, StoreError, users};
use sqlx::postgres::{PgPool, PgRow};

/// One login's parameters, owned, in `LOG_IN_PG`'s order. No `Debug`: it
/// carries sealed provider tokens.
pub(super) struct LoginRow {
    provider: String,
    uid: String,
    username: Option<String>,
    email: Option<String>,
    email_normalized: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    referral_code: Option<String>,
    referrer: Option<String>,
    now: i64,
    may_create: bool,
    link_email: Option<String>,
    extra_data: String,
    key_id: Option<String>,
    access_token: Option<String>,
    refresh_token: Option<String>,
    expires_at: Option<i64>,
    token_hash: String,
    token_expires_at: Option<i64>,
    job_id: String,
}

impl LoginRow {
    pub(super) fn new(l: &LoginWrite<'_>) -> Self {
        let a = l.account;
        let u = l.user;
        Self {
            provider: a.provider.clone(),
            uid: a.uid.clone(),
            username: u.map(|u| u.username.clone()),
            email: u.and_then(|u| u.email.clone()),
            email_normalized: u.and_then(|u| u.email_normalized.clone()),
            first_name: u.map(|u| u.first_name.clone()),
            last_name: u.map(|u| u.last_name.clone()),
            referral_code: u.map(|u| u.referral_code.clone()),
            referrer: l.referral_code.map(str::to_owned),
            now: l.now,
            may_create: u.is_some(),
            link_email: a.email.clone(),
            extra_data: a.extra_data.clone(),
            key_id: a.tokens.key_id.clone(),
            access_token: a.tokens.access_token.clone(),
            refresh_token: a.tokens.refresh_token.clone(),
            expires_at: a.tokens.expires_at,
            token_hash: l.token_hash.to_owned(),
            token_expires_at: l.token_expires_at,
            job_id: l.job_id.to_string(),
        }
    }
}

fn logged_in(row: &PgRow) -> Result<LoggedIn, StoreError> {
    Ok(LoggedIn {
        user: users::from_row(row)?,
        is_new: row.flag("is_new")?,
    })
}

/// One login as `LOG_IN_PG`.
async fn log_in_one(pool: &PgPool, r: &LoginRow) -> Result<Option<LoggedIn>, StoreError> {
    let row = sqlx::query(LOG_IN_PG)
        .bind(&r.provider)
        .bind(&r.uid)
        .bind(&r.username)
        .bind(&r.email)
        .bind(&r.email_normalized)
        .bind(&r.first_name)
        .bind(&r.last_name)
        .bind(&r.referral_code)
        .bind(&r.referrer)
        .bind(r.now)
        .bind(r.may_create)
        .bind(&r.link_email)
        .bind(&r.extra_data)
        .bind(&r.key_id)
        .bind(&r.access_token)
        .bind(&r.refresh_token)
        .bind(r.expires_at)
        .bind(&r.token_hash)
        .bind(r.token_expires_at)
        .bind(&r.job_id)
        .fetch_optional(pool)
        .await
        .map_err(map_err)?;
    row.as_ref().map(logged_in).transpose()
}

/// Many logins as `LOG_IN_BATCH_PG`, answered in their order. `Ok(None)`:
/// the server refused the statement (a constraint, a deadlock), so none of
/// them was written.
async fn log_in_many(
    pool: &PgPool,
    rows: &[&LoginRow],
) -> Result<Option<Vec<Option<LoggedIn>>>, StoreError> {
    let found = sqlx::query(LOG_IN_BATCH_PG)
        .bind(column(rows, |r| r.provider.clone()))
        .bind(column(rows, |r| r.uid.clone()))
        .bind(column(rows, |r| r.username.clone()))
        .bind(column(rows, |r| r.email.clone()))
        .bind(column(rows, |r| r.email_normalized.clone()))
        .bind(column(rows, |r| r.first_name.clone()))
        .bind(column(rows, |r| r.last_name.clone()))
        .bind(column(rows, |r| r.referral_code.clone()))
        .bind(column(rows, |r| r.referrer.clone()))
        .bind(column(rows, |r| r.now))
        .bind(column(rows, |r| r.may_create))
        .bind(column(rows, |r| r.link_email.clone()))
        .bind(column(rows, |r| r.extra_data.clone()))
        .bind(column(rows, |r| r.key_id.clone()))
        .bind(column(rows, |r| r.access_token.clone()))
        .bind(column(rows, |r| r.refresh_token.clone()))
        .bind(column(rows, |r| r.expires_at))
        .bind(column(rows, |r| r.token_hash.clone()))
        .bind(column(rows, |r| r.token_expires_at))
        .bind(column(rows, |r| r.job_id.clone()))
        .fetch_all(pool)
        .await;
    let Some(found) = unless_refused(found)? else {
        return Ok(None);
    };
    let mut out: Vec<Option<LoggedIn>> = rows.iter().map(|_| None).collect();
    for row in &found {
        let ord = row.int("ord")?;
        let slot = usize::try_from(ord)
            .ok()
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| out.get_mut(i))
            .ok_or_else(|| StoreError::Decode(format!("login batch: no login {ord}")))?;
        *slot = Some(logged_in(row)?);
    }
    Ok(Some(out))
}

/// Logins, made together: distinct identities and job ids per batch.
pub(super) struct Logins;

impl Together for Logins {
    type Row = LoginRow;
    type Out = Option<LoggedIn>;

    fn keys(row: &LoginRow) -> Vec<String> {
        vec![
            format!("account\0{}\0{}", row.provider, row.uid),
            format!("job\0{}", row.job_id),
        ]
    }

    async fn write_one(pool: &PgPool, row: &LoginRow) -> Result<Option<LoggedIn>, StoreError> {
        log_in_one(pool, row).await
    }

    async fn write_many(
        pool: &PgPool,
        rows: &[&LoginRow],
    ) -> Result<Option<Vec<Option<Option<LoggedIn>>>>, StoreError> {
        let written = log_in_many(pool, rows).await?;
        Ok(written.map(|answers| answers.into_iter().map(Some).collect()))
    }
}
