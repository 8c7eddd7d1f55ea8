//! Shared parts of socialauth: configuration, domain types, job payloads, the
//! provider catalogue, the `Store` (all SQL) and the `JobQueue`.

pub mod bootstrap;

/// The buckets (seconds) of every duration histogram, api and worker.
pub const HISTOGRAM_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
pub mod catalogue;
pub mod config;
pub mod crypto;
pub mod disconnect;
pub mod jobs;
pub mod queue;
pub mod redemption;
pub mod reissue;
pub mod secret;
pub mod store;
pub mod types;

/// Milliseconds since the Unix epoch, the unit of every timestamp column.
pub fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}
