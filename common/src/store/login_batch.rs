//! Group commit for logins on PostgreSQL. Every `log_in` of one process goes
//! through one queue; a task takes the logins waiting there (up to
//! [`MAX_BATCH`]) and writes them as one statement, [`LOG_IN_BATCH_PG`]:
//! one round trip and one commit — one WAL flush — for the lot instead of
//! one each. An idle writer writes a lone login at once, as [`LOG_IN_PG`];
//! a busy one waits a little (`[database] login_batch_wait_ms`) for more.
//!
//! A batch holds distinct identities and job ids; a login that clashes
//! with one already taken waits for the next batch. If the batch statement
//! is refused by the server (a unique violation, a deadlock), nothing of it
//! was written and each of its logins is run again alone, so each gets the
//! answer `LOG_IN_PG` gives it: a failure in one login never decides
//! another's. A lost connection fails them all, as it fails a single
//! login, and their callers try again.

use super::logins::{LOG_IN_BATCH_PG, LOG_IN_PG};
use super::sql::{SqlRow, map_err};
use super::{LoggedIn, LoginWrite, StoreError, users};
use futures_util::future::join_all;
use sqlx::postgres::{PgPool, PgRow};
use std::collections::{HashSet, VecDeque};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Most logins in one statement.
const MAX_BATCH: usize = 64;

/// The writer counts as busy while batches begin less than this many
/// waits apart; an idle writer writes a lone login at once.
const BUSY: u32 = 10;

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
pub(super) async fn log_in_one(
    pool: &PgPool,
    r: &LoginRow,
) -> Result<Option<LoggedIn>, StoreError> {
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
pub(super) async fn log_in_many(
    pool: &PgPool,
    rows: &[&LoginRow],
) -> Result<Option<Vec<Option<LoggedIn>>>, StoreError> {
    fn col<T>(rows: &[&LoginRow], f: impl Fn(&LoginRow) -> T) -> Vec<T> {
        rows.iter().map(|r| f(r)).collect()
    }
    let found = sqlx::query(LOG_IN_BATCH_PG)
        .bind(col(rows, |r| r.provider.clone()))
        .bind(col(rows, |r| r.uid.clone()))
        .bind(col(rows, |r| r.username.clone()))
        .bind(col(rows, |r| r.email.clone()))
        .bind(col(rows, |r| r.email_normalized.clone()))
        .bind(col(rows, |r| r.first_name.clone()))
        .bind(col(rows, |r| r.last_name.clone()))
        .bind(col(rows, |r| r.referral_code.clone()))
        .bind(col(rows, |r| r.referrer.clone()))
        .bind(col(rows, |r| r.now))
        .bind(col(rows, |r| r.may_create))
        .bind(col(rows, |r| r.link_email.clone()))
        .bind(col(rows, |r| r.extra_data.clone()))
        .bind(col(rows, |r| r.key_id.clone()))
        .bind(col(rows, |r| r.access_token.clone()))
        .bind(col(rows, |r| r.refresh_token.clone()))
        .bind(col(rows, |r| r.expires_at))
        .bind(col(rows, |r| r.token_hash.clone()))
        .bind(col(rows, |r| r.token_expires_at))
        .bind(col(rows, |r| r.job_id.clone()))
        .fetch_all(pool)
        .await;
    let found = match found {
        Ok(found) => found,
        Err(sqlx::Error::Database(_)) => return Ok(None),
        Err(e) => return Err(map_err(e)),
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

type Reply = oneshot::Sender<Result<Option<LoggedIn>, StoreError>>;

struct Pending {
    row: LoginRow,
    reply: Reply,
}

/// The queue in front of the writing task; the task ends when this is
/// dropped (with the store).
pub(super) struct LoginBatcher {
    queue: mpsc::UnboundedSender<Pending>,
}

impl LoginBatcher {
    /// Starts the writing task on the current tokio runtime. Once busy, it
    /// waits up to `wait` for more logins to join a batch.
    pub(super) fn start(pool: PgPool, wait: Duration) -> Self {
        let (queue, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(pool, rx, wait));
        Self { queue }
    }

    pub(super) async fn log_in(&self, row: LoginRow) -> Result<Option<LoggedIn>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Unavailable("the login writer has stopped".into());
        self.queue
            .send(Pending { row, reply })
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// Writes one batch at a time: the logins that came in while the last one
/// was written, and, when logins keep coming (the last batch began less
/// than [`BUSY`] waits ago), those that come within `wait`. One at a time
/// is what makes batches: measured, two statements in flight per process
/// wrote smaller batches and cost more CPU per login.
async fn run(pool: PgPool, mut rx: mpsc::UnboundedReceiver<Pending>, wait: Duration) {
    // Logins put off by a clash, oldest first.
    let mut held: VecDeque<Pending> = VecDeque::new();
    let mut last_start: Option<Instant> = None;
    loop {
        let first = match held.pop_front() {
            Some(p) => p,
            None => match rx.recv().await {
                Some(p) => p,
                None => return,
            },
        };
        let now = Instant::now();
        let busy = last_start.is_some_and(|t| now.duration_since(t) < wait * BUSY);
        last_start = Some(now);
        let mut batch = Batch::new(first);
        let mut still_held = VecDeque::new();
        while let Some(p) = held.pop_front() {
            batch.offer_or_hold(p, &mut still_held);
        }
        while !batch.is_full() {
            match rx.try_recv() {
                Ok(p) => batch.offer_or_hold(p, &mut still_held),
                Err(_) => break,
            }
        }
        if busy && !wait.is_zero() {
            let deadline = now + wait;
            while !batch.is_full() {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(p)) => batch.offer_or_hold(p, &mut still_held),
                    Ok(None) | Err(_) => break,
                }
            }
        }
        held = still_held;
        batch.write(&pool).await;
    }
}

/// Logins with distinct identities and job ids.
struct Batch {
    logins: Vec<Pending>,
    identities: HashSet<(String, String)>,
    jobs: HashSet<String>,
}

impl Batch {
    fn new(first: Pending) -> Self {
        let mut batch = Self {
            logins: Vec::with_capacity(8),
            identities: HashSet::new(),
            jobs: HashSet::new(),
        };
        let _ = batch.offer(first);
        batch
    }

    fn is_full(&self) -> bool {
        self.logins.len() >= MAX_BATCH
    }

    /// Takes `p`, or puts it on `held` for a later batch.
    fn offer_or_hold(&mut self, p: Pending, held: &mut VecDeque<Pending>) {
        if let Some(p) = self.offer(p) {
            held.push_back(p);
        }
    }

    /// Takes `p`, or gives it back when the batch is full or `p` clashes.
    fn offer(&mut self, p: Pending) -> Option<Pending> {
        let identity = (p.row.provider.clone(), p.row.uid.clone());
        if self.is_full()
            || self.identities.contains(&identity)
            || self.jobs.contains(&p.row.job_id)
        {
            return Some(p);
        }
        self.identities.insert(identity);
        self.jobs.insert(p.row.job_id.clone());
        self.logins.push(p);
        None
    }

    async fn write(self, pool: &PgPool) {
        let rows: Vec<&LoginRow> = self.logins.iter().map(|p| &p.row).collect();
        let results = log_in_together(pool, &rows).await;
        for (p, result) in self.logins.into_iter().zip(results) {
            let _ = p.reply.send(result);
        }
    }
}

/// Logins with distinct identities and job ids written together: alone as
/// `LOG_IN_PG`, several as `LOG_IN_BATCH_PG`, or, when the server refuses
/// that, each alone. Answers in their order.
pub(super) async fn log_in_together(
    pool: &PgPool,
    rows: &[&LoginRow],
) -> Vec<Result<Option<LoggedIn>, StoreError>> {
    if let [row] = rows {
        return vec![log_in_one(pool, row).await];
    }
    match log_in_many(pool, rows).await {
        Ok(Some(results)) => results.into_iter().map(Ok).collect(),
        Ok(None) => join_all(rows.iter().map(|row| log_in_one(pool, row))).await,
        // The connection was lost (perhaps after the commit) or none could
        // be had: each caller tries again with a new app token, as after a
        // failed `LOG_IN_PG`.
        Err(e) => rows.iter().map(|_| Err(e.clone())).collect(),
    }
}
