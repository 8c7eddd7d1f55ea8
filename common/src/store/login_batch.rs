//! Logins on PostgreSQL, made together ([`super::group_commit`]). The
//! pipeline's logins go through one queue, [`LogIns`]: the facts of the
//! logins that come in together are one statement, [`FIND_FACTS_PG`]; each
//! login's decider (the pipeline's steps) is asked; what they decided is
//! one statement and one commit — one WAL flush — [`WRITE_LOGINS_PG`].
//! [`FactReads`] and [`LoginWrites`] are the two halves on their own
//! (`Store::find_login_facts`, `Store::write_login`).
//!
//! A batch holds distinct identities; a login that clashes with one
//! already taken waits for the next batch. If the server refuses the write
//! statement (a unique violation, a deadlock), nothing of it was written
//! and each login is made again alone — read, decided and written — so
//! each gets its own answer: one login's conflict never decides another's.
//! A lost connection fails them all, as it fails a single login, and their
//! callers try again.

use super::base::{SqlRow, map_err};
use super::group_commit::{Together, column, text_bytes, unless_refused};
use super::logins::{FIND_FACTS_PG, WRITE_LOGINS_PG, WRITE_PLAIN_LOGINS_PG};
use super::{
    DecideLogin, FactsQuery, LinkedUser, LoginChange, LoginFacts, LoginWrite, StoreError, UserId,
    Written, jobs, users,
};
use sqlx::postgres::{PgPool, PgRow};
use std::sync::Arc;

/// One login's facts query, owned.
pub(super) struct FactsRow {
    provider: String,
    uid: String,
    email_normalized: Option<String>,
    referral_code: Option<String>,
}

impl FactsRow {
    pub(super) fn new(q: &FactsQuery<'_>) -> Self {
        Self {
            provider: q.provider.to_owned(),
            uid: q.uid.to_owned(),
            email_normalized: q.email_normalized.map(str::to_owned),
            referral_code: q.referral_code.map(str::to_owned),
        }
    }
}

fn facts_from_row(row: &PgRow) -> Result<LoginFacts, StoreError> {
    let account = match row.opt_int("account_id")? {
        Some(account_id) => {
            users::from_named_row_opt(row, &users::ACC)?.map(|user| LinkedUser { account_id, user })
        }
        None => None,
    };
    Ok(LoginFacts {
        account,
        email_owner: users::from_named_row_opt(row, &users::OWN)?,
        referrer: row.opt_int("referrer_id")?.map(UserId),
        new_user_id: row.opt_int("new_user_id")?.map(UserId),
    })
}

/// The answers of [`FIND_FACTS_PG`] in the order of `rows`.
async fn find_facts(pool: &PgPool, rows: &[&FactsRow]) -> Result<Vec<LoginFacts>, sqlx::Error> {
    let found = sqlx::query(FIND_FACTS_PG)
        .bind(column(rows, |r| r.provider.as_str()))
        .bind(column(rows, |r| r.uid.as_str()))
        .bind(column(rows, |r| r.email_normalized.as_deref()))
        .bind(column(rows, |r| r.referral_code.as_deref()))
        .fetch_all(pool)
        .await?;
    let mut out: Vec<LoginFacts> = rows.iter().map(|_| LoginFacts::default()).collect();
    for row in &found {
        let ord = row.int("ord").map_err(decode)?;
        *slot(&mut out, ord).map_err(decode)? = facts_from_row(row).map_err(decode)?;
    }
    Ok(out)
}

/// A store error carried through `sqlx::Error` (for the one `?` chain).
fn decode(e: StoreError) -> sqlx::Error {
    sqlx::Error::Decode(e.to_string().into())
}

/// The 1-based `ord`-th element of `out`.
fn slot<T>(out: &mut [T], ord: i64) -> Result<&mut T, StoreError> {
    usize::try_from(ord)
        .ok()
        .and_then(|i| i.checked_sub(1))
        .and_then(|i| out.get_mut(i))
        .ok_or_else(|| StoreError::Decode(format!("login batch: no login {ord}")))
}

/// Reads of login facts, made together (reads never clash).
pub(super) struct FactReads;

impl Together for FactReads {
    type Row = FactsRow;
    type Out = LoginFacts;

    fn keys(_: &FactsRow) -> Vec<String> {
        Vec::new()
    }

    fn size(row: &FactsRow) -> usize {
        text_bytes([
            Some(&row.provider),
            Some(&row.uid),
            row.email_normalized.as_ref(),
            row.referral_code.as_ref(),
        ])
    }

    async fn write_one(pool: &PgPool, row: &FactsRow) -> Result<LoginFacts, StoreError> {
        let mut found = find_facts(pool, &[row]).await.map_err(map_err)?;
        found
            .pop()
            .ok_or_else(|| StoreError::Decode("login facts: no row".into()))
    }

    async fn write_many(
        pool: &PgPool,
        rows: &[&FactsRow],
    ) -> Result<Option<Vec<Option<LoginFacts>>>, StoreError> {
        let found = unless_refused(find_facts(pool, rows).await)?;
        Ok(found.map(|facts| facts.into_iter().map(Some).collect()))
    }
}

/// One login's writes, owned, in [`WRITE_LOGINS_PG`]'s order. No `Debug`:
/// it carries sealed provider tokens.
pub(super) struct WriteRow {
    kind: &'static str,
    account_id: Option<i64>,
    user_id: Option<i64>,
    username: Option<String>,
    email: Option<String>,
    email_normalized: Option<String>,
    email_verified: Option<bool>,
    first_name: Option<String>,
    last_name: Option<String>,
    referral_code: Option<String>,
    referred_by: Option<i64>,
    user_created_at: Option<i64>,
    provider: String,
    uid: String,
    link_email: Option<String>,
    extra_data: String,
    link_created_at: i64,
    key_id: Option<String>,
    access_token: Option<String>,
    refresh_token: Option<String>,
    token_secret: Option<String>,
    expires_at: Option<i64>,
    token_hash: String,
    token_expires_at: Option<i64>,
    job_id: String,
    result: String,
    partial_hash: Option<String>,
    now: i64,
    audit_kind: Option<&'static str>,
    audit_provider: Option<String>,
    audit_outcome: Option<&'static str>,
    audit_detail: Option<String>,
    audit_request_id: Option<String>,
    audit_at: Option<i64>,
}

impl WriteRow {
    /// `None` for a write this statement cannot make: a new user without
    /// an id set aside, a link without its user (the caller makes it in a
    /// transaction instead).
    pub(super) fn new(l: &LoginWrite<'_>) -> Result<Option<Self>, StoreError> {
        let a = l.account;
        let Some(user_id) = l.user_id else {
            return Ok(None);
        };
        let (kind, account_id, user) = match l.change {
            LoginChange::Existing { account_id } => ("existing", Some(account_id), None),
            LoginChange::Create { user } => ("create", None, Some(user)),
            LoginChange::Link => ("link", None, None),
        };
        Ok(Some(Self {
            kind,
            account_id,
            user_id: Some(user_id.0),
            username: user.map(|u| u.username.clone()),
            email: user.and_then(|u| u.email.clone()),
            email_normalized: user.and_then(|u| u.email_normalized.clone()),
            email_verified: user.map(|u| u.email_verified),
            first_name: user.map(|u| u.first_name.clone()),
            last_name: user.map(|u| u.last_name.clone()),
            referral_code: user.map(|u| u.referral_code.clone()),
            referred_by: user.and_then(|u| u.referred_by).map(|r| r.0),
            user_created_at: user.map(|u| u.created_at),
            provider: a.provider.clone(),
            uid: a.uid.clone(),
            link_email: a.email.clone(),
            extra_data: a.extra_data.clone(),
            link_created_at: a.created_at,
            key_id: a.tokens.key_id.clone(),
            access_token: a.tokens.access_token.clone(),
            refresh_token: a.tokens.refresh_token.clone(),
            token_secret: a.tokens.token_secret.clone(),
            expires_at: a.tokens.expires_at,
            token_hash: l.token_hash.to_owned(),
            token_expires_at: l.token_expires_at,
            job_id: l.job_id.to_string(),
            result: jobs::encode_result(l.result)?,
            partial_hash: l.partial_hash.map(str::to_owned),
            now: l.now,
            audit_kind: l.audit.map(|e| e.kind),
            audit_provider: l.audit.and_then(|e| e.provider.clone()),
            audit_outcome: l.audit.map(|e| e.outcome),
            audit_detail: l.audit.map(|e| e.detail.clone()),
            audit_request_id: l.audit.and_then(|e| e.request_id.clone()),
            audit_at: l.audit.map(|e| e.at),
        }))
    }

    fn user_id(&self) -> UserId {
        UserId(self.user_id.unwrap_or_default())
    }
}

/// Many writes as [`WRITE_LOGINS_PG`] (as [`WRITE_PLAIN_LOGINS_PG`] when
/// none resumes a partial login or records an audit event), answered in
/// their order; the server's refusal as the `sqlx` error.
async fn write_logins(pool: &PgPool, rows: &[&WriteRow]) -> Result<Vec<Written>, sqlx::Error> {
    let plain = rows
        .iter()
        .all(|r| r.partial_hash.is_none() && r.audit_kind.is_none());
    let statement = if plain {
        WRITE_PLAIN_LOGINS_PG
    } else {
        WRITE_LOGINS_PG
    };
    let found = sqlx::query(statement)
        .bind(column(rows, |r| r.kind))
        .bind(column(rows, |r| r.account_id))
        .bind(column(rows, |r| r.user_id))
        .bind(column(rows, |r| r.username.as_deref()))
        .bind(column(rows, |r| r.email.as_deref()))
        .bind(column(rows, |r| r.email_normalized.as_deref()))
        .bind(column(rows, |r| r.email_verified))
        .bind(column(rows, |r| r.first_name.as_deref()))
        .bind(column(rows, |r| r.last_name.as_deref()))
        .bind(column(rows, |r| r.referral_code.as_deref()))
        .bind(column(rows, |r| r.referred_by))
        .bind(column(rows, |r| r.user_created_at))
        .bind(column(rows, |r| r.provider.as_str()))
        .bind(column(rows, |r| r.uid.as_str()))
        .bind(column(rows, |r| r.link_email.as_deref()))
        .bind(column(rows, |r| r.extra_data.as_str()))
        .bind(column(rows, |r| r.link_created_at))
        .bind(column(rows, |r| r.key_id.as_deref()))
        .bind(column(rows, |r| r.access_token.as_deref()))
        .bind(column(rows, |r| r.refresh_token.as_deref()))
        .bind(column(rows, |r| r.token_secret.as_deref()))
        .bind(column(rows, |r| r.expires_at))
        .bind(column(rows, |r| r.token_hash.as_str()))
        .bind(column(rows, |r| r.token_expires_at))
        .bind(column(rows, |r| r.job_id.as_str()))
        .bind(column(rows, |r| r.result.as_str()))
        .bind(column(rows, |r| r.partial_hash.as_deref()))
        .bind(column(rows, |r| r.now))
        .bind(column(rows, |r| r.audit_kind))
        .bind(column(rows, |r| r.audit_provider.as_deref()))
        .bind(column(rows, |r| r.audit_outcome))
        .bind(column(rows, |r| r.audit_detail.as_deref()))
        .bind(column(rows, |r| r.audit_request_id.as_deref()))
        .bind(column(rows, |r| r.audit_at))
        .fetch_all(pool)
        .await?;
    let mut out: Vec<Written> = rows.iter().map(|_| Written::Lost).collect();
    for row in &found {
        let ord = row.int("ord").map_err(decode)?;
        let written = if !row.flag("partial_ok").map_err(decode)? {
            Written::PartialGone
        } else if row.flag("written").map_err(decode)? {
            let i = usize::try_from(ord - 1).unwrap_or(usize::MAX);
            Written::Done(rows.get(i).map_or(UserId(0), |r| r.user_id()))
        } else {
            Written::Lost
        };
        *slot(&mut out, ord).map_err(decode)? = written;
    }
    Ok(out)
}

/// Login writes, made together: distinct identities, job ids and partial
/// logins per batch.
pub(super) struct LoginWrites;

impl Together for LoginWrites {
    type Row = WriteRow;
    type Out = Written;

    fn keys(row: &WriteRow) -> Vec<String> {
        let mut keys = vec![
            format!("account\0{}\0{}", row.provider, row.uid),
            format!("job\0{}", row.job_id),
        ];
        if let Some(hash) = &row.partial_hash {
            keys.push(format!("partial\0{hash}"));
        }
        keys
    }

    fn size(r: &WriteRow) -> usize {
        // Text parameters by length, the 14 numbers and flags at 8 bytes.
        text_bytes([
            r.username.as_ref(),
            r.email.as_ref(),
            r.email_normalized.as_ref(),
            r.first_name.as_ref(),
            r.last_name.as_ref(),
            r.referral_code.as_ref(),
            Some(&r.provider),
            Some(&r.uid),
            r.link_email.as_ref(),
            Some(&r.extra_data),
            r.key_id.as_ref(),
            r.access_token.as_ref(),
            r.refresh_token.as_ref(),
            r.token_secret.as_ref(),
            Some(&r.token_hash),
            Some(&r.job_id),
            Some(&r.result),
            r.partial_hash.as_ref(),
            r.audit_provider.as_ref(),
            r.audit_detail.as_ref(),
            r.audit_request_id.as_ref(),
        ]) + 14 * 8
    }

    async fn write_one(pool: &PgPool, row: &WriteRow) -> Result<Written, StoreError> {
        let mut written = write_logins(pool, &[row]).await.map_err(map_err)?;
        written
            .pop()
            .ok_or_else(|| StoreError::Decode("login write: no row".into()))
    }

    async fn write_many(
        pool: &PgPool,
        rows: &[&WriteRow],
    ) -> Result<Option<Vec<Option<Written>>>, StoreError> {
        let written = unless_refused(write_logins(pool, rows).await)?;
        Ok(written.map(|answers| answers.into_iter().map(Some).collect()))
    }
}

/// One login for [`LogIns`]: its facts query and the decision to ask. No
/// `Debug`: its decision carries sealed provider tokens.
pub(super) struct LogInRow {
    facts: FactsRow,
    decider: Arc<dyn DecideLogin>,
}

impl LogInRow {
    pub(super) fn new(q: &FactsQuery<'_>, decider: Arc<dyn DecideLogin>) -> Self {
        Self {
            facts: FactsRow::new(q),
            decider,
        }
    }

    /// The decision on `facts`, as [`WRITE_LOGINS_PG`]'s row; `None`: it
    /// writes nothing.
    fn decide(&self, facts: &LoginFacts) -> Result<Option<WriteRow>, StoreError> {
        let Some(plan) = self.decider.decide(facts) else {
            return Ok(None);
        };
        // On PostgreSQL the facts set aside a new user's id, so every
        // write names its user.
        WriteRow::new(&plan.write())?
            .map(Some)
            .ok_or_else(|| StoreError::Database("a login write without its user's id".into()))
    }
}

/// Logins made together, each read, decided and written: one statement
/// reads the facts of a batch ([`FIND_FACTS_PG`]), each login's decider is
/// asked, one statement writes what they decided ([`WRITE_LOGINS_PG`]) —
/// one commit, and one trip through the queue per login. If the server
/// refuses the write, nothing was written and each login is read, decided
/// and written again alone.
pub(super) struct LogIns;

impl Together for LogIns {
    type Row = LogInRow;
    type Out = Option<Written>;

    fn keys(row: &LogInRow) -> Vec<String> {
        vec![format!(
            "account\0{}\0{}",
            row.facts.provider, row.facts.uid
        )]
    }

    fn size(row: &LogInRow) -> usize {
        FactReads::size(&row.facts) + row.decider.size_hint()
    }

    async fn write_one(pool: &PgPool, row: &LogInRow) -> Result<Option<Written>, StoreError> {
        let facts = FactReads::write_one(pool, &row.facts).await?;
        let Some(write) = row.decide(&facts)? else {
            return Ok(None);
        };
        LoginWrites::write_one(pool, &write).await.map(Some)
    }

    async fn write_many(
        pool: &PgPool,
        rows: &[&LogInRow],
    ) -> Result<Option<Vec<Option<Option<Written>>>>, StoreError> {
        let queries: Vec<&FactsRow> = rows.iter().map(|r| &r.facts).collect();
        let Some(facts) = unless_refused(find_facts(pool, &queries).await)? else {
            return Ok(None);
        };
        // Each login's place among the writes, if it writes.
        let mut writes = Vec::with_capacity(rows.len());
        let mut places = Vec::with_capacity(rows.len());
        for (row, facts) in rows.iter().zip(&facts) {
            let place = row.decide(facts)?.map(|write| {
                writes.push(write);
                writes.len() - 1
            });
            places.push(place);
        }
        let written = if writes.is_empty() {
            Vec::new()
        } else {
            let writes: Vec<&WriteRow> = writes.iter().collect();
            match unless_refused(write_logins(pool, &writes).await)? {
                Some(written) => written,
                None => return Ok(None),
            }
        };
        Ok(Some(
            places
                .into_iter()
                .map(|place| Some(place.and_then(|i| written.get(i).copied())))
                .collect(),
        ))
    }
}
