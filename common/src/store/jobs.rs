//! `jobs`: outcomes of published jobs, so a poll finds what the reply
//! carried. `result` is the JSON of `JobResult` without secrets.

use super::base::SqlRow;
use super::{JobRecord, JobStatus, StoreError};
use crate::jobs::{JobKind, JobResult};
use uuid::Uuid;

/// A row the worker already wrote keeps its outcome; either way the job is
/// marked accepted (answered with 202), the only kind a poll shows a token
/// of.
pub(super) const INSERT_PENDING: &str = "INSERT INTO jobs \
     (id, kind, status, attempts, created_at, updated_at, accepted) \
     VALUES ($1, $2, 'pending', 0, $3, $3, true) \
     ON CONFLICT (id) DO UPDATE SET accepted = true";

/// Works whether or not the api wrote the pending row first; `kind`,
/// `created_at` and `delivered_at` of an existing row are kept. A finished
/// job keeps its first outcome — a copy of it run at the same time (a
/// redelivery while the first run went on) cannot overwrite it — except
/// that a success replaces a failure.
pub(super) const UPSERT_RESULT: &str = "INSERT INTO jobs \
     (id, kind, status, result, attempts, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $6) \
     ON CONFLICT (id) DO UPDATE SET status = excluded.status, result = excluded.result, \
         attempts = excluded.attempts, updated_at = excluded.updated_at \
     WHERE jobs.status = 'pending' \
        OR (jobs.status = 'failed' AND excluded.status = 'succeeded')";

/// Counts one more redelivery of a job; returns the count.
pub(super) const COUNT_REDELIVERY: &str = "INSERT INTO job_deliveries \
     (job_id, redeliveries, updated_at) VALUES ($1, 1, $2) \
     ON CONFLICT (job_id) DO UPDATE SET redeliveries = job_deliveries.redeliveries + 1, \
         updated_at = excluded.updated_at \
     RETURNING redeliveries";

pub(super) const FIND: &str = "SELECT id, kind, status, result, attempts, created_at, updated_at, \
     delivered_at FROM jobs WHERE id = $1";

/// Returns the id the first time a finished job that was answered with 202
/// is handed out, no row after (nor for a job answered at once).
pub(super) const TAKE_DELIVERY: &str = "UPDATE jobs SET delivered_at = $2 \
     WHERE id = $1 AND delivered_at IS NULL AND status <> 'pending' AND accepted \
     RETURNING id";

/// The stored form of a result: never the app token.
pub(super) fn encode_result(result: &JobResult) -> Result<String, StoreError> {
    serde_json::to_string(&result.without_secrets())
        .map_err(|e| StoreError::Database(format!("job result could not be encoded: {e}")))
}

pub(super) fn from_row(row: &impl SqlRow) -> Result<JobRecord, StoreError> {
    let id = row.text("id")?;
    let kind = row.text("kind")?;
    let status = row.text("status")?;
    let result = row
        .opt_text("result")?
        .map(|json| serde_json::from_str::<JobResult>(&json))
        .transpose()
        .map_err(|e| StoreError::Decode(format!("jobs.result of {id}: {e}")))?;
    Ok(JobRecord {
        id: Uuid::parse_str(&id).map_err(|e| StoreError::Decode(format!("jobs.id {id:?}: {e}")))?,
        kind: JobKind::parse(&kind)
            .ok_or_else(|| StoreError::Decode(format!("jobs.kind of {id}: {kind:?}")))?,
        status: JobStatus::parse(&status)
            .ok_or_else(|| StoreError::Decode(format!("jobs.status of {id}: {status:?}")))?,
        result,
        attempts: row.int32("attempts")?,
        created_at: row.int("created_at")?,
        updated_at: row.int("updated_at")?,
        delivered_at: row.opt_int("delivered_at")?,
    })
}
