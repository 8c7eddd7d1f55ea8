//! Shared parts of socialauth: configuration, domain types, job payloads, the
//! provider catalogue, the `Store` (all SQL) and the `JobQueue`.

pub mod bootstrap;
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
