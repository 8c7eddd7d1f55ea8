//! Deletes what is no longer kept, every `[cleanup] every_secs`: the
//! rules of how long each kind of row is kept live in [`cut_off`], the
//! deleting in the store.

use crate::deps::Deps;
use socialauth_common::config::CleanupSettings;
use socialauth_common::now_ms;
use socialauth_common::redemption::CODE_MEMORY_MS;
use socialauth_common::store::Purge;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{debug, warn};

/// Rows deleted per statement.
const BATCH: i64 = 5_000;
/// Statements per kind and round: a backlog is worked off over rounds.
const BATCHES_PER_ROUND: usize = 20;
/// The shortest job retention (a 202 is polled within ten minutes; a
/// redelivered job looks for its first run's outcome).
const MIN_JOB_RETENTION_MS: i64 = 3600 * 1000;

/// Rows of `what` older than this (its expiry, or its last write) are no
/// longer kept at `now`.
pub fn cut_off(what: Purge, now: i64, settings: &CleanupSettings) -> i64 {
    let job_retention = i64::try_from(settings.job_retention_secs.saturating_mul(1000))
        .unwrap_or(i64::MAX)
        .max(MIN_JOB_RETENTION_MS);
    match what {
        // Kept a while after they expire, so that one posted late is told
        // "expired" rather than "unknown".
        Purge::OAuthStates | Purge::RequestTokens | Purge::PartialLogins => {
            now.saturating_sub(CODE_MEMORY_MS)
        }
        // Their expiry is the end of their memory already.
        Purge::LoginCodes | Purge::AuthTokens => now,
        Purge::Jobs | Purge::JobDeliveries => now.saturating_sub(job_retention),
    }
}

/// One round over every kind; the rows deleted.
pub async fn round(deps: &Deps, settings: &CleanupSettings) -> u64 {
    let mut total = 0;
    for what in Purge::ALL {
        let before = cut_off(what, now_ms(), settings);
        for _ in 0..BATCHES_PER_ROUND {
            match deps.store.purge(what, before, BATCH).await {
                Ok(deleted) => {
                    total += deleted;
                    metrics::counter!("socialauth_purged_rows_total", "table" => what.table())
                        .increment(deleted);
                    if deleted < BATCH.unsigned_abs() {
                        break;
                    }
                }
                Err(e) => {
                    warn!(table = what.table(), error = %e, "cleanup failed; next round tries again");
                    break;
                }
            }
        }
    }
    total
}

/// Runs [`round`] every `settings.every_secs` (with jitter, so workers do
/// not all start at once) until `stop`.
pub async fn run(deps: Arc<Deps>, settings: CleanupSettings, mut stop: watch::Receiver<bool>) {
    if settings.every_secs == 0 {
        return;
    }
    let every = Duration::from_secs(settings.every_secs);
    loop {
        let jitter = every.mul_f64(rand::random::<f64>() * 0.2);
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            () = tokio::time::sleep(every + jitter) => {}
        }
        let deleted = round(&deps, &settings).await;
        debug!(deleted, "cleanup round");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_is_kept_its_own_time() {
        let settings = CleanupSettings {
            every_secs: 60,
            job_retention_secs: 7200,
        };
        let now = 10_000_000_000;
        assert_eq!(
            cut_off(Purge::OAuthStates, now, &settings),
            now - CODE_MEMORY_MS
        );
        assert_eq!(cut_off(Purge::LoginCodes, now, &settings), now);
        assert_eq!(cut_off(Purge::AuthTokens, now, &settings), now);
        assert_eq!(cut_off(Purge::Jobs, now, &settings), now - 7_200_000);
        let short = CleanupSettings {
            job_retention_secs: 1,
            ..settings
        };
        assert_eq!(
            cut_off(Purge::JobDeliveries, now, &short),
            now - MIN_JOB_RETENTION_MS,
            "never shorter than an hour"
        );
    }
}
