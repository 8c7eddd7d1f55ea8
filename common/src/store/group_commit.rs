//! Group commit on PostgreSQL. Every write of one kind (a login, a code
//! claim, a login state) made by one process goes through one queue; a
//! task takes the writes waiting there (up to [`MAX_BATCH`]) and hands them
//! to [`Together::write_many`], which writes them as one statement: one
//! round trip and one commit for the lot instead of one each. An idle writer writes a
//! lone write at once; a busy one waits a little (`[database]
//! login_batch_wait_ms`) for more.
//!
//! The writes of one batch have distinct [`Together::keys`]; a write that
//! clashes with one already taken waits for the next batch.

use super::StoreError;
use super::base::map_err;
use futures_util::future::join_all;
use sqlx::postgres::PgPool;
use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Most writes in one statement.
const MAX_BATCH: usize = 64;

/// Most parameter bytes in one statement (a write bigger than this alone
/// is still made, alone), so a batch of logins with large provider
/// profiles stays a statement of bounded size. Measured: a bound of one
/// TLS record (16 KiB: about 15 logins) cost a fifth of the signups a
/// second at 256 users; 64 KiB is rarely reached before [`MAX_BATCH`]. The
/// guard against the delayed-ACK stall of multi-record statements is
/// `TCP_NODELAY` (sqlx ≥ 0.9.1), which the benchmark checks with TLS on.
pub(super) const MAX_BATCH_BYTES: usize = 64 * 1024;

/// The writer counts as busy while batches begin less than this many
/// waits apart; an idle writer writes a lone write at once.
const BUSY: u32 = 10;

/// A kind of write that can be made together with others of its kind.
pub(super) trait Together: Send + Sync + 'static {
    /// One write's parameters, owned.
    type Row: Send + Sync + 'static;
    /// One write's answer.
    type Out: Send + 'static;

    /// What must differ between the writes of one batch (an identity, a
    /// job id, a code).
    fn keys(row: &Self::Row) -> Vec<String>;

    /// About how many bytes the write's parameters take in a statement.
    fn size(row: &Self::Row) -> usize;

    /// One write, as a statement of its own.
    fn write_one(
        pool: &PgPool,
        row: &Self::Row,
    ) -> impl Future<Output = Result<Self::Out, StoreError>> + Send;

    /// Several writes (distinct keys) as one statement: an answer for each,
    /// in their order, `None` for one the statement could not decide (it
    /// is then made alone). `Ok(None)`: the server refused the statement,
    /// so nothing was written.
    fn write_many(
        pool: &PgPool,
        rows: &[&Self::Row],
    ) -> impl Future<Output = Result<Option<Vec<Option<Self::Out>>>, StoreError>> + Send;
}

/// Writes `rows` (distinct keys) and answers each, in their order: a lone
/// write alone, several as one statement; those it left undecided, or all
/// when the server refused it, alone, so that one write's failure is never
/// another's. A lost connection (perhaps after the commit) fails them all,
/// as it fails a write made alone, and their callers try again.
pub(super) async fn write_together<W: Together>(
    pool: &PgPool,
    rows: &[&W::Row],
) -> Vec<Result<W::Out, StoreError>> {
    if let [row] = rows {
        return vec![W::write_one(pool, row).await];
    }
    let decided = match W::write_many(pool, rows).await {
        Ok(Some(decided)) => decided,
        Ok(None) => rows.iter().map(|_| None).collect(),
        Err(e) => return rows.iter().map(|_| Err(e.clone())).collect(),
    };
    join_all(rows.iter().zip(decided).map(|(row, decided)| async move {
        match decided {
            Some(out) => Ok(out),
            None => W::write_one(pool, row).await,
        }
    }))
    .await
}

/// A batch statement's outcome for [`Together::write_many`]: what it gave,
/// `None` when the server refused it (a constraint, a deadlock: nothing
/// was written, so each write is made alone), or the error of a lost
/// connection.
pub(super) fn unless_refused<T>(outcome: Result<T, sqlx::Error>) -> Result<Option<T>, StoreError> {
    match outcome {
        Ok(done) => Ok(Some(done)),
        Err(sqlx::Error::Database(_)) => Ok(None),
        Err(e) => Err(map_err(e)),
    }
}

/// One statement parameter: `f` of every row, as an array.
pub(super) fn column<'a, R, T>(rows: &[&'a R], f: impl Fn(&'a R) -> T) -> Vec<T> {
    rows.iter().map(|r| f(r)).collect()
}

/// The bytes of text parameters in a statement: each value and its 4-byte
/// length.
pub(super) fn text_bytes<'a>(values: impl IntoIterator<Item = Option<&'a String>>) -> usize {
    values
        .into_iter()
        .map(|v| 4 + v.map_or(0, String::len))
        .sum()
}

type Reply<W> = oneshot::Sender<Result<<W as Together>::Out, StoreError>>;

struct Pending<W: Together> {
    row: W::Row,
    keys: Vec<String>,
    size: usize,
    reply: Reply<W>,
}

/// The queue in front of one writing task; the task ends when this is
/// dropped (with the store).
pub(super) struct Batcher<W: Together> {
    queue: mpsc::UnboundedSender<Pending<W>>,
}

impl<W: Together> Batcher<W> {
    /// Starts the writing task on the current tokio runtime. Once busy, it
    /// waits up to `wait` for more writes to join a batch.
    pub(super) fn start(pool: PgPool, wait: Duration) -> Self {
        let (queue, rx) = mpsc::unbounded_channel();
        tokio::spawn(run::<W>(pool, rx, wait));
        Self { queue }
    }

    /// Writes `row` with whatever else is waiting, and answers it.
    pub(super) async fn write(&self, row: W::Row) -> Result<W::Out, StoreError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::Unavailable("the store's writer has stopped".into());
        let keys = W::keys(&row);
        let size = W::size(&row);
        self.queue
            .send(Pending {
                row,
                keys,
                size,
                reply,
            })
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// Writes one batch at a time: the writes that came in while the last one
/// was written, and, when writes keep coming (the last batch began less
/// than [`BUSY`] waits ago), those that come within `wait`. One at a time
/// is what makes batches: measured, two statements in flight per process
/// wrote smaller batches and cost more CPU per login.
async fn run<W: Together>(
    pool: PgPool,
    mut rx: mpsc::UnboundedReceiver<Pending<W>>,
    wait: Duration,
) {
    // Writes put off by a clash, oldest first.
    let mut held: VecDeque<Pending<W>> = VecDeque::new();
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

/// Writes with distinct keys, at most [`MAX_BATCH`] of them and
/// [`MAX_BATCH_BYTES`] together (the first is always taken).
struct Batch<W: Together> {
    writes: Vec<Pending<W>>,
    keys: HashSet<String>,
    bytes: usize,
}

impl<W: Together> Batch<W> {
    fn new(first: Pending<W>) -> Self {
        let mut batch = Self {
            writes: Vec::with_capacity(8),
            keys: HashSet::new(),
            bytes: 0,
        };
        batch.take(first);
        batch
    }

    fn is_full(&self) -> bool {
        self.writes.len() >= MAX_BATCH || self.bytes >= MAX_BATCH_BYTES
    }

    fn take(&mut self, p: Pending<W>) {
        self.keys.extend(p.keys.iter().cloned());
        self.bytes = self.bytes.saturating_add(p.size);
        self.writes.push(p);
    }

    /// Takes `p`, or puts it on `held` for a later batch.
    fn offer_or_hold(&mut self, p: Pending<W>, held: &mut VecDeque<Pending<W>>) {
        if let Some(p) = self.offer(p) {
            held.push_back(p);
        }
    }

    /// Takes `p`, or gives it back when the batch is full, `p` would make
    /// it too big, or `p` clashes.
    fn offer(&mut self, p: Pending<W>) -> Option<Pending<W>> {
        if self.is_full()
            || self.bytes.saturating_add(p.size) > MAX_BATCH_BYTES
            || p.keys.iter().any(|k| self.keys.contains(k))
        {
            return Some(p);
        }
        self.take(p);
        None
    }

    async fn write(self, pool: &PgPool) {
        let rows: Vec<&W::Row> = self.writes.iter().map(|p| &p.row).collect();
        let results = write_together::<W>(pool, &rows).await;
        for (p, result) in self.writes.into_iter().zip(results) {
            let _ = p.reply.send(result);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kind of write that is only ever batched here, never written.
    struct Sized_;

    impl Together for Sized_ {
        type Row = (String, usize);
        type Out = ();

        fn keys(row: &Self::Row) -> Vec<String> {
            vec![row.0.clone()]
        }

        fn size(row: &Self::Row) -> usize {
            row.1
        }

        async fn write_one(_: &PgPool, _: &Self::Row) -> Result<(), StoreError> {
            Ok(())
        }

        async fn write_many(
            _: &PgPool,
            _: &[&Self::Row],
        ) -> Result<Option<Vec<Option<()>>>, StoreError> {
            Ok(None)
        }
    }

    fn pending(key: &str, size: usize) -> Pending<Sized_> {
        let (reply, _) = oneshot::channel();
        Pending {
            row: (key.to_owned(), size),
            keys: Sized_::keys(&(key.to_owned(), size)),
            size,
            reply,
        }
    }

    #[test]
    fn a_batch_stays_within_its_bytes_and_takes_a_big_write_alone() {
        let part = MAX_BATCH_BYTES * 2 / 5;
        let mut batch = Batch::new(pending("a", part));
        assert!(batch.offer(pending("b", part)).is_none());
        let held = batch.offer(pending("c", part));
        assert!(held.is_some(), "a third would pass {MAX_BATCH_BYTES} bytes");
        assert!(
            batch.offer(pending("d", part / 4)).is_none(),
            "a small one fits"
        );
        assert!(batch.bytes <= MAX_BATCH_BYTES);
        assert!(
            batch.offer(pending("a", 1)).is_some(),
            "a clashing key waits"
        );

        let alone = Batch::new(pending("huge", MAX_BATCH_BYTES * 3));
        assert_eq!(
            alone.writes.len(),
            1,
            "a write bigger than a batch goes alone"
        );
        assert!(alone.is_full());
    }

    #[test]
    fn a_batch_holds_at_most_max_batch_writes() {
        let mut batch = Batch::new(pending("0", 1));
        for i in 1..MAX_BATCH {
            assert!(batch.offer(pending(&i.to_string(), 1)).is_none());
        }
        assert!(batch.is_full());
        assert!(batch.offer(pending("late", 1)).is_some());
    }
}
